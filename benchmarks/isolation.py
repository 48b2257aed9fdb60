"""The paper's channel-isolation study on the embedded engine, through its Python API.

REINFORCE, Pos-Only (alpha+ = 0.5), Neg-Only (alpha- = 0.5) and REINFORCE with an entropy bonus,
each over the same seeds (common random numbers: a seed gives every configuration the same prompt
stream and the same base model). Prints per configuration the mean policy entropy over a late window
of steps, kappa averaged over the first 20 steps (App E's kappa-bar), the training reward, and the
final held-out accuracy; then whether Proposition 1's ordering holds:
entropy(Pos-Only) > entropy(REINFORCE) > entropy(Neg-Only), with kappa > 0 early.

    .venv/bin/python benchmarks/isolation.py [--steps 200] [--seeds 0 1 2] [--workers 1] [--threads 1]
        [--device cpu] [--smoke] [--out runs.json]

Runs go to worker processes (``--workers``), each with ``--threads`` torch threads; on a machine
with 2 cores use --workers 2 --threads 1.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import metric_names as M  # noqa: E402
from tinyrlvr.config import SMOKE_OVERRIDES, EngineConfig  # noqa: E402

CONFIGS = {  # label -> engine settings; the entropy coefficient is ours (the paper's is not public)
    "REINFORCE": {"estimator": "reinforce"},
    "Pos-Only": {"estimator": "pos-only", "alpha_pos": 0.5},
    "Neg-Only": {"estimator": "neg-only", "alpha_neg": 0.5},
    "REINFORCE+Ent": {"estimator": "reinforce", "entropy_coeff": None},  # filled from --entropy-coeff
}


def run_one(settings: dict) -> dict[int, dict[str, float]]:
    from tinyrlvr.trainer import train

    cfg = EngineConfig.create(**settings)
    history: dict[int, dict[str, float]] = {}
    train(cfg, lambda step, metrics: history.setdefault(step, dict(metrics)))
    return history


def late_window(steps: int) -> range:
    """Steps averaged for the entropy comparison: from 20% of the run to its end (probe: 20..99 of 100)."""
    return range(max(1, steps // 5), steps + 1)


def summarize(runs: dict[tuple[str, int], dict[int, dict[str, float]]], steps: int) -> dict[str, dict[str, float]]:
    def mean(xs):
        xs = [x for x in xs if not math.isnan(x)]
        return statistics.fmean(xs) if xs else float("nan")

    table = {}
    for (label, seed), hist in runs.items():
        row = table.setdefault(label, {"entropy": [], "kappa20": [], "reward": [], "final_acc": [], "base_acc": []})
        row["entropy"].append(mean(hist[s][M.ENTROPY] for s in late_window(steps)))
        row["kappa20"].append(mean(hist[s][M.KAPPA] for s in range(1, min(20, steps) + 1)))
        row["reward"].append(mean(hist[s][M.REWARD_MEAN] for s in late_window(steps)))
        row["final_acc"].append(hist[steps][M.EVAL_MEAN_ACCURACY])
        row["base_acc"].append(hist[0][M.EVAL_MEAN_ACCURACY])
    return table


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--entropy-coeff", type=float, default=0.005)
    ap.add_argument("--eval-every", type=int, default=50)
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--out", type=Path, default=None, help="write every run's per-step metrics as JSON")
    args = ap.parse_args()

    base = {"steps": args.steps, "threads": args.threads, "device": args.device, "eval_every": args.eval_every,
            **(SMOKE_OVERRIDES if args.smoke else {})}
    jobs = {}
    for label, settings in CONFIGS.items():
        settings = {**settings}
        if "entropy_coeff" in settings:
            settings["entropy_coeff"] = args.entropy_coeff
        for seed in args.seeds:
            jobs[(label, seed)] = {**base, **settings, "seed": seed}
    EngineConfig.create(**next(iter(jobs.values())))  # bad flags fail here, before any process starts
    # Make the shared base model once, before the workers start (they would wait on its lock).
    from tinyrlvr.base_model import get_base_model

    get_base_model(EngineConfig.create(**next(iter(jobs.values()))))

    start = time.perf_counter()
    with ProcessPoolExecutor(max_workers=args.workers, mp_context=get_context("spawn")) as pool:
        futures = {key: pool.submit(run_one, settings) for key, settings in jobs.items()}
        runs = {key: f.result() for key, f in futures.items()}
    elapsed = time.perf_counter() - start
    if args.out:
        args.out.write_text(json.dumps({f"{label}/seed{seed}": {str(s): m for s, m in hist.items()}
                                        for (label, seed), hist in runs.items()}))

    table = summarize(runs, args.steps)
    window = late_window(args.steps)
    print(f"channel isolation: {len(CONFIGS)} configs x {len(args.seeds)} seeds x {args.steps} steps in {elapsed:.0f} s "
          f"({args.workers} workers x {args.threads} threads, {args.device}); entropy window steps {window.start}-{window.stop - 1}")
    print(f"{'config':<15}{'entropy':>10}{'per seed':>28}{'kappa(1-20)':>13}{'reward':>9}{'acc base->final':>18}")
    for label, row in table.items():
        seeds = " ".join(f"{e:.4f}" for e in row["entropy"])
        print(f"{label:<15}{statistics.fmean(row['entropy']):>10.4f}{seeds:>28}{statistics.fmean(row['kappa20']):>13.4f}"
              f"{statistics.fmean(row['reward']):>9.3f}{statistics.fmean(row['base_acc']):>9.3f}->"
              f"{statistics.fmean(row['final_acc']):.3f}")
    ent = {label: row["entropy"] for label, row in table.items()}
    pos_gt = sum(p > r for p, r in zip(ent["Pos-Only"], ent["REINFORCE"]))
    neg_lt = sum(n < r for n, r in zip(ent["Neg-Only"], ent["REINFORCE"]))
    mean = {label: statistics.fmean(v) for label, v in ent.items()}
    kappa_pos = all(k > 0 for row in table.values() for k in row["kappa20"])
    holds = mean["Pos-Only"] > mean["REINFORCE"] > mean["Neg-Only"]
    print(f"Proposition 1 ordering Pos-Only > REINFORCE > Neg-Only on the mean: {'HOLDS' if holds else 'DOES NOT HOLD'} "
          f"(Pos-Only/REINFORCE {mean['Pos-Only'] / mean['REINFORCE']:.3f}, Neg-Only/REINFORCE "
          f"{mean['Neg-Only'] / mean['REINFORCE']:.3f}); per seed: Pos>REINF {pos_gt}/{len(args.seeds)}, "
          f"Neg<REINF {neg_lt}/{len(args.seeds)}")
    print(f"kappa > 0 over the first 20 steps in every run: {kappa_pos}")
    print(f"entropy bonus: REINFORCE+Ent / REINFORCE = {mean['REINFORCE+Ent'] / mean['REINFORCE']:.3f}")


if __name__ == "__main__":
    main()
