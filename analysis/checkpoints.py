"""Which checkpoint of a trained run the tables report, and what is scored there.

The rule (ours, said in every caption that depends on it): the score is the hard held-out split
on the embedded engine, MATH-500 on verl (the paper's rule, spec section 6), else the mean over
benchmarks; ``best`` takes the step where it peaks, ``last`` the final evaluation; step 0 (the base
model, which has its own row) is never a trained run's checkpoint; ties go to the later step.
Also the base row, the area under the eval curve and pass@k at the selected checkpoint.
"""

from __future__ import annotations

import ast
import re

import numpy as np
import pandas as pd

from analysis import aggregate as agg
from analysis.load import SweepData
from analysis.stats import estimate
from common import metric_names as mn
from estimators.eval_measures import normalized_area

BENCHMARK_LIST_PARAMS = {
    "cfg.tiers": lambda tiers: [f"tier{t}" for t in tiers],  # embedded engine: (1, 2) -> tier1, tier2
    "cfg.val_n": lambda pairs: [p[0] if isinstance(p, (list, tuple)) else str(p) for p in pairs],  # verl
    "cfg.benchmarks": lambda names: [str(n) for n in names],
}

MEAN = "mean"  # --select-on mean: the mean over benchmarks (eval/mean_accuracy)
HARD_SPLIT = "hard"  # the embedded engine's hard held-out split (its "AIME")


def eval_benchmarks(data: SweepData) -> list[str]:
    """Benchmarks with tracked accuracy: in the order the runs declare them (``cfg.tiers`` of the
    embedded engine, ``cfg.val_n`` of verl, ``cfg.benchmarks``), then the rest alphabetically."""
    prefix, suffix = "eval/", "/accuracy"
    tracked = sorted(m[len(prefix):-len(suffix)] for m in data.metric_names()
                     if m.startswith(prefix) and m.endswith(suffix) and m != mn.EVAL_MEAN_ACCURACY)
    declared = [b for b in _declared_benchmarks(data.runs) if b in tracked]
    return declared + [b for b in tracked if b not in declared]


def selection_benchmark(benchmarks: list[str], select_on: str | None = None) -> str:
    """What picks a run's checkpoint: ``select_on`` if given (a tracked benchmark or "mean"), else
    the hard held-out split when tracked (embedded engine), else MATH-500 when tracked (the paper's
    rule, spec section 6), else the mean over benchmarks."""
    if select_on is not None:
        if select_on != MEAN and select_on not in benchmarks:
            raise ValueError(f"benchmark '{select_on}' is not tracked in this sweep; choose one of: "
                             f"{', '.join([*benchmarks, MEAN]) if benchmarks else 'none'}")
        return select_on
    if HARD_SPLIT in benchmarks:
        return HARD_SPLIT
    math500 = [b for b in benchmarks if b.lower().replace("-", "").replace("_", "").endswith("math500")]
    return math500[0] if math500 else MEAN


def selection_history(data: SweepData, run_id: str, benchmarks: list[str], select_on: str) -> pd.Series:
    """A run's selection score per evaluated step (see ``selection_benchmark``)."""
    if select_on != MEAN:
        return data.history(run_id, mn.eval_accuracy(select_on))
    tracked = data.history(run_id, mn.EVAL_MEAN_ACCURACY)
    if not tracked.empty:
        return tracked
    per_bench = [data.history(run_id, mn.eval_accuracy(b)) for b in benchmarks]
    per_bench = [h for h in per_bench if not h.empty]
    return pd.concat(per_bench, axis=1).mean(axis=1) if per_bench else tracked


def _declared_benchmarks(runs: pd.DataFrame) -> list[str]:
    """Benchmark names in the order a run's config lists them (see ``eval_benchmarks``)."""

    for key, to_names in BENCHMARK_LIST_PARAMS.items():
        if key not in runs.columns or not runs[key].notna().any():
            continue
        try:
            value = ast.literal_eval(str(runs[key].dropna().iloc[0]))
        except (ValueError, SyntaxError):
            continue
        if isinstance(value, (list, tuple)):
            return to_names(value)
    return []


def checkpoint_scores(data: SweepData, benchmarks: list[str], select: str = "best",
                      select_on: str = MEAN) -> pd.DataFrame:
    """One row per trained run: the selected eval step and every benchmark's accuracy there.

    ``select`` "best": the step where the ``select_on`` score peaks; "last": the final evaluation;
    step 0 is never selected (``aggregate.select_checkpoint``); a run with no evaluation after step 0
    is left out. ``avg`` is the tracked ``eval/mean_accuracy`` at that step (the benchmarks' mean when
    the run did not track it); ``auc`` the normalised area under the ``select_on`` eval curve
    (``estimators.eval_measures.normalized_area``, the engine's own ``eval/<b>/auc`` definition).
    Columns: run_id, model, label, seed, step, <benchmark>..., avg, auc.
    """
    if not benchmarks:
        raise ValueError("the sweep tracked no eval/<benchmark>/accuracy metric; nothing to tabulate")
    rows = []
    for run in data.runs.itertuples(index=False):
        score = selection_history(data, run.run_id, benchmarks, select_on).dropna()
        if not (score.index > 0).any():
            continue
        step = agg.select_checkpoint(score.index.to_numpy(), score.to_numpy(), select)
        row = {"run_id": run.run_id, "model": run.model, "label": run.label, "seed": run.seed, "step": step}
        for bench in benchmarks:
            history = data.history(run.run_id, mn.eval_accuracy(bench))
            row[bench] = float(history.get(step, np.nan))
        tracked_avg = data.history(run.run_id, mn.EVAL_MEAN_ACCURACY)
        row["avg"] = float(tracked_avg[step]) if step in tracked_avg.index else float(np.nanmean([row[b] for b in benchmarks]))
        curve = score.sort_index()
        row["auc"] = normalized_area(curve.index.tolist(), curve.tolist())
        rows.append(row)
    return pd.DataFrame(rows, columns=["run_id", "model", "label", "seed", "step", *benchmarks, "avg", "auc"])


def base_scores(data: SweepData, benchmarks: list[str]) -> pd.DataFrame:
    """The starting model's scores (step 0), one row per (model, seed); runs of a seed are averaged."""
    rows = []
    for run in data.runs.itertuples(index=False):
        row = {"model": run.model, "seed": run.seed}
        for bench, metric in [(b, mn.eval_accuracy(b)) for b in benchmarks] + [("avg", mn.EVAL_MEAN_ACCURACY)]:
            row[bench] = float(data.history(run.run_id, metric).get(0, np.nan))
        if not np.isnan([row[b] for b in benchmarks]).all():
            rows.append(row)
    frame = pd.DataFrame(rows, columns=["model", "seed", *benchmarks, "avg"])
    frame = frame.groupby(["model", "seed"], sort=False).mean().reset_index()
    return frame.assign(auc=np.nan)  # one evaluation: no curve

PASS_AT_K = re.compile(r"^eval/(?P<bench>[^/]+)/pass_at_(?P<k>\d+)$")  # common.metric_names.eval_pass_at_k


def pass_at_k(data: SweepData, scores: pd.DataFrame, confidence: float = agg.DEFAULT_CONFIDENCE) -> pd.DataFrame:
    """pass@k per (model, label, benchmark, k) at each run's selected checkpoint, and the base model
    (step 0) as "<model> (base)"; mean over seeds with a t interval (``analysis.stats``).

    Columns: model, label, benchmark, k, mean, low, high, n. Empty when no pass@k is tracked.
    """

    tracked = [(m, PASS_AT_K.match(m)) for m in data.metric_names()]
    tracked = [(m, match["bench"], int(match["k"])) for m, match in tracked if match]
    columns = ["model", "label", "benchmark", "k", "mean", "low", "high", "n"]
    if not tracked or scores.empty:
        return pd.DataFrame(columns=columns)
    selected = dict(zip(scores["run_id"], scores["step"]))
    values: dict[tuple, dict] = {}  # (model, label, bench, k) -> {seed or run: value}
    for run in data.runs.itertuples(index=False):
        if run.run_id not in selected:
            continue
        for metric, bench, k in tracked:
            history = data.history(run.run_id, metric)
            # the base row: one value per seed (a seed's runs evaluate the same base with the same draws)
            for label, step, unit in ((f"{run.model} (base)", 0, run.seed), (run.label, selected[run.run_id], run.run_id)):
                if step in history.index and not np.isnan(history[step]):
                    values.setdefault((run.model, label, bench, k), {}).setdefault(unit, float(history[step]))
    rows = []
    for (model, label, bench, k), per_unit in values.items():
        est = estimate(list(per_unit.values()))
        half = est.half_width if est.n > 1 else 0.0
        rows.append((model, label, bench, k, est.mean, est.mean - half, est.mean + half, est.n))
    frame = pd.DataFrame(rows, columns=columns)
    return frame.sort_values(["model", "benchmark", "label", "k"], kind="stable").reset_index(drop=True)
