"""Methods side by side (the comparators study, any sweep with the channel telemetry) and the
Proposition 1 sign check. Compute only; ``tables`` renders, ``report`` places them.

- ``per_run``: one row per run: training reward and entropy (last ``LAST_FRACTION`` of the steps;
  entropy also as the mean over all), accuracy at the selected checkpoint, none-/all-solved fractions (mean over steps),
  kappa-bar (first 20 steps, App E), Cov(log pi, A), entropy change per step, PPO clip fractions.
- ``comparison_table``: their mean over seeds with a bootstrap interval, per (model, method).
- ``prop1_check``: predicted sign, observed sign, agree? Two claims:
  1. "step": each step's entropy change has the sign of -Cov(log pi, A) (the first-order relation
     of Cui et al. 2505.22617 that the paper's Proposition 1 starts from, App B step 1).
     Predicted from the run's mean covariance, observed as its mean measured change; the share of
     single steps where the two signs agree is given too.
  2. "eq 6": ΔH(method) - ΔH(REINFORCE) has the sign of Proposition 1's exact within-group
     prediction -mean_g v_g Delta_g (a_m - 2) (``estimators.prop1``, logged by the embedded engine as
     ``train/prop1_gap_exact``), with eq 6's linearised (alpha+ - alpha-) * kappa beside it (the
     deciding one only where the exact one was not logged, e.g. verl). Observed at step 1, where a
     method and REINFORCE of one seed update the same base model on the same rollouts (common random
     numbers), so the difference of their entropy changes isolates the advantage; averaged over seeds.
     It is still a one-update check through the run's own optimizer (AdamW + clipping on the presets),
     which ``asym probe prop1`` separates from the proposition's plain-SGD premise.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from analysis import aggregate as agg
from analysis.load import SweepData
from analysis.summaries import _plain_alpha_runs
from common import metric_names as mn

LAST_FRACTION = 0.1  # "final entropy" = mean over the last 10% of the steps [ours]
COLUMNS = {  # column -> (metric, how it is reduced over a run's steps)
    "reward_final": (mn.REWARD_MEAN, "last"),  # training reward (rollout temperature), last steps
    "entropy_final": (mn.ENTROPY, "last"),
    "entropy_mean": (mn.ENTROPY, "mean"),
    "none_solved": (mn.NONE_SOLVED, "mean"),
    "all_solved": (mn.ALL_SOLVED, "mean"),
    "kappa_bar": (mn.KAPPA, "first"),
    "cov_logp_adv": (mn.COV_LOGP_ADV, "mean"),
    "entropy_change": (mn.ENTROPY_CHANGE, "mean"),
    "clip_upper": (mn.CLIP_FRAC_UPPER, "mean"),
    "clip_lower": (mn.CLIP_FRAC_LOWER, "mean"),
}


def _reduce(history: pd.Series, how: str) -> float:
    values = history.sort_index().dropna()
    if values.empty:
        return math.nan
    if how == "last":
        return float(values.iloc[-max(1, int(math.ceil(len(values) * LAST_FRACTION))):].mean())
    if how == "first":
        return agg.first_steps_mean(history.index.to_numpy(), history.to_numpy(), agg.KAPPA_STEPS)
    return float(values[values.index > 0].mean()) if (values.index > 0).any() else math.nan


def per_run(data: SweepData, scores: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per run: run_id, model, label, estimator, seed, accuracy, then ``COLUMNS``."""
    accuracy = {} if scores is None or scores.empty else dict(zip(scores["run_id"], scores["avg"]))
    plain = _plain_alpha_runs(data.runs)  # eq 8 with plain PPO-clip: what eq 6 speaks of
    if "policy_loss" in data.runs:
        plain &= data.runs["policy_loss"].fillna("vanilla") == "vanilla"
    rows = []
    for run, is_plain in zip(data.runs.itertuples(index=False), plain):
        row = {"run_id": run.run_id, "model": run.model, "label": run.label, "estimator": run.estimator,
               "alpha_pos": run.alpha_pos, "alpha_neg": run.alpha_neg, "seed": run.seed, "alpha_family": bool(is_plain),
               "accuracy": float(accuracy.get(run.run_id, math.nan))}
        for column, (metric, how) in COLUMNS.items():
            row[column] = _reduce(data.history(run.run_id, metric), how)
        rows.append(row)
    return pd.DataFrame(rows, columns=["run_id", "model", "label", "estimator", "alpha_pos", "alpha_neg", "seed",
                                       "alpha_family", "accuracy", *COLUMNS])


def comparison_table(runs: pd.DataFrame, confidence: float = agg.DEFAULT_CONFIDENCE, seed: int = 0) -> pd.DataFrame:
    """Per (model, label): seeds, then mean / low / high of accuracy and every ``COLUMNS`` entry."""
    columns = ["accuracy", *COLUMNS]
    out = []
    for (model, label), rows in runs.groupby(["model", "label"], sort=False):
        row = {"model": model, "label": label, "seeds": len(rows)}
        for col in columns:
            interval = agg.bootstrap_mean(rows[col].to_numpy(dtype=np.float64), confidence=confidence, seed=seed)
            row[col], row[f"{col}_low"], row[f"{col}_high"] = interval.point, interval.low, interval.high
        out.append(row)
    return pd.DataFrame(out, columns=["model", "label", "seeds"] + [f"{c}{s}" for c in columns for s in ("", "_low", "_high")])


def _sign(value: float) -> str:
    if value is None or not math.isfinite(value):
        return "?"
    return "+" if value > 0 else "-" if value < 0 else "0"


def prop1_check(data: SweepData, runs: pd.DataFrame) -> pd.DataFrame:
    """Columns: model, claim, label, predicted, observed, agree, detail (the numbers behind them)."""
    rows = []
    for model, block in runs.groupby("model", sort=False):
        for label, group in block.groupby("label", sort=False):
            cov, change = group["cov_logp_adv"].mean(), group["entropy_change"].mean()
            pairs = []
            for run_id in group["run_id"]:
                c = data.history(run_id, mn.COV_LOGP_ADV)
                d = data.history(run_id, mn.ENTROPY_CHANGE).reindex(c.index)
                both = (c != 0) & (d != 0) & c.notna() & d.notna()
                pairs += list(np.sign(-c[both]) == np.sign(d[both]))
            if not pairs:
                continue
            predicted, observed = _sign(-cov), _sign(change)
            rows.append({"model": model, "claim": "step: sign dH = -sign Cov(log pi, A)", "label": label,
                         "predicted": predicted, "observed": observed, "agree": _agree(predicted, observed),
                         "detail": f"mean Cov {cov:.4g}, mean dH {change:.4g}; "
                                   f"{np.mean(pairs):.0%} of {len(pairs)} steps agree"})
        rows += _eq6_rows(data, model, block)
    return pd.DataFrame(rows, columns=["model", "claim", "label", "predicted", "observed", "agree", "detail"])


def _agree(predicted: str, observed: str) -> str:
    if "?" in (predicted, observed) or predicted == "0":
        return "n/a"
    return "yes" if predicted == observed else "no"


def _eq6_rows(data: SweepData, model: str, block: pd.DataFrame) -> list[dict]:
    """Step 1 (every run of a seed shares its batch): the sign of dH_m - dH_REINFORCE against Proposition 1's
    exact within-group prediction (``train/prop1_gap_exact``, embedded runs), with eq 6's linearised
    (alpha+ - alpha-) kappa beside it; where the exact one was not logged (verl), the linearised one decides."""
    reference = block[(block["estimator"] == "reinforce") & block["alpha_family"]]
    kappa = block["kappa_bar"].mean()
    if reference.empty:
        return []
    first_change = {r: data.history(r, mn.ENTROPY_CHANGE).get(1, math.nan) for r in block["run_id"]}
    first_exact = {r: data.history(r, mn.PROP1_GAP_EXACT).get(1, math.nan) for r in block["run_id"]}
    ref_by_seed = {s: first_change[r] for r, s in zip(reference["run_id"], reference["seed"])}
    rows = []
    for label, group in block[block["alpha_family"] & (block["estimator"] != "reinforce")].groupby("label", sort=False):
        diffs = [first_change[r] - ref_by_seed[s] for r, s in zip(group["run_id"], group["seed"]) if s in ref_by_seed]
        diffs = [d for d in diffs if math.isfinite(d)]
        exact = [v for v in (first_exact[r] for r in group["run_id"]) if math.isfinite(v)]
        alpha_pos, alpha_neg = float(group["alpha_pos"].iloc[0]), float(group["alpha_neg"].iloc[0])
        linear = (alpha_pos - alpha_neg) * kappa if math.isfinite(kappa) else math.nan
        if not diffs or (not exact and not math.isfinite(linear)):
            continue
        exact_mean = float(np.mean(exact)) if exact else math.nan
        predicted = _sign(exact_mean if exact else linear)
        observed = _sign(float(np.mean(diffs)))
        rows.append({"model": model, "claim": "eq 6 at step 1: sign(dH - dH_REINFORCE) = sign(exact within-group "
                                             "prediction)" if exact else "eq 6: sign(dH - dH_REINFORCE) = sign((a+ - a-) kappa)",
                     "label": label, "predicted": predicted, "observed": observed, "agree": _agree(predicted, observed),
                     "detail": f"exact {exact_mean:.4g} per unit eta (mean over {len(exact)} seed(s)); linearised "
                               f"(a+ - a-) kappa-bar = {linear:.4g}; step-1 dH difference {np.mean(diffs):.4g} over "
                               f"{len(diffs)} seed(s)"})
    return rows