"""The default testbed's properties (issue 24), measured on held-out seeds: what the base offers RL
at step 0, kappa-bar over the first steps of three methods, and what the evaluation protocol costs.

    .venv/bin/python -m benchmarks.testbed base --model embedded-carry --seeds 100,101,102,103,104
    .venv/bin/python -m benchmarks.testbed kappa --model embedded-carry --seeds 100,101,102 --steps 20
    .venv/bin/python -m benchmarks.testbed eval-cost --model embedded-carry

``base``: the histogram of k (correct of 8) over the step-1 and step-2 prompt batches of each seed
(64 groups each), kappa-hat on those rollouts, and the protocol's step-0 evaluation (tiers and hard
split at T = 0.4, pass@k at T = 1). ``kappa``: REINFORCE, GRPO and AsymGRPO (0.9, 0.4) trained
``--steps`` steps per seed; kappa-bar is the mean of ``train/kappa`` over steps 1-20 of a run, then
mean +- standard error over seeds; the hard split's accuracy at the last step is printed too.
``eval-cost``: seconds of each part of one evaluation (1 torch thread).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from analysis.stats import estimate  # noqa: E402

METHODS = {"REINFORCE": {"estimator": "reinforce"}, "GRPO": {"estimator": "grpo"},
           "AsymGRPO (0.9, 0.4)": {"estimator": "asym", "alpha_pos": 0.9, "alpha_neg": 0.4}}


def engine_config(model: str, **changes):
    from experiments.presets import resolve_preset
    from tinyrlvr.config import EngineConfig

    preset = resolve_preset(model)
    return EngineConfig.create(**{"estimator": "grpo", **preset.settings_dict(), "threads": 1, **changes})


def base(model: str, seeds: list[int]) -> dict:
    from tinyrlvr.base_model import get_base_model, load_policy
    from tinyrlvr.base_properties import describe, measure

    cfg = engine_config(model)
    props = measure(load_policy(get_base_model(cfg)), cfg, tuple(seeds), steps_per_seed=2)
    print(f"{model}, seeds {seeds}: {describe(props)}")
    pk = {k.rsplit("_", 1)[1]: round(v, 3) for k, v in props.accuracy.items() if "pass_at" in k}
    print(f"pass@k on the hard split at T = 1 (k: value): {pk}")
    return {"histogram": props.k_histogram, "kappa": props.kappa, "eval": props.accuracy}


def _run(args: tuple[str, str, int, int]) -> dict:
    model, label, seed, steps = args
    from tinyrlvr.trainer import train

    rows = []
    cfg = engine_config(model, **METHODS[label], seed=seed, steps=steps)
    train(cfg, lambda step, metrics: rows.append((step, metrics)))
    kappas = [m["train/kappa"] for s, m in rows if 1 <= s <= 20 and not math.isnan(m["train/kappa"])]
    evals = {s: m for s, m in rows if "eval/mean_accuracy" in m}
    return {"label": label, "seed": seed, "kappa_bar": sum(kappas) / len(kappas),
            "hard": {s: m.get("eval/hard/accuracy") for s, m in evals.items()},
            "mean": {s: m["eval/mean_accuracy"] for s, m in evals.items()}}


def kappa(model: str, seeds: list[int], steps: int, workers: int) -> list[dict]:
    jobs = [(model, label, seed, steps) for label in METHODS for seed in seeds]
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
        results = list(pool.map(_run, jobs))
    for label in METHODS:
        mine = [r for r in results if r["label"] == label]
        kb = estimate([r["kappa_bar"] for r in mine])
        hard = estimate([r["hard"][steps] for r in mine])
        print(f"{label}: kappa-bar (steps 1-20) {kb.mean:+.4f} +- {kb.se:.4f}; hard accuracy at step {steps} "
              f"{hard.mean:.3f} +- {hard.se:.3f} (mean +- standard error over {len(mine)} seeds)")
    return results


def eval_cost(model: str) -> dict:
    import torch

    from tinyrlvr import seeding
    from tinyrlvr.base_model import get_base_model, load_policy
    from tinyrlvr.evaluate import Evaluator, correct_counts
    from tinyrlvr.protocol import PASS_TEMPERATURE

    torch.set_num_threads(1)
    cfg = engine_config(model, steps=100)
    policy = load_policy(get_base_model(cfg))
    ev = Evaluator(cfg)
    p, gen = ev.protocol, seeding.generator(0, 0, "eval")
    parts = {"tiers (Avg@k)": (ev.tier_set, p.samples, p.temperature),
             "hard split (Avg@k)": (ev.hard, p.hard_samples, p.temperature),
             "pass@k samples": (ev.hard, p.pass_samples, PASS_TEMPERATURE)}
    out = {}
    for what, (problems, k, temperature) in parts.items():
        start = time.perf_counter()
        correct_counts(policy, problems, cfg.max_prompt_len, cfg.max_new_tokens, k, temperature, gen)
        out[what] = time.perf_counter() - start
    start = time.perf_counter()
    ev.metrics(policy, 10)
    out["one whole evaluation"] = time.perf_counter() - start
    for what, seconds in out.items():
        print(f"{what}: {seconds:.2f} s")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.testbed", description=__doc__.splitlines()[0])
    ap.add_argument("part", choices=("base", "kappa", "eval-cost"))
    ap.add_argument("--model", default="embedded-carry")
    ap.add_argument("--seeds", default="100,101,102,103,104")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]
    if args.part == "base":
        result = base(args.model, seeds)
    elif args.part == "kappa":
        result = kappa(args.model, seeds, args.steps, args.workers)
    else:
        result = eval_cost(args.model)
    if args.out:
        args.out.write_text(json.dumps(result, indent=1, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
