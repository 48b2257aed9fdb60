"""analysis.comparison on a small hand-built sweep: per-run reductions, the side-by-side table, and
the Proposition 1 sign check (both claims, n/a where no first-order prediction exists)."""

from __future__ import annotations

import pandas as pd
import pytest

from analysis import comparison
from analysis.load import METRIC_COLUMNS, SweepData
from common import metric_names as mn

RUNS = [  # run_id, label, estimator, alpha_pos, alpha_neg, seed, policy_loss
    ("r0", "REINFORCE", "reinforce", 0.0, 0.0, 0, "vanilla"),
    ("a0", "AsymGRPO (0.9, 0.4)", "asym", 0.9, 0.4, 0, "vanilla"),
    ("g0", "GRPO", "grpo", 0.5, 0.5, 0, "vanilla"),
    ("c0", "Clip-Cov", "grpo", 0.5, 0.5, 0, "clip_cov"),
]
HISTORY = {  # run -> metric -> values at steps 1, 2
    "r0": {mn.COV_LOGP_ADV: [0.2, 0.1], mn.ENTROPY_CHANGE: [-0.03, -0.01], mn.KAPPA: [0.5, 0.3], mn.ENTROPY: [1.0, 0.9]},
    "a0": {mn.COV_LOGP_ADV: [0.1, -0.05], mn.ENTROPY_CHANGE: [-0.01, -0.02], mn.KAPPA: [0.5, 0.3], mn.ENTROPY: [1.0, 1.1]},
    "g0": {mn.COV_LOGP_ADV: [0.1, 0.1], mn.ENTROPY_CHANGE: [-0.02, -0.02], mn.KAPPA: [0.5, 0.3], mn.ENTROPY: [1.0, 0.8]},
    "c0": {mn.COV_LOGP_ADV: [0.1, 0.1], mn.ENTROPY_CHANGE: [0.01, 0.01], mn.KAPPA: [0.5, 0.3], mn.ENTROPY: [1.0, 1.0]},
}


def sweep() -> SweepData:
    runs = pd.DataFrame([{"run_id": r, "trial": r, "status": "FINISHED", "label": lab, "estimator": est,
                          "alpha_pos": ap, "alpha_neg": an, "seed": s, "model": "m", "policy_loss": pl,
                          "entropy_coeff": 0.0, "clip_low": 0.2, "clip_high": 0.2, "loss_agg": "token-mean"}
                         for r, lab, est, ap, an, s, pl in RUNS])
    rows = []
    for r, lab, est, ap, an, s, _ in RUNS:
        for metric, values in HISTORY[r].items():
            rows += [(r, r, lab, est, ap, an, s, "m", "comparators", metric, step, v) for step, v in enumerate(values, 1)]
    return SweepData("x", "comparators", "p", "sqlite://", runs, pd.DataFrame(rows, columns=list(METRIC_COLUMNS)))


def test_per_run_reductions_and_table():
    per_run = comparison.per_run(sweep()).set_index("run_id")
    assert per_run.loc["a0", "entropy_mean"] == pytest.approx(1.05)  # (1.0 + 1.1) / 2
    assert per_run.loc["a0", "entropy_final"] == pytest.approx(1.1)  # last 10% of 2 steps = the last step
    assert per_run.loc["r0", "kappa_bar"] == pytest.approx(0.4)
    assert per_run.loc["g0", "alpha_family"] and not per_run.loc["c0", "alpha_family"]
    table = comparison.comparison_table(per_run.reset_index())
    assert list(table["label"]) == [r[1] for r in RUNS] and (table["seeds"] == 1).all()


def test_prop1_check_signs():
    data = sweep()
    check = comparison.prop1_check(data, comparison.per_run(data)).set_index(["claim", "label"])
    step = "step: sign dH = -sign Cov(log pi, A)"
    assert tuple(check.loc[(step, "REINFORCE"), ["predicted", "observed", "agree"]]) == ("-", "-", "yes")
    assert tuple(check.loc[(step, "Clip-Cov"), ["predicted", "observed", "agree"]]) == ("-", "+", "no")
    assert "50% of 2 steps" in check.loc[(step, "AsymGRPO (0.9, 0.4)"), "detail"]  # step 2: Cov < 0 but dH < 0
    eq6 = [c for c, _ in check.index if c.startswith("eq 6")][0]
    # (0.9 - 0.4) * kappa 0.4 > 0; step-1 dH: -0.01 - (-0.03) = +0.02
    assert tuple(check.loc[(eq6, "AsymGRPO (0.9, 0.4)"), ["predicted", "observed", "agree"]]) == ("+", "+", "yes")
    assert check.loc[(eq6, "GRPO"), "agree"] == "n/a"  # a+ = a-: no first-order prediction
    assert (eq6, "Clip-Cov") not in check.index  # not plain eq 8: another loss


def test_eq6_uses_the_exact_prediction_where_the_engine_logged_it():
    # the exact within-group prediction can disagree with the linearised one (here GRPO: a+ = a-, so the
    # linearised is 0, but the exact one is -0.07, as on the default base's step-1 batches)
    history = {run: dict(metrics) for run, metrics in HISTORY.items()}
    history["g0"][mn.PROP1_GAP_EXACT] = [-0.07, -0.05]
    history["a0"][mn.PROP1_GAP_EXACT] = [-0.01, 0.02]
    data = sweep()
    extra = [(r, r, lab, est, ap, an, s, "m", "comparators", metric, step, v)
             for r, lab, est, ap, an, s, _ in RUNS for metric, values in history[r].items()
             if metric == mn.PROP1_GAP_EXACT for step, v in enumerate(values, 1)]
    data = SweepData("x", "comparators", "p", "sqlite://", data.runs,
                     pd.concat([data.metrics, pd.DataFrame(extra, columns=list(METRIC_COLUMNS))], ignore_index=True))
    check = comparison.prop1_check(data, comparison.per_run(data)).set_index(["claim", "label"])
    eq6 = [c for c, _ in check.index if c.startswith("eq 6")][0]
    assert "exact within-group" in eq6
    # GRPO: exact -0.07 < 0, observed -0.02 - (-0.03) = +0.01: disagree (the linearised alone said n/a)
    assert tuple(check.loc[(eq6, "GRPO"), ["predicted", "observed", "agree"]]) == ("-", "+", "no")
    # AsymGRPO: exact -0.01 at step 1 while the linearised (0.5 * 0.4) is +: the exact one decides
    assert check.loc[(eq6, "AsymGRPO (0.9, 0.4)"), "predicted"] == "-"
    assert "linearised (a+ - a-) kappa-bar = 0.2" in check.loc[(eq6, "AsymGRPO (0.9, 0.4)"), "detail"]
