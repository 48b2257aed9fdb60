"""Benchmark: our token-level AsymGRPO advantage against verl's GRPO estimators, side by side.

All four take verl's inputs for one batch of 65,536 rollouts (8,192 prompts x 8) x 1,024 tokens:
token-level rewards (float32, +-1 at the last response token, as math_dapo scores), verl's int64
response mask with random response lengths, and uuid-string uids:

- ours:            ``backends.verl.adapter.compute_asym_grpo_advantage`` (alpha 0.9 / 0.4): the
                   function verl calls; sums scores, maps uids, per-rollout estimator, broadcast;
- verl loop:       ``core_algos.compute_grpo_outcome_advantage`` (verl's ``grpo``);
- verl vectorized: ``core_algos.compute_grpo_vectorized_outcome_advantage`` (``grpo_vectorized``);
- copy:            ``token_level_rewards.clone()``, the memory-bound floor.

Methods run interleaved inside each repeat; ratios use the best time of each (least disturbed by
other processes). Targets: >= 20x faster than verl loop, >= as fast as verl vectorized, <= 3x copy.

    python benchmarks/estimators.py [--quick] [--threads N] [--no-thp]

Settings, the same for every method:
- ``--threads 1`` by default: on a shared CPU, multi-threaded timings of small ops mostly measure
  the scheduler (every parallel op waits for its slowest, descheduled thread). ``--threads 0``
  keeps torch's default.
- torch's ``THP_MEM_ALLOC_ENABLE=1`` by default (2 MiB-aligned allocations advised as transparent
  huge pages): first-touch page faults on the fresh (bs, L) outputs are otherwise a large part of
  all four timings. Set the same variable in verl's TaskRunner environment for the same effect
  there; ``--no-thp`` measures without it.

The last line is ``speedup_vs_verl_loop=X speedup_vs_verl_vectorized=Y ratio_to_copy=Z``.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import sys
import time
import uuid
from pathlib import Path

# This file shares its name with the `estimators` package: keep its own folder off sys.path.
if sys.path and Path(sys.path[0] or ".").resolve() == Path(__file__).resolve().parent:
    sys.path.pop(0)

# torch's CPU allocator reads this once, at its first allocation: set it before importing torch.
if "--no-thp" not in sys.argv:
    os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

NUM_PROMPTS = 8192
GROUP_SIZE = 8
RESPONSE_LENGTH = 1024


def make_batch(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    """(token_level_rewards (bs, L) float32, response_mask (bs, L) int64, uids (bs,) object)."""
    gen = torch.Generator().manual_seed(seed)
    bs = NUM_PROMPTS * GROUP_SIZE
    lengths = torch.randint(1, RESPONSE_LENGTH + 1, (bs,), generator=gen)  # (bs,)
    positions = torch.arange(RESPONSE_LENGTH)
    response_mask = (positions.unsqueeze(0) < lengths.unsqueeze(1)).to(torch.int64)  # (bs, L)
    # per-prompt difficulty so that groups span none-solved .. all-solved
    difficulty = torch.rand(NUM_PROMPTS, generator=gen).repeat_interleave(GROUP_SIZE)
    correct = torch.rand(bs, generator=gen) < difficulty
    scores = torch.where(correct, 1.0, -1.0)  # math_dapo style +-1
    token_level_rewards = torch.zeros(bs, RESPONSE_LENGTH, dtype=torch.float32)
    token_level_rewards[torch.arange(bs), lengths - 1] = scores
    prompt_uids = np.array([str(uuid.UUID(int=int(i) + 1)) for i in range(NUM_PROMPTS)], dtype=object)
    uids = np.repeat(prompt_uids, GROUP_SIZE)
    return token_level_rewards, response_mask, uids


def best_and_median(times: list[float]) -> tuple[float, float]:
    return min(times), statistics.median(times)


def phase_times(rewards: torch.Tensor, mask: torch.Tensor, uids: np.ndarray, repeats: int) -> dict[str, float]:
    """Where our path spends its time: the steps of compute_asym_grpo_advantage, one by one."""
    from estimators.advantages import asym, broadcast_to_tokens
    from backends.verl.adapter import uid_groups

    scores = rewards.sum(-1)
    ids = torch.from_numpy(uid_groups(uids)[0])
    success = (scores > 0).float()
    adv = asym(success, ids, 0.9, 0.4)
    steps = {
        "score sum": lambda: rewards.sum(-1),
        "uid -> group id": lambda: uid_groups(uids),
        "estimator (N,)": lambda: asym(success, ids, 0.9, 0.4),
        "broadcast (N,L)": lambda: broadcast_to_tokens(adv, mask),
    }
    out = {}
    for name, fn in steps.items():
        ts = []
        for _ in range(repeats):
            start = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - start)
        out[name] = min(ts)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats (5, loop 1)")
    parser.add_argument("--no-thp", action="store_true", help="leave THP_MEM_ALLOC_ENABLE unset")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (0: torch's default)")
    args = parser.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    repeats, loop_repeats = (5, 1) if args.quick else (10, 3)

    from omegaconf import OmegaConf
    from verl.trainer.ppo import core_algos

    from backends.verl.adapter import compute_asym_grpo_advantage

    rewards, mask, uids = make_batch()
    asym_cfg = OmegaConf.create({"adv_estimator": "asym_grpo", "asym": {"variant": "asym", "alpha_pos": 0.9, "alpha_neg": 0.4}})
    grpo_cfg = OmegaConf.create({"adv_estimator": "asym_grpo", "asym": {"variant": "grpo"}})

    methods = {
        "ours (asym_grpo 0.9/0.4)": lambda: compute_asym_grpo_advantage(rewards, mask, index=uids, config=asym_cfg)[0],
        "verl grpo (loop)": lambda: core_algos.compute_grpo_outcome_advantage(rewards, mask, index=uids)[0],
        "verl grpo_vectorized": lambda: core_algos.compute_grpo_vectorized_outcome_advantage(rewards, mask, index=uids)[0],
        "copy of token_level_rewards": lambda: rewards.clone(),
    }

    # Sanity, not timed: our grpo variant is verl's grpo times sqrt(G/(G-1)) (population std).
    ours_grpo = compute_asym_grpo_advantage(rewards, mask, index=uids, config=grpo_cfg)[0]
    verl_vec = methods["verl grpo_vectorized"]()
    scale = math.sqrt(GROUP_SIZE / (GROUP_SIZE - 1))
    if not torch.allclose(ours_grpo, verl_vec * scale, rtol=1e-4, atol=1e-4):
        raise SystemExit("sanity check failed: ours(grpo) != verl grpo_vectorized * sqrt(G/(G-1))")
    del ours_grpo, verl_vec

    times: dict[str, list[float]] = {name: [] for name in methods}
    for name, fn in methods.items():  # warm-up (first-touch allocations, lazy imports)
        if "loop" not in name:
            fn()
    for rep in range(repeats):
        for name, fn in methods.items():
            if "loop" in name and rep >= loop_repeats:
                continue
            start = time.perf_counter()
            out = fn()
            times[name].append(time.perf_counter() - start)
            del out

    phases = phase_times(rewards, mask, uids, repeats)

    bs = NUM_PROMPTS * GROUP_SIZE
    print(f"batch: {bs} rollouts ({NUM_PROMPTS} groups of {GROUP_SIZE}) x {RESPONSE_LENGTH} tokens; "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"THP_MEM_ALLOC_ENABLE={os.environ.get('THP_MEM_ALLOC_ENABLE', 'unset')}, {platform.processor() or platform.machine()}")
    print(f"{'method':32s} {'best s':>9s} {'median s':>9s} {'runs':>5s}")
    best = {}
    for name, ts in times.items():
        b, m = best_and_median(ts)
        best[name] = b
        print(f"{name:32s} {b:9.4f} {m:9.4f} {len(ts):5d}")
    print("ours, by phase (best s): " + ", ".join(f"{k} {v:.4f}" for k, v in phases.items()))
    ours = best["ours (asym_grpo 0.9/0.4)"]
    loop_speedup = best["verl grpo (loop)"] / ours
    vec_speedup = best["verl grpo_vectorized"] / ours
    copy_ratio = ours / best["copy of token_level_rewards"]
    # Every method writes a fresh (bs, L) float32 output, as the copy does, and reads more than it:
    # no method can beat the copy, so the loop speed-up of any of them is at most loop / copy.
    print(f"bound: verl loop / copy = {best['verl grpo (loop)'] / best['copy of token_level_rewards']:.2f} "
          f"(the largest speedup_vs_verl_loop any method writing the output can reach here)")
    print(f"targets: loop >= 20x [{'ok' if loop_speedup >= 20 else 'MISS'}], vectorized >= 1x "
          f"[{'ok' if vec_speedup >= 1 else 'MISS'}], copy <= 3x [{'ok' if copy_ratio <= 3 else 'MISS'}]")
    print(f"speedup_vs_verl_loop={loop_speedup:.2f} speedup_vs_verl_vectorized={vec_speedup:.2f} ratio_to_copy={copy_ratio:.2f}")


if __name__ == "__main__":
    main()
