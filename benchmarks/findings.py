"""The paper's findings on the calibrated testbed, with standard errors over held-out seeds.

Parts (each a set of configurations x the same seeds, common random numbers):
- ``testbed``: the step-0 batch of each embedded preset: share of mixed groups (G = 8) and kappa-hat.
- ``isolation``: REINFORCE, Pos-Only (alpha+ = 0.5), Neg-Only (alpha- = 0.5): Proposition 1 predicts
  entropy Pos-Only > REINFORCE > Neg-Only when kappa > 0.
- ``control``: the same with uniform groups zeroed for every method (``zero_uniform_groups``), which
  Proposition 1 does not cover: how much of each gap comes from mixed groups.
- ``center``: the same with every group's mean advantage subtracted (``center_groups``): the shift
  term Proposition 1's covariance does not contain, removed on mixed and uniform groups alike.
- ``flip``: GRPO, EntDecrease, EntIncrease: the flip should order entropy EntIncrease > GRPO > EntDecrease.
- ``flip-center``: the flip with ``center_groups`` (EntDecrease's +3.56 on all-correct groups and
  EntIncrease's -3.56 on all-wrong ones are pure shift terms).
- ``kappa-neg``: the isolation methods on ``embedded-kappa-neg`` (kappa < 0): the channels should swap.
- ``kappa-neg-control``: the same with uniform groups zeroed (most of that base's groups are none-solved).

Entropy is the mean of ``train/entropy`` over a late window (20% of the run to its end): a trajectory
outcome of separately trained runs, not Proposition 1's one-step change (``asym probe prop1`` measures
that). Gaps are paired per seed (``analysis.stats.paired_gap``), mean ± standard error over seeds, and
called real when larger than t(0.975, n - 1) standard errors (4.30 at n = 3, 2.78 at n = 5: a 95%
interval excludes 0). Every run's per-step metrics are appended to ``--out`` (JSON lines) as it finishes, so
``--summarize`` can print the tables again without training.

    .venv/bin/python -m benchmarks.findings --steps 200 --seeds 10,11,12,13,14 --workers 2 --out findings.jsonl
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from analysis.stats import estimate, exceeds_noise, paired_gap, t95  # noqa: E402
from common import metric_names as M  # noqa: E402

REINFORCE = {"estimator": "reinforce"}
POS_ONLY = {"estimator": "pos-only", "alpha_pos": 0.5}
NEG_ONLY = {"estimator": "neg-only", "alpha_neg": 0.5}
FLIP = {"GRPO": {"estimator": "grpo"}, "EntDecrease": {"estimator": "ent-decrease"}, "EntIncrease": {"estimator": "ent-increase"}}
PARTS = {  # part -> (model preset, extra engine settings, {label: settings}, predicted order high -> low)
    "isolation": ("embedded-tiny", {}, {"REINFORCE": REINFORCE, "Pos-Only": POS_ONLY, "Neg-Only": NEG_ONLY},
                  ("Pos-Only", "REINFORCE", "Neg-Only")),
    "control": ("embedded-tiny", {"zero_uniform_groups": True},
                {"REINFORCE": REINFORCE, "Pos-Only": POS_ONLY, "Neg-Only": NEG_ONLY}, ("Pos-Only", "REINFORCE", "Neg-Only")),
    "center": ("embedded-tiny", {"center_groups": True},
               {"REINFORCE": REINFORCE, "Pos-Only": POS_ONLY, "Neg-Only": NEG_ONLY}, ("Pos-Only", "REINFORCE", "Neg-Only")),
    "flip": ("embedded-tiny", {}, FLIP, ("EntIncrease", "GRPO", "EntDecrease")),
    "flip-center": ("embedded-tiny", {"center_groups": True}, FLIP, ("EntIncrease", "GRPO", "EntDecrease")),
    # Proposition 1 with kappa < 0: the positive channel lowers entropy, the negative one raises it.
    "kappa-neg": ("embedded-kappa-neg", {}, {"REINFORCE": REINFORCE, "Pos-Only": POS_ONLY, "Neg-Only": NEG_ONLY},
                  ("Neg-Only", "REINFORCE", "Pos-Only")),
    # The same with uniform groups zeroed: there most groups are none-solved, which Proposition 1 does not cover.
    "kappa-neg-control": ("embedded-kappa-neg", {"zero_uniform_groups": True},
                          {"REINFORCE": REINFORCE, "Pos-Only": POS_ONLY, "Neg-Only": NEG_ONLY},
                          ("Neg-Only", "REINFORCE", "Pos-Only")),
}


def preset_settings(model: str) -> dict:
    from experiments.presets import resolve_preset

    return resolve_preset(model).settings_dict()


def run_one(job: dict) -> dict:
    from tinyrlvr.config import EngineConfig
    from tinyrlvr.trainer import train

    cfg = EngineConfig.create(**job["settings"])
    history: dict[int, dict[str, float]] = {}
    start = time.perf_counter()
    train(cfg, lambda step, metrics: history.setdefault(step, dict(metrics)))
    return {**{k: job[k] for k in ("part", "label", "seed", "steps")}, "seconds": time.perf_counter() - start,
            "history": {str(s): m for s, m in history.items()}}


def testbed_table(seeds: list[int]) -> list[str]:
    """Step-0 batches of each embedded preset: mixed-group share and kappa-hat, mean ± SE over seeds."""
    from estimators.diagnostics import kappa, sequence_mean_logprob, solve_fractions
    from experiments.presets import EMBEDDED_MODELS
    from tinyrlvr.base_model import base_model_report, get_base_model, load_policy
    from tinyrlvr.config import EngineConfig
    from tinyrlvr.rollout import collect

    lines = ["| preset | base accuracy per tier (T = 1) | mixed groups at step 0 (G = 8) | none-solved | kappa-hat at step 0 |",
             "|---|---|---|---|---|"]
    for model in EMBEDDED_MODELS:
        cfg = EngineConfig.create(estimator="grpo", **preset_settings(model))
        path = get_base_model(cfg)
        policy = load_policy(path)
        mixed, none, kap = [], [], []
        for seed in seeds:
            batch = collect(policy, cfg.replace(seed=seed), 1)
            n, a = solve_fractions(batch.rewards, batch.group_ids)
            mixed.append(1 - n - a)
            none.append(n)
            kap.append(kappa(batch.rewards, batch.group_ids, sequence_mean_logprob(batch.old_logp, batch.response_mask)))
        acc = base_model_report(path)["accuracy"]
        lines.append(f"| {model} | {' / '.join(f'{float(v):.2f}' for v in acc.values())} | {estimate(mixed).text(2)} | "
                     f"{estimate(none).text(2)} | {estimate(kap).text(3)} |")
    return lines


def late_mean(history: dict, name: str, steps: int) -> float:
    xs = [history[str(s)][name] for s in range(max(1, steps // 5), steps + 1) if str(s) in history]
    xs = [x for x in xs if not math.isnan(x)]
    return statistics.fmean(xs) if xs else math.nan


def part_tables(part: str, runs: list[dict]) -> list[str]:
    _, _, configs, order = PARTS[part]
    by = {(r["label"], r["seed"]): r for r in runs if r["part"] == part}
    seeds = sorted({seed for (_, seed) in by})
    seeds = [s for s in seeds if all((label, s) in by for label in configs)]
    if not seeds:
        return [f"{part}: no complete seed yet"]
    steps = by[(order[0], seeds[0])]["steps"]

    def per_seed(label, name, reducer):
        return [reducer(by[(label, s)]["history"], name, steps) for s in seeds]

    first20 = lambda h, name, _: statistics.fmean([x for x in (h[str(s)][name] for s in range(1, 21) if str(s) in h)  # noqa: E731
                                                   if not math.isnan(x)] or [math.nan])
    final = lambda h, name, steps_: h[str(steps_)].get(name, math.nan)  # noqa: E731
    entropy = {label: per_seed(label, M.ENTROPY, late_mean) for label in configs}
    wall = sum(r["seconds"] for r in runs if r["part"] == part)
    lines = [f"**{part}** ({len(seeds)} seeds: {', '.join(map(str, seeds))}; {steps} steps; entropy = mean of train/entropy "
             f"over steps {max(1, steps // 5)}-{steps}; {wall / 60:.1f} CPU-minutes of runs)", "",
             "entropy: mean ± 95% t half-width over seeds (a trajectory outcome, not Prop. 1's one-step change)", "",
             "| configuration | entropy | kappa-bar (steps 1-20) | none-solved (late) | all-solved (late) | final eval accuracy |",
             "|---|---|---|---|---|---|"]
    for label in configs:
        lines.append(f"| {label} | {estimate(entropy[label]).text(4)} | {estimate(per_seed(label, M.KAPPA, first20)).text(3)} | "
                     f"{estimate(per_seed(label, M.NONE_SOLVED, late_mean)).text(3)} | "
                     f"{estimate(per_seed(label, M.ALL_SOLVED, late_mean)).text(3)} | "
                     f"{estimate(per_seed(label, M.EVAL_MEAN_ACCURACY, final)).text(3)} |")
    k = t95(len(seeds) - 1)
    lines += ["", f"| predicted | gap (paired, mean ± SE) | > t SE (t = {k:.2f}) | seeds in the predicted direction |",
              "|---|---|---|---|"]
    for high, low in zip(order, order[1:]):
        gap = paired_gap(entropy[high], entropy[low])
        agree = sum(h > l for h, l in zip(entropy[high], entropy[low]))
        lines.append(f"| {high} > {low} | {gap.mean:+.4f} ± {gap.se:.4f} | {'yes' if gap.mean > 0 and exceeds_noise(gap, k) else 'no'} | "
                     f"{agree}/{len(seeds)} |")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--seeds", default="10,11,12,13,14", help="held out: not used while building the testbed")
    ap.add_argument("--parts", default="testbed,isolation,control,flip,kappa-neg")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--eval-every", type=int, default=50)
    ap.add_argument("--out", type=Path, default=Path("findings.jsonl"))
    ap.add_argument("--summarize", action="store_true", help="print the tables from --out, train nothing")
    args = ap.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    parts = args.parts.split(",")
    unknown = sorted(set(parts) - set(PARTS) - {"testbed"})
    if unknown:
        sys.exit(f"error: unknown part(s) {', '.join(unknown)}; known: testbed, {', '.join(PARTS)}")

    done = [json.loads(line) for line in args.out.read_text().splitlines()] if args.out.exists() else []
    have = {(r["part"], r["label"], r["seed"], r["steps"]) for r in done}
    jobs = []
    for part in (p for p in parts if p in PARTS):
        model, extra, configs, _ = PARTS[part]
        base = preset_settings(model)
        for seed in seeds:
            for label, settings in configs.items():
                if (part, label, seed, args.steps) not in have:
                    jobs.append({"part": part, "label": label, "seed": seed, "steps": args.steps,
                                 "settings": {**base, **extra, **settings, "seed": seed, "steps": args.steps,
                                              "eval_every": args.eval_every, "threads": 1}})
    if not args.summarize and jobs:
        from tinyrlvr.base_model import get_base_model
        from tinyrlvr.config import EngineConfig

        for model in {PARTS[p][0] for p in parts if p in PARTS}:  # shipped, or made once before the workers start
            get_base_model(EngineConfig.create(estimator="grpo", **preset_settings(model)))
        start = time.perf_counter()
        print(f"{len(jobs)} runs on {args.workers} workers", flush=True)
        with ProcessPoolExecutor(max_workers=args.workers, mp_context=get_context("spawn")) as pool, args.out.open("a") as out:
            for i, future in enumerate(as_completed([pool.submit(run_one, job) for job in jobs]), 1):
                run = future.result()
                out.write(json.dumps(run) + "\n")
                out.flush()
                done.append(run)
                print(f"[{i}/{len(jobs)}] {run['part']} {run['label']} seed {run['seed']}: {run['seconds']:.0f} s "
                      f"({time.perf_counter() - start:.0f} s elapsed)", flush=True)
    if "testbed" in parts:
        print("\n".join(testbed_table(seeds)) + "\n")
    for part in (p for p in parts if p in PARTS):
        print("\n".join(part_tables(part, [r for r in done if r["steps"] == args.steps])) + "\n")


if __name__ == "__main__":
    main()
