"""The embedded engine against its peer, side by side in one run: TRL's GRPOTrainer and tinyrlvr.

Same workload for both, at the same torch thread count:
- the task: tinyrlvr's tiered reversed-answer addition (tiers 1-4), prompts ``^a+b=`` drawn from its
  training split, responses of at most ``max_new_tokens`` (8) tokens, sampled at temperature 1;
- the reward: tinyrlvr's exact verifier (``tinyrlvr.task.verify``) on the response's own token ids;
- the batch: 64 prompts x 8 rollouts, PPO-clip (0.2), no KL term, one epoch of 2 mini-batches
  (2 optimizer steps) per RL step, AdamW at lr 1e-4, token-mean loss;
- the model size: a 2-layer, 128-wide causal transformer with a 4x MLP and 4 heads, about 0.4M
  parameters (TRL: a GPT-2 of that shape built from a local ``GPT2Config``; tinyrlvr: its own
  ``Policy``); both from a random initialisation, so both sample the full 8 tokens every rollout;
- the tokenizer (TRL): a character-level ``tokenizers`` WordLevel over the task's 15 characters,
  built in code (nothing is downloaded).

Reported: the median wall time of one RL step (rollout + reward + update) over ``--steps`` steps
after ``--warmup`` untimed ones, and the ratio. tinyrlvr is also timed from its shipped base model
(the realistic case: short answers, so shorter rollouts). TRL is a bench-only extra
(``pip install -e '.[bench]'``); it never becomes a runtime dependency.

    .venv/bin/python benchmarks/engine_vs_trl.py [--threads 2] [--steps 6]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path[0] = str(REPO)  # benchmarks/estimators.py would shadow the estimators package
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402

from tinyrlvr.config import EngineConfig  # noqa: E402
from tinyrlvr.task import CHARS, decode, sample_problems, verify  # noqa: E402

PROMPTS, GROUP = 64, 8


def engine_config(threads: int) -> EngineConfig:
    return EngineConfig.create(estimator="grpo", steps=10_000, threads=threads, prompts_per_step=PROMPTS,
                               group_size=GROUP)


# --- TRL ------------------------------------------------------------------------------------------


def char_tokenizer():
    from tokenizers import Regex, Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {c: i for i, c in enumerate(CHARS)}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="_"))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="^", eos_token="$", pad_token="_",
                                   unk_token="_", padding_side="left")


def trl_model(cfg: EngineConfig):
    from transformers import GPT2Config, GPT2LMHeadModel

    config = GPT2Config(vocab_size=len(CHARS), n_positions=cfg.max_prompt_len + cfg.max_new_tokens + 1,
                        n_embd=cfg.d_model, n_layer=cfg.n_layers, n_head=cfg.n_heads,
                        n_inner=cfg.mlp_ratio * cfg.d_model, bos_token_id=13, eos_token_id=12, pad_token_id=14,
                        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    torch.manual_seed(0)
    return GPT2LMHeadModel(config)


def prompts_dataset(cfg: EngineConfig, n: int):
    from datasets import Dataset

    gen = torch.Generator().manual_seed(1)
    tiers = torch.tensor(cfg.tiers)[torch.randint(len(cfg.tiers), (n,), generator=gen)]
    problems = sample_problems(tiers, gen, heldout=False)
    return Dataset.from_dict({"prompt": [f"^{a}+{b}=" for a, b in zip(problems.a.tolist(), problems.b.tolist())]})


def exact_reward(prompts, completions, completion_ids, **_):
    """tinyrlvr's verifier on the sampled ids (TRL's text drops the end token, a special token)."""
    out = []
    for prompt, ids in zip(prompts, completion_ids):
        a, b = prompt.strip("^=").split("+")
        out.append(1.0 if verify(int(a), int(b), decode(ids)) else 0.0)
    return out


def time_trl(cfg: EngineConfig, steps: int, warmup: int, work: Path) -> tuple[list[float], int]:
    from transformers import TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    marks: list[float] = []

    class Clock(TrainerCallback):
        def on_step_end(self, args, state, control, **kw):
            marks.append(time.perf_counter())

    total = warmup + steps
    args = GRPOConfig(
        output_dir=str(work), use_cpu=True, report_to="none", save_strategy="no", logging_steps=10_000,
        per_device_train_batch_size=PROMPTS * GROUP // cfg.mini_batches, gradient_accumulation_steps=1,
        steps_per_generation=cfg.mini_batches, num_generations=GROUP, num_iterations=cfg.ppo_epochs,
        max_completion_length=cfg.max_new_tokens, temperature=cfg.temperature, top_p=1.0, top_k=0,
        learning_rate=cfg.lr, weight_decay=cfg.weight_decay, max_grad_norm=cfg.grad_clip, beta=0.0,
        epsilon=cfg.clip_low, loss_type="dapo", scale_rewards="group", max_steps=(total + 1) * cfg.mini_batches,
        lr_scheduler_type="constant", warmup_steps=0, dataloader_num_workers=0, seed=0, disable_dropout=True,
        bf16=False, fp16=False, shuffle_dataset=False,
    )
    model = trl_model(cfg)
    params = sum(p.numel() for p in model.parameters())
    trainer = GRPOTrainer(model=model, reward_funcs=exact_reward, args=args, processing_class=char_tokenizer(),
                          train_dataset=prompts_dataset(cfg, PROMPTS * (total + 2)), callbacks=[Clock()])
    trainer.train()
    # One RL step = one generation + mini_batches optimizer steps: the time between every
    # mini_batches-th optimizer step.
    ends = marks[cfg.mini_batches - 1::cfg.mini_batches]
    times = [b - a for a, b in zip(ends, ends[1:])]
    return times[warmup:][:steps], params


# --- tinyrlvr ---------------------------------------------------------------------------------------


def time_engine(cfg: EngineConfig, steps: int, warmup: int, from_base: bool) -> tuple[list[float], int, float]:
    from tinyrlvr.base_model import get_base_model, load_policy
    from tinyrlvr.model import ModelShape, Policy
    from tinyrlvr.trainer import rl_step

    if from_base:
        policy = load_policy(get_base_model(cfg), cfg.device)
    else:
        torch.manual_seed(0)
        policy = Policy(ModelShape.from_config(cfg))
    optimizer = torch.optim.AdamW(policy.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    times, lengths = [], []
    for step in range(1, warmup + steps + 1):
        start = time.perf_counter()
        metrics = rl_step(policy, optimizer, cfg, step)
        times.append(time.perf_counter() - start)
        lengths.append(metrics["train/response_length"])
    return times[warmup:], sum(p.numel() for p in policy.parameters()), statistics.mean(lengths)


def main() -> None:
    import tempfile

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=6, help="timed RL steps per engine")
    parser.add_argument("--warmup", type=int, default=1, help="untimed RL steps first")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cfg = engine_config(args.threads)
    import trl

    print(f"torch {torch.__version__}, TRL {trl.__version__}, {args.threads} threads, "
          f"load average {os.getloadavg()[0]:.1f} at the start", flush=True)
    with tempfile.TemporaryDirectory(prefix="asym-trl-") as tmp:
        trl_times, trl_params = time_trl(cfg, args.steps, args.warmup, Path(tmp))
    eng_times, eng_params, eng_len = time_engine(cfg, args.steps, args.warmup, from_base=False)
    base_times, _, base_len = time_engine(cfg, args.steps, args.warmup, from_base=True)
    trl_ms, eng_ms, base_ms = (1000 * statistics.median(t) for t in (trl_times, eng_times, base_times))
    print(f"\nRL step, {PROMPTS} prompts x {GROUP}, median of {args.steps} after {args.warmup} untimed; "
          f"load average {os.getloadavg()[0]:.1f} at the end")
    print(f"  TRL GRPOTrainer, GPT-2 {trl_params / 1e6:.2f}M params, random init (8 tokens): {trl_ms:7.1f} ms")
    print(f"  tinyrlvr, Policy {eng_params / 1e6:.2f}M params, random init ({eng_len:.1f} tokens): {eng_ms:7.1f} ms")
    print(f"  tinyrlvr from its base model ({base_len:.1f} tokens):                 {base_ms:7.1f} ms")
    print(f"ratio TRL / tinyrlvr (same random-init workload): {trl_ms / eng_ms:.2f}x")


if __name__ == "__main__":
    main()
