"""verl's real trainer on a CPU (backends/verl/cpu): the pieces, then a real sweep.

Fast checks: the GPT-2 export computes the embedded base model's logits; the exact reward; the
registrations inside a fresh ``import verl`` (and nothing without the switch); the version guard of
the one patch; the CPU rollout server (greedy = the engine's argmax, EOS and length caps, concurrent
requests batched with log-probs equal to a plain forward's, weight updates); GPU-only settings of a CPU preset refused in one line (exit 2).
Slow: ``asym sweep grid --backend verl --model cpu-tiny`` with one trial through verl's real
``main_ppo`` (TaskRunnerV1, our trainer subclass, agent loop, reward loop, FSDP2 update, weight
sync), its MLflow child runs holding the shared names next to verl's ``actor/*``, proof that verl
learned (gradient, moved weights, log-prob gain), then ``asym report``.
"""

from __future__ import annotations

import asyncio
import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

pytest.importorskip("verl")

from common import metric_names as mn  # noqa: E402
from backends.verl.cpu import assets as A  # noqa: E402
from backends.verl.cpu.reward import compute_score  # noqa: E402


@pytest.fixture(scope="module")
def exported():
    cfg = A.engine_config()
    return cfg, A.ensure_assets(cfg)


def test_export_has_the_engine_policys_logits(exported):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tinyrlvr.base_model import get_base_model, load_policy
    from tinyrlvr.model import positions_from_mask
    from tinyrlvr.task import OUTPUT_VOCAB, encode_prompts, sample_problems

    cfg, assets = exported
    policy = load_policy(get_base_model(cfg))
    hf = AutoModelForCausalLM.from_pretrained(assets.model_dir, attn_implementation="sdpa").eval()
    problems = sample_problems(torch.tensor([1, 2, 2, 1, 2, 1]), torch.Generator().manual_seed(3), heldout=False)
    ids, valid = encode_prompts(problems, cfg.max_prompt_len)
    with torch.no_grad():
        ours = policy(ids, valid)
        theirs = hf(input_ids=ids, attention_mask=valid.long(), position_ids=positions_from_mask(valid)).logits
    assert torch.allclose(ours[valid], theirs[valid][:, :OUTPUT_VOCAB], atol=1e-5)
    assert float(theirs[valid][:, OUTPUT_VOCAB:].max()) < -9000  # PAD/BOS pinned: softmax gives exactly 0
    assert torch.equal(torch.log_softmax(theirs[valid], -1)[:, :OUTPUT_VOCAB], torch.log_softmax(theirs[valid][:, :OUTPUT_VOCAB], -1))
    tok = AutoTokenizer.from_pretrained(assets.model_dir)
    text = tok.apply_chat_template([{"role": "user", "content": "12+39="}], tokenize=False, add_generation_prompt=True)
    assert tok(text, add_special_tokens=False).input_ids == [13, 1, 2, 10, 3, 9, 11]
    assert tok.decode([1, 5, 12, 14], skip_special_tokens=True) == "15$"  # the end token survives decoding
    assert json.loads((assets.model_dir / "asym_export.json").read_text())["key"] == cfg.base_model_key()


def test_reward_is_the_engines_exact_verifier():
    assert compute_score("tier2", "15$", "15$")["score"] == 1.0
    assert compute_score("tier2", "15$77", "15$")["score"] == 1.0  # after the end token: ignored
    for wrong in ("15", "1$", "155$", ""):
        assert compute_score("tier2", wrong, "15$") == {"score": 0.0, "acc": 0.0}


def _run(code: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)


def test_registrations_only_with_the_switch(clean_env):
    code = ("import verl, json; from backends.verl.cpu import plugin; "
            "from verl.workers.rollout.replica import RolloutReplicaRegistry as R; "
            "from verl.utils.device import get_device_name, get_nccl_backend; "
            "print(json.dumps([plugin.registered(), get_device_name(), get_nccl_backend(), R.get('asym_cpu').__name__]))")
    on = _run(code, {**clean_env, "VERL_PLATFORM": "asym_cpu"})
    assert on.returncode == 0, on.stderr[-2000:]
    found, device, backend, replica = json.loads(on.stdout.strip().splitlines()[-1])
    assert (device, backend, replica) == ("cpu", "gloo", "CPURolloutReplica")
    assert found["engine"] == "FSDPEngineWithLMHead" and found["platform"] == "PlatformCPU"
    off = _run("import verl; from verl.workers.rollout.base import _ROLLOUT_REGISTRY as T; "
               "print(('asym_cpu', 'async') in T)", clean_env)
    assert off.returncode == 0 and off.stdout.strip().splitlines()[-1] == "False"


def test_patch_refuses_another_verl_version():
    from backends.verl.cpu import patch

    with pytest.raises(RuntimeError, match="patches verl 0.9.1 .* verl 0.10.0 is installed"):
        patch.check_verl_version("0.10.0")


@pytest.fixture(scope="module")
def server(exported):
    from verl.workers.config import HFModelConfig, RolloutConfig

    from backends.verl.cpu.rollout import CPURolloutServer

    cfg, assets = exported
    rollout = RolloutConfig(name="asym_cpu", prompt_length=cfg.max_prompt_len, response_length=cfg.max_new_tokens)
    model = HFModelConfig(path=str(assets.model_dir), override_config={"attn_implementation": "sdpa"})
    return CPURolloutServer(rollout, model)


def test_rollout_server_greedy_matches_the_engine_and_caps_length(server, exported):
    from tinyrlvr.base_model import get_base_model, load_policy
    from tinyrlvr.task import EOS

    cfg, _ = exported
    policy = load_policy(get_base_model(cfg))
    prompts = [[13, 7, 10, 5, 11], [13, 4, 2, 10, 3, 9, 11], [13, 0, 10, 0, 11]]
    async def concurrently():
        return await asyncio.gather(*[server.generate(p, {"temperature": 0.0}, f"r{i}") for i, p in enumerate(prompts)])

    outs = asyncio.run(concurrently())
    for prompt, out in zip(prompts, outs):
        tokens = list(prompt)
        expected = []
        for _ in range(cfg.max_new_tokens):  # the engine's own greedy decoding, no cache
            with torch.no_grad():
                logits = policy(torch.tensor([tokens]), torch.ones(1, len(tokens), dtype=torch.bool))[0, -1]
            expected.append(int(logits.argmax()))
            tokens.append(expected[-1])
            if expected[-1] == EOS:
                break
        assert out.token_ids == expected
        assert len(out.log_probs) == len(out.token_ids) and all(lp <= 0 for lp in out.log_probs)
        assert len(out.token_ids) <= cfg.max_new_tokens
    sampled = asyncio.run(server.generate(prompts[0], {"temperature": 1.0, "top_p": 1.0, "top_k": -1}, "s"))
    assert 1 <= len(sampled.token_ids) <= cfg.max_new_tokens


def test_rollout_server_batches_concurrent_requests_and_its_logprobs_are_a_full_forwards(server):
    """Requests that arrive together are decoded as one left-padded batch; each row's sampled log-probs
    equal those of one plain forward of its own unpadded prompt + response (as verl's actor computes
    them, the < 1e-4 the real sweep checks); the serial server samples from the same distributions."""
    from backends.verl.cpu import rollout as R

    prompts = [[13, 7, 10, 5, 11], [13, 4, 2, 10, 3, 9, 11], [13, 0, 10, 0, 11], [13, 9, 9, 10, 9, 9, 11]] * 2
    params = {"temperature": 1.0, "top_p": 1.0, "top_k": -1}

    async def concurrently():
        return await asyncio.gather(*[server.generate(p, params, f"b{i}") for i, p in enumerate(prompts)])

    before = asyncio.run(server.stats())["batches"]
    outs = asyncio.run(concurrently())
    assert asyncio.run(server.stats())["batches"] == before + 1  # one batch for the eight requests
    worst = 0.0
    for prompt, out in zip(prompts, outs):
        ids = torch.tensor([prompt + out.token_ids])
        with torch.no_grad():
            logp = torch.log_softmax(server.model(input_ids=ids).logits[0].float(), -1)
        want = logp[len(prompt) - 1:-1].gather(-1, torch.tensor(out.token_ids)[:, None])[:, 0]
        worst = max(worst, float((want - torch.tensor(out.log_probs)).abs().max()))
    assert worst < 1e-4, worst
    serial = R.CPURolloutServer.__new__(R.CPURolloutServer)
    serial.__dict__.update({**server.__dict__, "mode": "serial", "pending": [], "drainer": None})
    one = asyncio.run(serial.generate(prompts[1], {"temperature": 0.0}, "s"))
    assert one.token_ids == asyncio.run(server.generate(prompts[1], {"temperature": 0.0}, "g")).token_ids


def test_rollout_server_takes_verls_weight_sync(server):
    state = asyncio.run(server.state_dict())
    names = [k.removeprefix("transformer.") for k in state]  # verl syncs the base model's names
    zeroed = {n: torch.zeros_like(state[k]) if n == "lm_head.weight" else state[k] for n, k in zip(names, state)}
    before = asyncio.run(server.generate([13, 7, 10, 5, 11], {"temperature": 0.0}, "a"))
    asyncio.run(server.update_weights(zeroed, global_steps=3))
    assert asyncio.run(server.stats())["weight_change"] > 0  # moved from the weights loaded at start
    after = asyncio.run(server.generate([13, 7, 10, 5, 11], {"temperature": 0.0}, "b"))
    asyncio.run(server.update_weights({k: v for k, v in state.items()}, global_steps=4))
    assert after.token_ids != before.token_ids and after.extra_fields["global_steps"] == 3
    stats = asyncio.run(server.stats())
    assert stats["weight_updates"] == 2 and stats["weight_change"] == 0.0  # restored: the base's weights again


def _asym() -> str:
    local = Path(sys.executable).with_name("asym")
    return str(local) if local.exists() else shutil.which("asym")


@pytest.mark.parametrize("setting, message", [
    ("rollout_name: vllm", "cannot use rollout_name vllm"),
    ("attn_implementation: flash_attention_2", "cannot use attn_implementation flash_attention_2"),
    ("use_kl_loss: true", "cannot use use_kl_loss"),
])
def test_gpu_only_setting_of_a_cpu_preset_is_one_line_exit_2(tmp_path, clean_env, setting, message):
    config = tmp_path / "bad.yaml"
    config.write_text(f"cpu-tiny:\n  {setting}\n")
    run = subprocess.run([_asym(), "sweep", "grid", "--backend", "verl", "--model", "cpu-tiny", "--alpha-pos", "1",
                          "--alpha-neg", "0.5", "--config", str(config)], cwd=tmp_path, env=clean_env,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 2
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], run.stderr
    assert not (tmp_path / ".asym").exists()  # nothing started, nothing half-written


SWEEP = "verl-cpu-e2e"


@pytest.mark.slow
def test_real_verl_sweep_then_report(tmp_path, clean_env):
    from experiments import tracking_names as tn

    from test_report import _tracked_runs  # noqa: E402  (tests/ is on sys.path)

    env = {k: v for k, v in clean_env.items() if k not in ("MLFLOW_TRACKING_URI", "VERL_PLATFORM")}
    sweep = subprocess.run([_asym(), "sweep", "grid", "--backend", "verl", "--model", "cpu-tiny", "--alpha-pos", "1",
                            "--alpha-neg", "0.5", "--steps", "2", "--name", SWEEP],
                           cwd=tmp_path, env=env, capture_output=True, text=True, timeout=1500)
    logs = sorted(tmp_path.rglob("attempt-*.log"))
    tail = "\n".join(p.read_text(errors="replace")[-3000:] for p in logs[-1:])
    assert sweep.returncode == 0, sweep.stdout[-2000:] + sweep.stderr[-2000:] + tail
    runs = _tracked_runs(tn.default_tracking_uri(tmp_path), SWEEP)
    assert len(runs) == 1  # one trial: tests/test_verl_cluster.py trains verl again, over two nodes
    for run in runs:
        h = run["history"]
        for key in (mn.ENTROPY, mn.NONE_SOLVED, mn.ALL_SOLVED, mn.ADV_MASS_POS, "actor/pg_loss",
                    "actor/entropy", "actor/grad_norm", "training/rollout_probs_diff_max"):
            assert sorted(h.get(key, {})) == [1, 2], (key, sorted(h))
        assert set(h.get(mn.KAPPA, {})) <= {1, 2}  # kappa is undefined (not logged) without a mixed group
        # Fig 2 (d,h): one extra actor forward after each update (logp_gain_every = 1); a step with no
        # correct rollout logs none. Its cost is verl's own timer, beside the update's
        assert set(h.get(mn.LOGP_GAIN_CORRECT, {})) <= {1, 2} and h.get(mn.LOGP_GAIN_CORRECT), sorted(h)
        assert all(math.isfinite(v) for v in h[mn.LOGP_GAIN_CORRECT].values())
        assert sorted(h.get("timing_s/asym_logp_gain", {})) == [1, 2] and sorted(h["timing_s/update_actor"]) == [1, 2]
        # verl trained (issue 26): a gradient on every step, weights moved from the base by step 2
        # (the CPU rollout's copy after verl's weight sync), and a log-prob gain on correct rollouts.
        # Checked once with AdamW.step patched to a no-op in cpu/plugin.register (every verl
        # process): grad_norm stays > 0, weight_change and the gain are exactly 0, and this fails.
        assert all(math.isfinite(v) and v > 0 for v in h["actor/grad_norm"].values()), h["actor/grad_norm"]
        assert h.get("asym_cpu/weight_change", {}).get(2, 0.0) > 0, h.get("asym_cpu/weight_change")
        assert all(abs(v) > 1e-7 for v in h[mn.LOGP_GAIN_CORRECT].values()), h[mn.LOGP_GAIN_CORRECT]
        # the rollout server's log-probs are the FSDP actor's: same weights (verl's weight sync), float32
        assert max(h["training/rollout_probs_diff_max"].values()) < 1e-4
        assert sorted(h[mn.eval_accuracy("tier1")]) == [0, 2] and sorted(h[mn.EVAL_MEAN_ACCURACY]) == [0, 2]
        assert all(0 <= v <= 1 for v in h[mn.NONE_SOLVED].values())
        # our token-mean entropy and verl's (token-mean runs) agree: the same batch, two code paths
        assert h[mn.ENTROPY][1] == pytest.approx(h["actor/entropy"][1], rel=0.05)
    report = subprocess.run([_asym(), "report", SWEEP], cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=300)
    assert report.returncode == 0, report.stderr[-2000:]
    assert (tmp_path / "reports" / SWEEP / "report.html").stat().st_size > 10_000
