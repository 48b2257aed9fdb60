"""Alpha schedules in the report: the alpha trajectories beside entropy and accuracy, and a table
of the configurations labelled by their schedule (issue 28).

Hooked into the report by one entry in ``analysis.report_figures.FIGURES`` and one in
``analysis.report_tables.TABLES``::

    from analysis import schedules
    FigureEntry(schedules.STEM, schedules.TITLE, schedules.caption, schedules.draw,
                applies=schedules.applies, per_model=True),
    TableEntry("Alpha schedules", (schedules.TABLE_STEM,), schedules.table_applies, schedules.table_section),

``draw`` / ``applies`` / ``caption`` / ``table_section`` read the report ``Context`` fields ``data``,
``colours``, ``settings``, ``tracked``, ``out``, ``accuracy_metric``, ``accuracy_ema`` and ``ema_note``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from analysis import stats
from common import metric_names as M
from estimators.schedules import CHANNELS, parse

STEM = "schedules_alpha"
TABLE_STEM = "schedules"
TITLE = "Alpha schedules: alpha trajectories, entropy and accuracy ({model})"
SCHEDULE_PARAM_PREFIXES = tuple(f"{c}." for c in CHANNELS)


def schedule_settings(run: pd.Series) -> dict[str, Any]:
    """A run's schedule settings from its MLflow params ("alpha_pos.schedule" -> "linear", ...)."""
    out = {}
    for key, value in run.items():
        if isinstance(key, str) and key.startswith(SCHEDULE_PARAM_PREFIXES) and isinstance(value, str) and value:
            out[key] = _number(value)
    return out


def _number(text: str) -> Any:
    try:
        number = float(text)
    except ValueError:
        return text
    return int(number) if number.is_integer() and "." not in text and "e" not in text.lower() else number


def schedule_label(run: pd.Series) -> str:
    """"a+ linear 0.9->0.5, a- fixed 0.4": what each channel's alpha does in this run."""
    plan = parse(schedule_settings(run), estimator=str(run["estimator"]), alpha_pos=float(run["alpha_pos"]),
                 alpha_neg=float(run["alpha_neg"]), steps=int(run["steps"]))
    return f"a+ {plan.alpha_pos.label()}, a- {plan.alpha_neg.label()}"


def has_schedules(data) -> bool:
    """True when some run's alphas were scheduled (a ``alpha_pos.*`` / ``alpha_neg.*`` param)."""
    return any(str(c).startswith(SCHEDULE_PARAM_PREFIXES) and data.runs[c].notna().any() for c in data.runs.columns)


def applies(ctx, model: str | None) -> bool:
    return has_schedules(ctx.data) and M.ALPHA_POS in ctx.tracked


def caption(ctx) -> str:
    return ("train/alpha_pos and train/alpha_neg: the alphas each step's advantages used (estimators.schedules; "
            "flat for a fixed schedule and for estimators whose alphas are fixed), beside the policy entropy and "
            f"the test accuracy ({ctx.ema_note}). Mean over seeds; the band is the {ctx.settings.confidence:.0%} "
            "bootstrap interval over seeds.")


def draw(ctx, model: str | None):
    return figure(ctx.data, model, ctx.colours, ctx.accuracy_metric, ctx.accuracy_ema, ctx.ema_note,
                  ctx.settings.confidence, ctx.settings.seed)


def figure(data, model: str | None, colours: dict[str, str], accuracy_metric: str = M.EVAL_MEAN_ACCURACY,
           ema: float | None = None, ema_note: str = "no smoothing", confidence: float = 0.95, seed: int = 0):
    """Four panels, one line per configuration: alpha+, alpha-, entropy, test accuracy."""
    from analysis import figures, summaries  # deferred: matplotlib

    metrics = [
        (M.ALPHA_POS, "alpha+ (positive channel)", "alpha_pos", None),
        (M.ALPHA_NEG, "alpha- (negative channel)", "alpha_neg", None),
        (M.ENTROPY, "Policy entropy", "token entropy (eq 7)", None),
        (accuracy_metric, f"Test accuracy ({ema_note})", accuracy_metric, ema),
    ]
    panels = []
    for metric, title, ylabel, smoothing in metrics:
        frame = summaries.curve(data, metric, ema_factor=smoothing, model=model, confidence=confidence, seed=seed)
        if not frame.empty:
            panels.append((title, ylabel, frame))
    if not panels:
        return None
    return figures.curves_figure(panels, colours, f"Alpha schedules: {model}" if model else "Alpha schedules")


# --- the table ----------------------------------------------------------------------------------


def window_means(data, metric: str, first: int, last: int | None = None) -> pd.Series:
    """Per run: the mean of ``metric`` over steps first..last (last: the run's end)."""
    rows = data.metrics[(data.metrics["metric"] == metric) & (data.metrics["step"] >= first)]
    if last is not None:
        rows = rows[rows["step"] <= last]
    return rows.groupby("run_id")["value"].mean()


def final_values(data, metric: str) -> pd.Series:
    rows = data.metrics[data.metrics["metric"] == metric]
    return rows.sort_values("step").groupby("run_id")["value"].last()


def schedule_table(data, reference: str | None = None, entropy_from: int | None = None,
                   accuracy_metric: str = M.EVAL_MEAN_ACCURACY) -> pd.DataFrame:
    """One row per configuration: its schedule, the alphas it ended at, the mean entropy from step
    ``entropy_from`` on (default: a fifth into the run, step 20 of 100), the mean training reward
    over the same window and the final test accuracy, each mean ± standard error over seeds; with
    ``reference`` (a label), the paired gap to it per seed (same seeds, common random numbers) for
    entropy, reward and accuracy."""
    runs = data.runs.set_index("run_id")
    if entropy_from is None:
        entropy_from = max(1, round(0.2 * int(runs["steps"].max())))
    columns = {
        "entropy": window_means(data, M.ENTROPY, entropy_from),
        "reward": window_means(data, M.REWARD_MEAN, entropy_from),
        "accuracy": final_values(data, accuracy_metric),
        "final alpha+": final_values(data, M.ALPHA_POS),
        "final alpha-": final_values(data, M.ALPHA_NEG),
    }
    per_run = pd.DataFrame(columns).join(runs[["label", "seed"]])
    ref = per_run[per_run["label"] == reference].set_index("seed") if reference else None
    out = []
    for label in data.labels:
        rows = per_run[per_run["label"] == label]
        first = runs.loc[rows.index[0]]
        row: dict[str, Any] = {"configuration": label, "schedule": schedule_label(first), "seeds": len(rows)}
        for name in columns:
            est = stats.estimate(rows[name].dropna().to_numpy())
            row[name] = _pm(est)
        if ref is not None and label != reference:
            paired = rows.set_index("seed")
            for name in ("entropy", "reward", "accuracy"):
                common = paired.index.intersection(ref.index)
                gap = stats.paired_gap(paired.loc[common, name].to_numpy(), ref.loc[common, name].to_numpy())
                row[f"{name} gap"] = _pm(gap) + (" *" if stats.exceeds_noise(gap) else "")
        out.append(row)
    return pd.DataFrame(out)


def _pm(est) -> str:
    if est.n == 0 or not np.isfinite(est.mean):
        return "n/a"
    return f"{est.mean:.4f} ± {est.se:.4f}" if est.n > 1 else f"{est.mean:.4f}"


def table_applies(ctx) -> bool:
    return has_schedules(ctx.data)


def table_section(ctx):
    """The report's table (CSV and HTML), gaps against the study's fixed cell when it has one."""
    from analysis.report_context import Section  # deferred: torch

    reference = next((label for label in ctx.data.labels if "fixed" in label.lower()), None)
    frame = schedule_table(ctx.data, reference, accuracy_metric=ctx.accuracy_metric)
    frame.to_csv(ctx.out / f"{TABLE_STEM}.csv", index=False)
    caption = ("Configurations by schedule: entropy and training reward are means from a fifth into the run to its "
               f"end, accuracy ({ctx.accuracy_metric}) the last evaluation; mean ± standard error over seeds" + (
                   f"; gaps are paired per seed against '{reference}' (* where its 95% t interval over seeds excludes 0)" if reference else ""))
    return Section("Alpha schedules", caption, table_html=frame.to_html(index=False, border=0),
                   files=(f"{TABLE_STEM}.csv",))
