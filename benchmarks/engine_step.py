"""One RL step of the embedded engine (64 prompts x 8 rollouts): time, FLOP/s, peak memory.

Measures in one run, side by side:
- the machine's float32 matmul throughput (a 1024 x 1024 matmul at the same thread count);
- the step split into rollout (sampling + scoring), advantages + diagnostics, update (PPO
  mini-batches, forward + backward + AdamW) and the log-prob-gain forward;
- achieved FLOP/s of rollout and update (analytic FLOP count of the transformer) as a fraction of
  that matmul throughput;
- peak resident memory of the process.

    .venv/bin/python benchmarks/engine_step.py [--threads 2] [--steps 6] [--smoke] [--device cpu]

Targets (issue 3): <= 0.5 s per step on 2 cores, >= 25% of matmul throughput, < 2 GiB peak RSS;
issue 14 aims at <= 150 ms per step on a quiet 2-core CPU.
The base model is taken from (or made in) the cache (ASYM_CACHE_DIR); its warm-up is not timed.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from estimators import broadcast_to_tokens, compute_advantages, diagnostics
from tinyrlvr.base_model import get_base_model, load_policy
from tinyrlvr.config import SMOKE_OVERRIDES, EngineConfig
from tinyrlvr.rollout import collect
from tinyrlvr.trainer import _after_update, logp_gain_correct
from tinyrlvr.update import ppo_update


def matmul_gflops(device: str, n: int = 1024, repeats: int = 20) -> float:
    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    for _ in range(3):
        a @ b
    _sync(device)
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    _sync(device)
    return 2 * n**3 * repeats / (time.perf_counter() - start) / 1e9


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def forward_flops_per_token(cfg: EngineConfig, context: float) -> float:
    """2 x matmul parameters (qkv, proj, MLP, head) + attention scores and values over ``context`` keys."""
    d, L = cfg.d_model, cfg.n_layers
    per_layer = 2 * (3 * d * d + d * d + 2 * cfg.mlp_ratio * d * d) + 2 * 2 * context * d
    return L * per_layer + 2 * d * 13


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=6, help="timed steps (after one untimed step)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--smoke", action="store_true", help="smoke model and batch (a quick check of the script)")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    overrides = SMOKE_OVERRIDES if args.smoke else {}
    cfg = EngineConfig.create(estimator="grpo", steps=1000, seed=0, device=args.device, threads=args.threads, **overrides)
    policy = load_policy(get_base_model(cfg), cfg.device)
    optimizer = torch.optim.AdamW(policy.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    peak = matmul_gflops(args.device)

    rows = []
    for step in range(1, args.steps + 2):
        _sync(args.device)
        t0 = time.perf_counter()
        batch = collect(policy, cfg, step)
        _sync(args.device)
        t1 = time.perf_counter()
        adv = compute_advantages(cfg.estimator, batch.rewards, batch.group_ids, cfg.alpha_pos, cfg.alpha_neg)
        seq_old = diagnostics.sequence_mean_logprob(batch.old_logp, batch.response_mask)
        diagnostics.kappa(batch.rewards, batch.group_ids, seq_old)
        diagnostics.solve_fractions(batch.rewards, batch.group_ids)
        diagnostics.advantage_mass(batch.rewards, adv)
        t2 = time.perf_counter()
        ppo_update(policy, optimizer, batch, broadcast_to_tokens(adv, batch.response_mask), cfg, step)
        _sync(args.device)
        t3 = time.perf_counter()
        new_logp, _ = _after_update(policy, batch, cfg)  # the post-update pass (log-prob gain, channel telemetry)
        logp_gain_correct(batch, seq_old, new_logp)
        _sync(args.device)
        t4 = time.perf_counter()
        n, p, r = batch.responses.shape[0], batch.prompts.shape[1], batch.responses.shape[1]
        decoded = int(batch.response_mask.any(0).sum())  # decode steps run (all rows each step)
        f_tok = forward_flops_per_token(cfg, (p + r) / 2)
        rollout_flops = cfg.prompts_per_step * p * f_tok + n * decoded * f_tok
        # The work done: each distinct prompt runs once per pass (at most B per mini-batch) and every
        # row runs its response but the last token (``model.response_logprobs``); backward ~ 2x forward.
        pass_tokens = cfg.mini_batches * cfg.prompts_per_step * p + n * (r - 1)
        update_flops = 3 * cfg.ppo_epochs * pass_tokens * f_tok
        gain_flops = (cfg.prompts_per_step * p + n * (r - 1)) * f_tok  # the post-update pass, all rows
        rows.append({"rollout": t1 - t0, "adv": t2 - t1, "update": t3 - t2, "gain": t4 - t3, "total": t4 - t0,
                     "rollout_flops": rollout_flops, "update_flops": update_flops + gain_flops,
                     "reward": float(batch.rewards.mean()), "len": float(batch.response_mask.sum(-1).float().mean())})
    rows = rows[1:]  # the first step warms up allocators and kernels

    def med(key: str) -> float:
        return statistics.median(row[key] for row in rows)

    rss_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    n_params = sum(p.numel() for p in policy.parameters())
    rollout_rate = med("rollout_flops") / med("rollout") / 1e9
    update_rate = med("update_flops") / (med("update") + med("gain")) / 1e9
    print(f"engine step: {cfg.prompts_per_step} prompts x {cfg.group_size} rollouts, model {n_params / 1e3:.0f}k params, "
          f"device {args.device}, threads {args.threads}, median of {len(rows)} steps")
    print(f"  reward mean {med('reward'):.2f}, response length {med('len'):.2f} tokens")
    print(f"  step total      {med('total') * 1e3:7.1f} ms   (target <= 500 ms, issue 14 aim <= 150 ms; "
          f"ratio to 150 ms {med('total') / 0.15:.2f})")
    print(f"    rollout       {med('rollout') * 1e3:7.1f} ms")
    print(f"    advantages    {med('adv') * 1e3:7.1f} ms")
    print(f"    update        {med('update') * 1e3:7.1f} ms")
    print(f"    logp gain fwd {med('gain') * 1e3:7.1f} ms")
    print(f"  float32 matmul throughput (1024^3): {peak:.1f} GFLOP/s")
    print(f"  rollout achieved {rollout_rate:.1f} GFLOP/s = {rollout_rate / peak:.0%} of matmul throughput")
    print(f"  update  achieved {update_rate:.1f} GFLOP/s = {update_rate / peak:.0%} of matmul throughput")
    print(f"  peak RSS {rss_gib:.2f} GiB (target < 2 GiB; ratio {rss_gib / 2:.2f})")


if __name__ == "__main__":
    main()
