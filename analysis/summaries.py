"""From a loaded sweep to the small frames that figures and tables draw (compute, no drawing).

Every function takes ``SweepData`` (or a frame derived from it) and returns a pandas frame of
precomputed numbers: curves with a seed interval per step, the per-run checkpoint scores, the
accuracy table (Tables 2/3), kappa-bar (Table 1), the alpha grid (Fig 4 d), and the closed-form
advantage (Fig 1) and pressure (Prop. 2) curves of the configurations the sweep ran.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis import aggregate as agg
from analysis.load import SweepData
from common import metric_names as mn

# The alpha family of eq 5/8: each of these is exactly asym(alpha_pos, alpha_neg), so they share
# the Fig 4(d) plane and Proposition 2's pressure curves (eqs 9-11).
ALPHA_FAMILY = ("reinforce", "grpo", "asym", "pos-only", "neg-only")
FLIP_ESTIMATORS = ("grpo", "ent-decrease", "ent-increase")  # Sec 3.2 / Fig 3
GROUP_SIZE_PARAMS = ("cfg.group_size", "cfg.rollouts_per_prompt", "cfg.n", "cfg.rollout_n", "cfg.num_generations")
# Params that list a run's benchmarks in order, and how to turn their value into metric names.
BENCHMARK_LIST_PARAMS = {
    "cfg.tiers": lambda tiers: [f"tier{t}" for t in tiers],  # embedded engine: (1, 2) -> tier1, tier2
    "cfg.val_n": lambda pairs: [p[0] if isinstance(p, (list, tuple)) else str(p) for p in pairs],  # verl
    "cfg.benchmarks": lambda names: [str(n) for n in names],
}
DEFAULT_GROUP_SIZE = 8  # G = 8 rollouts per prompt (spec section 6, [v1*])


def eval_benchmarks(data: SweepData, select_on: str | None = None) -> list[str]:
    """Benchmarks with tracked accuracy, the selection benchmark first.

    First: ``select_on`` if given, else MATH-500 when tracked (the paper picks checkpoints by it,
    spec section 6), else the first benchmark the runs declare (``cfg.tiers`` of the embedded
    engine, ``cfg.val_n`` of verl, ``cfg.benchmarks``), else the alphabetically first. The rest
    follow in declared, then alphabetical, order.
    """
    prefix, suffix = "eval/", "/accuracy"
    tracked = sorted(m[len(prefix):-len(suffix)] for m in data.metric_names()
                     if m.startswith(prefix) and m.endswith(suffix) and m != mn.EVAL_MEAN_ACCURACY)
    declared = [b for b in _declared_benchmarks(data.runs) if b in tracked]
    ordered = declared + [b for b in tracked if b not in declared]
    if select_on is None:
        math500 = [b for b in ordered if b.lower().replace("-", "").replace("_", "").endswith("math500")]
        select_on = math500[0] if math500 else None
    elif select_on not in tracked:
        raise ValueError(f"benchmark '{select_on}' is not tracked in this sweep; choose one of: {', '.join(tracked) or 'none'}")
    if select_on is not None:
        ordered = [select_on] + [b for b in ordered if b != select_on]
    return ordered


def _declared_benchmarks(runs: pd.DataFrame) -> list[str]:
    """Benchmark names in the order a run's config lists them (see ``eval_benchmarks``)."""
    import ast

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


def curve(data: SweepData, metric: str, ema_factor: float | None = None, labels: list[str] | None = None,
          model: str | None = None, confidence: float = agg.DEFAULT_CONFIDENCE, seed: int = 0) -> pd.DataFrame:
    """Per (model, label, step): mean over seeds and its bootstrap interval, optionally EMA-smoothed.

    ``labels`` / ``model`` restrict the runs drawn. Smoothing is applied to each seed's history
    before averaging (what a reader of one run sees).
    Columns: model, label, step, mean, low, high, n.
    """
    frames = []
    subset = data.metrics[data.metrics["metric"] == metric]
    if model is not None:
        subset = subset[subset["model"] == model]
    if labels is not None:
        subset = subset[subset["label"].isin(labels)]
    for (model_name, label), rows in subset.groupby(["model", "label"], sort=False):
        wide = rows.pivot(index="run_id", columns="step", values="value")  # (S, T); steps unique per run
        matrix = wide.to_numpy(dtype=np.float64)
        if ema_factor:
            matrix = np.stack([agg.ema(row, ema_factor) for row in matrix])
        interval = agg.bootstrap_mean(matrix, confidence=confidence, seed=seed)
        frames.append(pd.DataFrame({
            "model": model_name, "label": label, "step": wide.columns.to_numpy(dtype=np.int64),
            "mean": interval.point, "low": interval.low, "high": interval.high, "n": interval.n,
        }))
    columns = ["model", "label", "step", "mean", "low", "high", "n"]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)


def checkpoint_scores(data: SweepData, benchmarks: list[str], select: str = "best") -> pd.DataFrame:
    """One row per run: the selected eval step and every benchmark's accuracy there.

    ``select`` "best": the step where ``benchmarks[0]`` peaks; "last": the final evaluation.
    The average is the tracked ``eval/mean_accuracy`` at that step (the benchmarks' mean when the
    run did not track it). Columns: run_id, model, label, seed, step, <benchmark>..., avg.
    """
    if not benchmarks:
        raise ValueError("the sweep tracked no eval/<benchmark>/accuracy metric; nothing to tabulate")
    rows = []
    for run in data.runs.itertuples(index=False):
        first = data.history(run.run_id, mn.eval_accuracy(benchmarks[0]))
        if first.empty:
            continue
        step = agg.select_checkpoint(first.index.to_numpy(), first.to_numpy(), select)
        row = {"run_id": run.run_id, "model": run.model, "label": run.label, "seed": run.seed, "step": step}
        for bench in benchmarks:
            history = data.history(run.run_id, mn.eval_accuracy(bench))
            row[bench] = float(history.get(step, np.nan))
        tracked_avg = data.history(run.run_id, mn.EVAL_MEAN_ACCURACY)
        row["avg"] = float(tracked_avg[step]) if step in tracked_avg.index else float(np.nanmean([row[b] for b in benchmarks]))
        rows.append(row)
    return pd.DataFrame(rows, columns=["run_id", "model", "label", "seed", "step", *benchmarks, "avg"])


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
    return frame.groupby(["model", "seed"], sort=False).mean().reset_index()


def accuracy_table(scores: pd.DataFrame, benchmarks: list[str], base: pd.DataFrame | None = None,
                   confidence: float = agg.DEFAULT_CONFIDENCE, seed: int = 0) -> pd.DataFrame:
    """Tables 2/3: per (model, label) the mean over seeds of each benchmark and the average.

    Columns: model, label, seeds, steps, then <col>, <col>_low, <col>_high for each benchmark and
    ``avg``. A "<model> (base)" row (step 0) leads each model's block when ``base`` has it.
    """
    columns = [*benchmarks, "avg"]
    out = []

    def summarise(model: str, label: str, rows: pd.DataFrame, steps: str) -> dict:
        row = {"model": model, "label": label, "seeds": len(rows), "steps": steps}
        for col in columns:
            interval = agg.bootstrap_mean(rows[col].to_numpy(dtype=np.float64), confidence=confidence, seed=seed)
            row[col], row[f"{col}_low"], row[f"{col}_high"] = interval.point, interval.low, interval.high
        return row

    for model, block in scores.groupby("model", sort=False):
        if base is not None and (base["model"] == model).any():
            out.append(summarise(model, f"{model} (base)", base[base["model"] == model], "0"))
        for label, rows in block.groupby("label", sort=False):
            out.append(summarise(model, label, rows, ",".join(str(s) for s in rows["step"])))
    ordered = ["model", "label", "seeds", "steps"] + [c for col in columns for c in (col, f"{col}_low", f"{col}_high")]
    return pd.DataFrame(out, columns=ordered)


def kappa_table(data: SweepData, n_steps: int = agg.KAPPA_STEPS, confidence: float = agg.DEFAULT_CONFIDENCE,
                seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Table 1: kappa-bar (mean kappa-hat over the first ``n_steps`` steps, App E) per model.

    Returns (per_model, per_run). per_run: run_id, model, label, seed, kappa_bar, steps_used.
    per_model: model, kappa, kappa_low, kappa_high, runs, sign; the interval is over runs.
    """
    runs = []
    for run in data.runs.itertuples(index=False):
        history = data.history(run.run_id, mn.KAPPA)
        if history.empty:
            continue
        first = history.sort_index().iloc[:n_steps]
        runs.append({"run_id": run.run_id, "model": run.model, "label": run.label, "seed": run.seed,
                     "kappa_bar": agg.first_steps_mean(history.index.to_numpy(), history.to_numpy(), n_steps),
                     "steps_used": int(first.notna().sum())})
    per_run = pd.DataFrame(runs, columns=["run_id", "model", "label", "seed", "kappa_bar", "steps_used"])
    models = []
    for model, rows in per_run.groupby("model", sort=False):
        interval = agg.bootstrap_mean(rows["kappa_bar"].to_numpy(dtype=np.float64), confidence=confidence, seed=seed)
        point = interval.point
        sign = "undefined" if np.isnan(point) else "positive" if point > 0 else "negative" if point < 0 else "zero"
        models.append({"model": model, "kappa": interval.point, "kappa_low": interval.low,
                       "kappa_high": interval.high, "runs": int(interval.n), "sign": sign})
    return pd.DataFrame(models, columns=["model", "kappa", "kappa_low", "kappa_high", "runs", "sign"]), per_run


def _plain_alpha_runs(runs: pd.DataFrame) -> pd.Series:
    """Runs whose update is exactly eq 8 with token-mean PPO-clip: no bonus, symmetric clip."""
    mask = runs["estimator"].isin(ALPHA_FAMILY)
    if "entropy_coeff" in runs:
        mask &= runs["entropy_coeff"].fillna(0.0) == 0.0
    if "clip_high" in runs and "clip_low" in runs:
        mask &= runs["clip_high"] == runs["clip_low"]
    if "loss_agg" in runs:
        mask &= runs["loss_agg"] == "token-mean"
    return mask


def alpha_grid(data: SweepData, scores: pd.DataFrame, column: str = "avg") -> dict[str, pd.DataFrame]:
    """Fig 4(d): per model, mean over seeds of ``column`` on the alpha_pos x alpha_neg plane.

    Rows alpha_pos, columns alpha_neg (NaN where no run). Cells come from plain AsymGRPO runs
    (estimator ``asym``); only models whose cells span at least two values on each axis and fill
    at least half the grid (a real grid, not the two AsymGRPO rows of the main table).
    """
    plain = data.runs.loc[_plain_alpha_runs(data.runs) & (data.runs["estimator"] == "asym"), "run_id"]
    grids = {}
    selected = scores[scores["run_id"].isin(plain)].merge(data.runs[["run_id", "alpha_pos", "alpha_neg"]], on="run_id")
    for model, rows in selected.groupby("model", sort=False):
        grid = rows.pivot_table(index="alpha_pos", columns="alpha_neg", values=column, aggfunc="mean")
        if grid.shape[0] >= 2 and grid.shape[1] >= 2 and grid.notna().to_numpy().mean() >= 0.5:
            grids[model] = grid.sort_index().sort_index(axis=1)
    return grids


def alpha_grid_spread(data: SweepData, scores: pd.DataFrame, column: str = "avg") -> dict[str, tuple[pd.DataFrame, pd.DataFrame]]:
    """The seed spread of ``alpha_grid``'s cells: per model (standard error, number of seeds), same shape."""
    from analysis.stats import estimate

    plain = data.runs.loc[_plain_alpha_runs(data.runs) & (data.runs["estimator"] == "asym"), "run_id"]
    selected = scores[scores["run_id"].isin(plain)].merge(data.runs[["run_id", "alpha_pos", "alpha_neg"]], on="run_id")
    out = {}
    for model, rows in selected.groupby("model", sort=False):
        se = rows.pivot_table(index="alpha_pos", columns="alpha_neg", values=column, aggfunc=lambda v: estimate(list(v)).se)
        n = rows.pivot_table(index="alpha_pos", columns="alpha_neg", values=column, aggfunc=lambda v: estimate(list(v)).n)
        out[model] = (se.sort_index().sort_index(axis=1), n.sort_index().sort_index(axis=1))
    return out


def configurations(data: SweepData) -> pd.DataFrame:
    """Distinct (label, estimator, alpha_pos, alpha_neg) the sweep ran, in label order."""
    return data.runs[["label", "estimator", "alpha_pos", "alpha_neg"]].drop_duplicates("label").reset_index(drop=True)


def group_size(data: SweepData, default: int = DEFAULT_GROUP_SIZE) -> int:
    """G for the advantage curves: the runs' tracked group size when one is tracked, else ``default``."""
    for key in GROUP_SIZE_PARAMS:
        if key in data.runs.columns and data.runs[key].notna().any():
            try:
                return int(float(data.runs[key].dropna().iloc[0]))
            except ValueError:
                continue
    return default


def advantage_curves(configs: pd.DataFrame, group_size: int) -> pd.DataFrame:
    """Fig 1: each configuration's rollout advantage at p = k/G, from ``estimators.curves``.

    The same k-grid the `asym estimators show` table uses (``channel_values``: the registered
    estimator run on G+1 groups). Configurations with the same estimator and alphas (e.g. a method
    and its entropy-bonus variant) share one curve, labelled "A / B".
    Columns: label, estimator, channel ("pos"/"neg"), k, p, advantage.
    """
    from estimators.curves import channel_values, check_group_size
    from estimators.registry import get_estimator

    check_group_size(group_size)
    rows = []
    for (estimator, alpha_pos, alpha_neg), same in configs.groupby(["estimator", "alpha_pos", "alpha_neg"], sort=False):
        label = " / ".join(same["label"])
        pos, neg = channel_values(get_estimator(estimator), group_size, alpha_pos, alpha_neg)
        for k in range(group_size + 1):
            if k >= 1:  # a correct rollout exists
                rows.append((label, estimator, "pos", k, k / group_size, float(pos[k])))
            if k <= group_size - 1:  # a wrong rollout exists
                rows.append((label, estimator, "neg", k, k / group_size, float(neg[k])))
    return pd.DataFrame(rows, columns=["label", "estimator", "channel", "k", "p", "advantage"])


def pressure_curves(configs: pd.DataFrame, points: int = 199) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Prop. 2: W_pos (eq 9) per distinct alpha_pos and W_neg (eq 10) per distinct alpha_neg of the
    sweep's alpha-family configurations, on p in (0, 1), with their interior peaks (eq 11).

    Returns (curves: channel, alpha, labels, p, pressure; peaks: channel, alpha, p_star, pressure).
    ``labels`` names the configurations that share the curve ("REINFORCE / Neg-Only").
    """
    import torch

    from estimators.diagnostics import pressure_neg, pressure_peaks, pressure_pos

    p = torch.linspace(0.0, 1.0, points + 2, dtype=torch.float64)[1:-1]
    family = configs[configs["estimator"].isin(ALPHA_FAMILY)]
    curves, peaks = [], []
    for channel, column, pressure in (("pos", "alpha_pos", pressure_pos), ("neg", "alpha_neg", pressure_neg)):
        for alpha, rows in family.groupby(column, sort=True):
            labels = " / ".join(rows["label"])
            curves.append(pd.DataFrame({"channel": channel, "alpha": alpha, "labels": labels, "p": p.numpy(),
                                        "pressure": pressure(p, alpha).numpy()}))
            p_star = pressure_peaks(alpha, 0.0)[0] if channel == "pos" else pressure_peaks(0.0, alpha)[1]
            if p_star is not None:
                peaks.append((channel, alpha, p_star, float(pressure(p_star, alpha))))
    columns = ["channel", "alpha", "labels", "p", "pressure"]
    curve_frame = pd.concat(curves, ignore_index=True) if curves else pd.DataFrame(columns=columns)
    return curve_frame, pd.DataFrame(peaks, columns=["channel", "alpha", "p_star", "pressure"])


def flip_labels(data: SweepData) -> list[str]:
    """Labels of the flip study's runs (GRPO, EntDecrease, EntIncrease) when the sweep has a flip."""
    runs = data.runs
    if not runs["estimator"].isin(FLIP_ESTIMATORS[1:]).any():
        return []
    mask = runs["estimator"].isin(FLIP_ESTIMATORS)
    if "entropy_coeff" in runs:
        mask &= runs["entropy_coeff"].fillna(0.0) == 0.0
    return list(dict.fromkeys(runs.loc[mask, "label"]))


def channel_sweep_labels(data: SweepData, estimator: str) -> list[str]:
    """Fig 2's one-channel sweeps: REINFORCE (alpha = 0) and every ``estimator`` run ("pos-only" or
    "neg-only"), ordered by that channel's alpha, when the sweep holds at least two of its alphas."""
    runs = data.runs
    mask = runs["estimator"].isin(["reinforce", estimator])
    if "entropy_coeff" in runs:
        mask &= runs["entropy_coeff"].fillna(0.0) == 0.0
    chosen = runs.loc[mask]
    alpha = "alpha_pos" if estimator == "pos-only" else "alpha_neg"
    if chosen.loc[chosen["estimator"] == estimator, alpha].nunique() < 2:
        return []
    ordered = chosen.assign(_a=chosen[alpha].where(chosen["estimator"] == estimator, 0.0)).sort_values("_a", kind="stable")
    return list(dict.fromkeys(ordered["label"]))
