"""A CPU rollout for verl's agent loop: one Ray actor per replica serving ``generate``.

verl 0.9.1 has no CPU rollout (``HFRollout`` / ``NaiveRollout`` are unregistered dead code), so the
three pieces its serving stack expects are ours, registered by ``plugin.register``:

- ``CPURolloutServer`` (a Ray actor, verl's "server"): a Hugging Face causal LM with a KV cache.
  ``generate(prompt_ids, sampling_params, request_id)`` samples at the request's temperature
  (0 = greedy) with top-k / top-p, returns per-token log-probs of the sampling distribution, and
  stops at an EOS id or at ``rollout.response_length`` (verl's sampling params carry no max_tokens,
  as for its other servers). Requests are batched: the agent loop sends a step's rollouts at once,
  and the server gathers what arrives within ``BATCH_WINDOW_S`` of the first, decodes them
  together (left-padded, one KV cache, each row with its own sampling parameters and length cap)
  in a thread, so the event loop keeps taking requests for the next batch. ``ASYM_CPU_ROLLOUT=serial``
  serves one request at a time instead (the earlier server; ``benchmarks/verl_cpu.py`` runs both).
  A weight update waits for the running batch and blocks new ones (one lock).
- ``CPURolloutReplica`` (``RolloutReplicaRegistry`` "asym_cpu"): starts that actor for a hybrid
  replica, named ``asym_cpu_server_<rank>`` like verl's ``vllm_server_<rank>_<node>``.
- ``CPUServerAdapter`` (the worker-side rollout, ``_ROLLOUT_REGISTRY[("asym_cpu", "async")]``):
  verl's naive weight sync (``ActorRolloutRefWorker.update_weights``) hands it the FSDP actor's
  full HF-named tensors every step; it ships them to the server in one Ray object.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from typing import Any, Optional

import ray
import torch
from verl.utils.config import omega_conf_to_dataclass
from verl.workers.config import HFModelConfig
from verl.workers.rollout.base import BaseRollout
from verl.workers.rollout.replica import RolloutReplica, TokenOutput

log = logging.getLogger(__name__)
ROLLOUT_NAME = "asym_cpu"
SERVER_THREADS = 1  # torch threads per rollout server: ~10 verl processes share the cores
MODE_ENV = "ASYM_CPU_ROLLOUT"  # "batched" (default) | "serial": one request at a time
BATCH_WINDOW_S = 0.01  # ours: a step's requests reach the actor within milliseconds of each other
WEIGHT_CHANGE_METRIC = "asym_cpu/weight_change"
MAX_BATCH = 256  # ours: rows decoded together at most


def server_name(replica_rank: int, suffix: str = "") -> str:
    return f"asym_cpu_server_{replica_rank}{suffix}"


def served_weight_metrics(replica_rank: int = 0) -> dict[str, float]:
    """What the trainer logs per step from the CPU rollout (after verl's weight sync): how far the
    served weights, i.e. the actor's, have moved from the base model's (L2); the batches served and
    the seconds spent decoding them, both cumulative (validation included)."""
    stats = ray.get(ray.get_actor(server_name(replica_rank)).stats.remote())
    return {WEIGHT_CHANGE_METRIC: stats["weight_change"], "asym_cpu/rollout_batches": float(stats["batches"]),
            "asym_cpu/rollout_busy_s": stats["busy_s"]}


def eos_ids(model_config) -> list[int]:
    """EOS ids from the generation config, else the HF config (verl overwrites it from the tokenizer)."""
    for source in (getattr(model_config, "generation_config", None), getattr(model_config, "hf_config", None)):
        eos = getattr(source, "eos_token_id", None) if source is not None else None
        if eos is not None:
            return [int(e) for e in (eos if isinstance(eos, (list, tuple)) else [eos])]
    tokenizer = getattr(model_config, "tokenizer", None)
    eos = getattr(tokenizer, "eos_token_id", None)
    return [int(eos)] if eos is not None else []


def sample_next(logits: torch.Tensor, temperature: float, top_k: int, top_p: float,
                generator: torch.Generator) -> tuple[int, float]:
    """One token from (V,) logits and its log-prob under the sampling distribution (temperature-scaled,
    as verl's actor computes old log-probs; greedy: the log-prob at temperature 1)."""
    logits = logits.float()
    if temperature <= 0:
        token = int(torch.argmax(logits))
        return token, float(torch.log_softmax(logits, -1)[token])
    logp = torch.log_softmax(logits / temperature, -1)
    masked = logp.clone()
    if top_k is not None and 0 < top_k < masked.numel():
        kth = torch.topk(masked, top_k).values[-1]
        masked[masked < kth] = float("-inf")
    if top_p is not None and top_p < 1.0:
        probs = torch.softmax(masked, -1)
        sorted_p, order = torch.sort(probs, descending=True)
        drop = (sorted_p.cumsum(-1) - sorted_p) > top_p  # keep the smallest prefix reaching top_p
        masked[order[drop]] = float("-inf")
    probs = torch.softmax(masked, -1)
    token = int(torch.multinomial(probs, 1, generator=generator))
    return token, float(logp[token])


def own_name(name: str, own: dict) -> str:
    """verl exports the base model's weights for inference servers without the wrapper's prefix
    (GPT-2's ``transformer.``): map a synced name to the rollout model's own."""
    if name in own:
        return name
    for candidate in (f"transformer.{name}", f"model.{name}"):
        if candidate in own:
            return candidate
    return name


class CPURolloutServer:
    """verl's server interface for a Hugging Face model on the CPU (see the module docstring)."""

    def __init__(self, config, model_config, replica_rank: int = 0):
        from transformers import AutoModelForCausalLM  # deferred: transformers

        torch.set_num_threads(SERVER_THREADS)
        if not isinstance(model_config, HFModelConfig):
            model_config = omega_conf_to_dataclass(model_config, dataclass_type=HFModelConfig)
        self.config = config
        self.model_config = model_config
        self.replica_rank = replica_rank
        self.model = AutoModelForCausalLM.from_pretrained(model_config.local_path, dtype=torch.float32,
                                                          attn_implementation="sdpa").eval()
        self.eos = set(eos_ids(model_config))
        self.generator = torch.Generator().manual_seed(int(getattr(config, "seed", 0) or 0) + 7919 * replica_rank)
        self.lock = threading.Lock()  # one batch or one weight update at a time
        self.mode = os.environ.get(MODE_ENV, "batched").strip().lower() or "batched"
        if self.mode not in ("batched", "serial"):
            raise ValueError(f"{MODE_ENV} must be batched or serial, got {self.mode!r}")
        self.pending: list[tuple[tuple[list[int], dict[str, Any]], asyncio.Future]] = []
        self.drainer: Optional[asyncio.Task] = None
        # the weights as loaded: how far verl's weight sync has moved them (stats' weight_change)
        self.base = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        self.global_steps: Optional[int] = None
        self.requests = 0
        self.batches = 0
        self.busy_s = 0.0  # seconds spent decoding (cumulative)
        self.weight_updates = 0

    # --- generation ------------------------------------------------------------------------

    def max_tokens(self, prompt_len: int) -> int:
        c = self.config
        cap = min(int(c.response_length), int(c.prompt_length) + int(c.response_length) - prompt_len)
        max_len = getattr(c, "max_model_len", None)
        if max_len:
            cap = min(cap, int(max_len) - prompt_len)
        return max(0, cap)

    def pad_id(self) -> int:
        tokenizer = getattr(self.model_config, "tokenizer", None)
        pad = getattr(tokenizer, "pad_token_id", None)
        return int(pad) if pad is not None else (min(self.eos) if self.eos else 0)

    @torch.no_grad()
    def _generate_batch(self, requests: list[tuple[list[int], dict[str, Any]]]) -> list[TokenOutput]:
        """Decode the requests together: prompts left-padded to one width, one KV cache; each row
        samples with its own parameters and stops at EOS or its own length cap (a finished row keeps
        decoding padding, masked from nothing: its later tokens are dropped)."""
        n = len(requests)
        lengths = [len(prompt) for prompt, _ in requests]
        width = max(lengths)
        ids = torch.full((n, width), self.pad_id(), dtype=torch.long)  # (n, width)
        mask = torch.zeros((n, width), dtype=torch.long)
        for row, (prompt, _) in enumerate(requests):
            ids[row, width - len(prompt):] = torch.tensor(prompt, dtype=torch.long)
            mask[row, width - len(prompt):] = 1
        params = [(float(p.get("temperature", 1.0)), int(p.get("top_k", -1) or -1), float(p.get("top_p", 1.0) or 1.0))
                  for _, p in requests]
        caps = [self.max_tokens(length) for length in lengths]
        tokens: list[list[int]] = [[] for _ in range(n)]
        logprobs: list[list[float]] = [[] for _ in range(n)]
        done = [cap <= 0 for cap in caps]
        positions = (mask.cumsum(-1) - 1).clamp(min=0)  # left padding: each prompt starts at position 0
        step_input, past = ids, None
        with self.lock:
            self.requests += n
            self.batches += 1
            started = time.perf_counter()
            while not all(done):
                out = self.model(input_ids=step_input, attention_mask=mask, position_ids=positions,
                                 past_key_values=past, use_cache=True)
                past = out.past_key_values
                next_ids = []
                for row in range(n):
                    if done[row]:
                        next_ids.append(self.pad_id())
                        continue
                    token, logprob = sample_next(out.logits[row, -1], *params[row], self.generator)
                    tokens[row].append(token)
                    logprobs[row].append(logprob)
                    done[row] = token in self.eos or len(tokens[row]) >= caps[row]
                    next_ids.append(token)
                step_input = torch.tensor(next_ids, dtype=torch.long)[:, None]  # (n, 1)
                positions = positions[:, -1:] + 1
                mask = torch.cat([mask, torch.ones((n, 1), dtype=torch.long)], dim=1)
            steps_now = self.global_steps
            self.busy_s += time.perf_counter() - started
        return [TokenOutput(token_ids=t, log_probs=lp, stop_reason="completed", extra_fields={"global_steps": steps_now})
                for t, lp in zip(tokens, logprobs)]

    async def generate(self, prompt_ids: list[int], sampling_params: dict[str, Any], request_id: str,
                       image_data=None, video_data=None, audio_data=None, mm_processor_kwargs=None,
                       **kwargs: Any) -> TokenOutput:
        if image_data or video_data or audio_data:
            raise NotImplementedError("the asym CPU rollout serves text-only models")
        request = (list(prompt_ids), dict(sampling_params))
        if self.mode == "serial":
            return (await asyncio.to_thread(self._generate_batch, [request]))[0]
        future = asyncio.get_running_loop().create_future()
        self.pending.append((request, future))
        if self.drainer is None or self.drainer.done():
            self.drainer = asyncio.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        """Serve the pending requests in batches until none is left (runs on the actor's event loop)."""
        while self.pending:
            seen = -1
            while len(self.pending) != seen and len(self.pending) < MAX_BATCH:  # until arrivals stop
                seen = len(self.pending)
                await asyncio.sleep(BATCH_WINDOW_S)
            batch, self.pending = self.pending[:MAX_BATCH], self.pending[MAX_BATCH:]
            try:
                outputs = await asyncio.to_thread(self._generate_batch, [request for request, _ in batch])
            except Exception as exc:  # every waiting request gets the error, none hangs
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (_, future), output in zip(batch, outputs):
                if not future.done():
                    future.set_result(output)

    # --- weights ---------------------------------------------------------------------------

    def _load(self, state: dict[str, torch.Tensor], global_steps: Optional[int]) -> int:
        own = self.model.state_dict()
        named = {own_name(name, own): tensor for name, tensor in state.items()}
        unknown = sorted(k for k in named if k not in own)
        if unknown:
            raise KeyError(f"weights not in the rollout model: {', '.join(unknown[:5])}")
        with self.lock:
            for name, tensor in named.items():
                own[name].copy_(tensor.to(own[name].dtype))
            self.global_steps = global_steps
            self.weight_updates += 1
        return len(state)

    def weight_change(self) -> float:
        """L2 distance of the served weights from those loaded at start (the base model)."""
        with self.lock:
            squares = sum(float(((v.float() - self.base[k].float()) ** 2).sum()) for k, v in self.model.state_dict().items())
        return squares ** 0.5

    async def update_weights(self, state: dict[str, torch.Tensor], global_steps: Optional[int] = None) -> int:
        return await asyncio.to_thread(self._load, state, global_steps)

    async def stats(self) -> dict[str, Any]:
        return {"requests": self.requests, "batches": self.batches, "busy_s": self.busy_s,
                "weight_updates": self.weight_updates,
                "global_steps": self.global_steps, "mode": self.mode,
                "weight_change": await asyncio.to_thread(self.weight_change)}

    async def state_dict(self) -> dict[str, torch.Tensor]:
        return {k: v.detach().clone() for k, v in self.model.state_dict().items()}

    # --- verl's server lifecycle: nothing to free or restore on a CPU ------------------------

    async def set_global_steps(self, global_steps: int):
        self.global_steps = global_steps

    async def wake_up(self):
        return None

    async def sleep(self):
        return None

    async def abort_all_requests(self, reject_request: bool = False) -> dict[str, Any]:
        return {"aborted_count": 0, "request_ids": []}

    async def resume_generation(self):
        return None

    async def clear_kv_cache(self):
        return None  # caches live per request

    async def release_kv_cache(self):
        return None

    async def resume_kv_cache(self):
        return None

    async def start_profile(self, **kwargs):
        return None

    async def stop_profile(self):
        return None


class CPURolloutReplica(RolloutReplica):
    """A hybrid replica whose server is one ``CPURolloutServer`` actor on the worker's node."""

    async def launch_servers(self):
        if self.world_size != 1:
            raise ValueError(f"the asym CPU rollout runs one process per replica; set "
                             f"rollout.tensor_model_parallel_size=1 (world size {self.world_size})")
        node_id = None
        if self.workers:
            node_id = await self.workers[0].__ray_call__.remote(lambda w: ray.get_runtime_context().get_node_id())
        options: dict[str, Any] = {"name": server_name(self.replica_rank, self.name_suffix),
                                   "max_concurrency": self.max_concurrency, "num_cpus": 0}
        if node_id is not None:
            options["scheduling_strategy"] = ray.util.scheduling_strategies.NodeAffinitySchedulingStrategy(
                node_id=node_id, soft=False)
        server = ray.remote(CPURolloutServer).options(**options).remote(
            config=self.config, model_config=self.model_config, replica_rank=self.replica_rank)
        await server.stats.remote()  # the model loaded
        self.servers = [server]
        self._server_handle = server
        self._server_address = f"asym-cpu-rollout-{self.replica_rank}{self.name_suffix}"


class CPUServerAdapter(BaseRollout):
    """The worker-side half: receives verl's weight sync and forwards it to this replica's server."""

    def __init__(self, config, model_config, device_mesh, replica_rank: int = -1, **kwargs: Any):
        super().__init__(config, model_config, device_mesh)
        if device_mesh is not None:
            self.replica_rank = device_mesh["dp"].get_local_rank()
        else:
            self.replica_rank = max(replica_rank, 0)
        self.is_leader_rank = True
        self._server = None

    def server(self):
        if self._server is None:
            self._server = ray.get_actor(server_name(self.replica_rank))
        return self._server

    async def resume(self, tags: list[str]):
        return None

    async def release(self):
        return None

    async def update_weights(self, weights, wire_format: str = "named_tensors", global_steps: int | None = None,
                             **kwargs: Any):
        if wire_format != "named_tensors":
            raise NotImplementedError(f"the asym CPU rollout takes full named tensors, got wire_format={wire_format}")
        state = {}
        for name, tensor in weights:
            if hasattr(tensor, "full_tensor"):  # a DTensor shard
                tensor = tensor.full_tensor()
            state[name] = tensor.detach().to("cpu").clone()
        await self.server().update_weights.remote(ray.put(state), global_steps)
