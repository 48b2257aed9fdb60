"""From a loaded sweep to the small frames that figures and tables draw (compute, no drawing).

Every function takes ``SweepData`` (or a frame derived from it) and returns a pandas frame of
precomputed numbers: curves with a seed interval per step, the per-run checkpoint scores, the
accuracy table (Tables 2/3), kappa-bar (Table 1), the alpha grid (Fig 4 d), and the closed-form
advantage (Fig 1) and pressure (Prop. 2) curves of the configurations the sweep ran.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from analysis import aggregate as agg
from analysis.load import SweepData
from analysis.stats import estimate
from common import metric_names as mn
from estimators.registry import ESTIMATORS, get_estimator

FLIP_ESTIMATORS = ("grpo", "ent-decrease", "ent-increase")  # Sec 3.2 / Fig 3
GROUP_SIZE_PARAMS = ("cfg.group_size", "cfg.rollouts_per_prompt", "cfg.n", "cfg.rollout_n", "cfg.num_generations")
DEFAULT_GROUP_SIZE = 8  # G = 8 rollouts per prompt (spec section 6, [v1*])


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


def accuracy_table(scores: pd.DataFrame, benchmarks: list[str], base: pd.DataFrame | None = None,
                   confidence: float = agg.DEFAULT_CONFIDENCE, seed: int = 0) -> pd.DataFrame:
    """Tables 2/3: per (model, label) the mean over seeds of each benchmark and the average.

    Columns: model, label, seeds, steps, then <col>, <col>_low, <col>_high for each benchmark,
    ``avg`` and ``auc``. A "<model> (base)" row (step 0) leads each model's block when ``base`` has it.
    """
    columns = [*benchmarks, "avg", "auc"]
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


def alpha_family(runs: pd.DataFrame) -> pd.Series:
    """Per run: is its estimator of eq 8's alpha family? The run's own ``alpha_family`` param (the
    registry's flag, logged by the trial, which had the user's estimator modules imported), else the
    registry's flag for a built-in estimator; False for an estimator this process does not know."""

    def registry_flag(name) -> bool:
        return bool(name in ESTIMATORS and ESTIMATORS[name].alpha_family)

    flags = runs["estimator"].map(registry_flag)
    if "alpha_family" in runs:
        logged = runs["alpha_family"].map(lambda v: None if pd.isna(v) else str(v).strip().lower() == "true")
        flags = logged.where(logged.notna(), flags).astype(bool)
    return flags


def _plain_alpha_runs(runs: pd.DataFrame) -> pd.Series:
    """Runs whose update is exactly eq 8 with token-mean PPO-clip: no bonus, symmetric clip."""
    mask = alpha_family(runs)
    if "entropy_coeff" in runs:
        mask &= runs["entropy_coeff"].fillna(0.0) == 0.0
    if "clip_high" in runs and "clip_low" in runs:
        mask &= runs["clip_high"] == runs["clip_low"]
    if "loss_agg" in runs:
        mask &= runs["loss_agg"] == "token-mean"
    return mask


def _grid_runs(data: SweepData, scores: pd.DataFrame) -> pd.DataFrame:
    """Scores of plain alpha-family runs with their estimator and alphas."""
    plain = data.runs.loc[_plain_alpha_runs(data.runs), "run_id"]
    return scores[scores["run_id"].isin(plain)].merge(
        data.runs[["run_id", "estimator", "alpha_pos", "alpha_neg"]], on="run_id")


def alpha_grid(data: SweepData, scores: pd.DataFrame, column: str = "avg") -> dict[tuple[str, str], "GridCells"]:
    """Fig 4(d): per (model, estimator), ``column`` on the alpha_pos x alpha_neg plane.

    Cells come from plain runs of an alpha-family estimator (the registry's flag: AsymGRPO or a
    user's own); only (model, estimator) pairs whose cells span at least two values on each axis and
    fill at least half the grid (a real grid, not the two AsymGRPO rows of the main table). Each
    frame has rows alpha_pos, columns alpha_neg, NaN where no run.
    """

    grids = {}
    for (model, estimator), rows in _grid_runs(data, scores).groupby(["model", "estimator"], sort=False):
        def pivot(how):
            table = rows.pivot_table(index="alpha_pos", columns="alpha_neg", values=column, aggfunc=how)
            return table.sort_index().sort_index(axis=1)

        mean = pivot("mean")
        if mean.shape[0] >= 2 and mean.shape[1] >= 2 and mean.notna().to_numpy().mean() >= 0.5:
            grids[(model, estimator)] = GridCells(mean, pivot(lambda v: estimate(list(v)).se),
                                                  pivot(lambda v: estimate(list(v)).n))
    return grids


@dataclass(frozen=True)
class GridCells:
    """One alpha grid: mean over seeds, its standard error and the number of seeds, per cell."""

    mean: pd.DataFrame
    se: pd.DataFrame
    n: pd.DataFrame


def configurations(data: SweepData) -> pd.DataFrame:
    """Distinct (label, estimator, alpha_pos, alpha_neg, alpha_family) the sweep ran, in label order."""
    runs = data.runs.assign(alpha_family=alpha_family(data.runs))
    return runs[["label", "estimator", "alpha_pos", "alpha_neg", "alpha_family"]].drop_duplicates("label").reset_index(drop=True)


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
    from estimators.curves import channel_values, check_group_size  # deferred: torch

    check_group_size(group_size)
    rows = []
    known = configs[configs["estimator"].isin(list(ESTIMATORS))]  # a user's module this process lacks: no curve
    for (estimator, alpha_pos, alpha_neg), same in known.groupby(["estimator", "alpha_pos", "alpha_neg"], sort=False):
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
    import torch  # deferred: torch

    from estimators.diagnostics import pressure_neg, pressure_peaks, pressure_pos  # deferred: torch

    p = torch.linspace(0.0, 1.0, points + 2, dtype=torch.float64)[1:-1]
    family = configs[configs["alpha_family"]] if "alpha_family" in configs else configs.iloc[0:0]
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
