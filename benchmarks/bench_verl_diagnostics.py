"""What the verl backend adds to one verl training step, measured beside verl's own advantage step.

One run, side by side, on a Qwen3-4B-sized rollout batch (128 prompts x 8 rollouts, 4,096 response
tokens, 2% verl pad rows): verl's ``compute_advantage`` with its ``grpo``, ``grpo_vectorized`` and
our registered ``asym_grpo``, then our ``batch_diagnostics`` on the same ``DataProto``. Prints
median seconds and the ratios to verl's ``grpo``.

    .venv/bin/python benchmarks/bench_verl_diagnostics.py [--prompts 128] [--tokens 4096] [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
from omegaconf import OmegaConf
from verl.protocol import DataProto
from verl.trainer.ppo.ray_trainer import compute_advantage

import backends.verl.adapter  # noqa: F401  (registers asym_grpo)
from backends.verl.diagnostics import batch_diagnostics


def make_batch(prompts: int, n: int, tokens: int, pad_frac: float, seed: int = 0) -> DataProto:
    gen = torch.Generator().manual_seed(seed)
    rows = prompts * n
    pads = int(rows * pad_frac)
    lengths = torch.randint(1, tokens + 1, (rows + pads,), generator=gen)
    mask = (torch.arange(tokens).unsqueeze(0) < lengths.unsqueeze(1)).float()
    mask[rows:] = 0
    p = torch.rand(prompts, generator=gen).repeat_interleave(n)
    correct = (torch.rand(rows, generator=gen) < p).float()
    scores = torch.zeros(rows + pads, tokens)
    scores[torch.arange(rows), lengths[:rows] - 1] = correct
    uids = np.array([f"u{i // n}" for i in range(rows)] + ["padx"] * pads, dtype=object)
    return DataProto.from_dict(
        tensors={"token_level_rewards": scores, "rm_scores": scores, "response_mask": mask,
                 "old_log_probs": -torch.rand(rows + pads, tokens, generator=gen) * mask,
                 "entropy": torch.rand(rows + pads, tokens, generator=gen)},
        non_tensors={"uid": uids})


def median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prompts", type=int, default=128)
    ap.add_argument("--n", type=int, default=8)
    ap.add_argument("--tokens", type=int, default=4096)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    batch = make_batch(args.prompts, args.n, args.tokens, 0.02)
    cfg = OmegaConf.create({"adv_estimator": "x", "norm_adv_by_std_in_grpo": True, "gamma": 1.0, "lam": 1.0,
                            "asym": {"variant": "asym", "alpha_pos": 0.9, "alpha_neg": 0.4}})
    cases = {}
    for name in ("grpo", "grpo_vectorized", "asym_grpo"):
        cases[f"verl compute_advantage({name})"] = median_time(
            lambda name=name: compute_advantage(batch, adv_estimator=name, num_repeat=args.n, config=cfg), args.repeats)
    done = compute_advantage(batch, adv_estimator="asym_grpo", num_repeat=args.n, config=cfg)
    cases["asym batch_diagnostics"] = median_time(lambda: batch_diagnostics(done), args.repeats)
    base = cases["verl compute_advantage(grpo)"]
    print(f"batch: {args.prompts} prompts x {args.n} rollouts x {args.tokens} tokens (+2% pad rows), "
          f"torch threads {torch.get_num_threads()}")
    print(f"{'what':<42} {'median s':>10} {'x verl grpo':>12}")
    for what, sec in cases.items():
        print(f"{what:<42} {sec:>10.4f} {sec / base:>12.2f}")


if __name__ == "__main__":
    main()
