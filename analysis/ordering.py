"""Proposition 1's entropy ordering, read off a sweep with intervals over seeds.

Eq 6: dH(Pos-Only) - dH(REINFORCE) ~ +eta alpha+ kappa and dH(Neg-Only) - dH(REINFORCE) ~ -eta alpha- kappa.
So with kappa-bar > 0 Pos-Only should end above REINFORCE in entropy and Neg-Only below it; with
kappa-bar < 0 the reverse. For every one-channel configuration of the sweep (pos-only, neg-only) this
gives the predicted sign of its gap to REINFORCE, the gap measured per seed (paired: the same seed
gives both runs the same prompts and sampler draws) over a late window of steps, and whether the gap
stands out of the seed noise (beyond the 95% t half-width: t quantile for n - 1 degrees of freedom
times the standard error; 2 standard errors at n = 3 is only an ~82% interval).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from analysis.load import SweepData
from analysis.stats import estimate, exceeds_noise, paired_gap
from common import metric_names as M

REFERENCE = "reinforce"
CHANNEL_SIGN = {"pos-only": +1, "neg-only": -1}  # the sign of eq 6's term per unit of kappa


def late_entropy(data: SweepData, run_ids: list[str], window_start: float = 0.2) -> dict[str, float]:
    """Mean train/entropy per run over its last (1 - window_start) of steps."""
    rows = data.metrics[(data.metrics["metric"] == M.ENTROPY) & data.metrics["run_id"].isin(run_ids)]
    out = {}
    for run_id, run in rows.groupby("run_id"):
        last = int(run["step"].max())
        out[run_id] = float(run.loc[run["step"] >= max(1, int(window_start * last)), "value"].mean())
    return out


def kappa_bar(data: SweepData, run_ids: list[str], steps: int = 20) -> float:
    rows = data.metrics[(data.metrics["metric"] == M.KAPPA) & data.metrics["run_id"].isin(run_ids)
                        & (data.metrics["step"] <= steps)]
    values = rows["value"].to_numpy(dtype=np.float64)
    values = values[np.isfinite(values)]
    return float(values.mean()) if values.size else math.nan


def ordering_table(data: SweepData) -> pd.DataFrame:
    """Per model and one-channel configuration: entropy, gap to REINFORCE (paired), predicted and observed sign."""
    runs = data.runs
    plain = runs["entropy_coeff"].fillna(0.0) == 0.0 if "entropy_coeff" in runs else pd.Series(True, index=runs.index)
    out = []
    for model, block in runs[plain].groupby("model", sort=False):
        reference = block[block["estimator"] == REFERENCE]
        if reference.empty:
            continue
        ref_entropy = late_entropy(data, list(reference["run_id"]))
        ref_by_seed = {int(r.seed): ref_entropy.get(r.run_id, math.nan) for r in reference.itertuples()}
        kappa = kappa_bar(data, list(reference["run_id"]))
        out.append({"model": model, "label": reference["label"].iloc[0], "entropy": estimate(list(ref_by_seed.values())),
                    "gap": None, "predicted": "", "observed": "", "beyond_noise": False, "kappa_bar": kappa})
        for label, rows in block[block["estimator"].isin(list(CHANNEL_SIGN))].groupby("label", sort=False):
            entropy = late_entropy(data, list(rows["run_id"]))
            by_seed = {int(r.seed): entropy.get(r.run_id, math.nan) for r in rows.itertuples()}
            seeds = sorted(set(by_seed) & set(ref_by_seed))
            gap = paired_gap([by_seed[s] for s in seeds], [ref_by_seed[s] for s in seeds])
            predicted = CHANNEL_SIGN[rows["estimator"].iloc[0]] * (1 if kappa > 0 else -1) if math.isfinite(kappa) else 0
            observed = 0 if not math.isfinite(gap.mean) or gap.mean == 0 else (1 if gap.mean > 0 else -1)
            out.append({"model": model, "label": label, "entropy": estimate(list(by_seed.values())), "gap": gap,
                        "predicted": {1: "above", -1: "below", 0: "?"}[predicted],
                        "observed": {1: "above", -1: "below", 0: "equal"}[observed],
                        "beyond_noise": exceeds_noise(gap), "kappa_bar": kappa})
    return pd.DataFrame(out)
