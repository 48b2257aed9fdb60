"""The report's tables, declared once: ``TABLES`` says for each its file stems, when it applies and how
it is rendered (``analysis.tables`` formats; ``analysis.summaries`` / ``comparison`` compute)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

from analysis import aggregate as agg
from analysis import checkpoints, comparison, schedules, summaries, tables
from analysis.cost import cost_table
from analysis.ordering import ordering_table
from analysis.probe import covariance_loss_note
from analysis.report_context import Context, Section
from analysis.report_figures import telemetry_tracked
from common import metric_names as mn


@dataclass(frozen=True)
class TableEntry:
    """One table: its progress name, the file stems it may write, when it applies, how it renders."""

    name: str
    stems: tuple[str, ...]
    applies: Callable[[Context], bool]
    render: Callable[[Context], Section | None]


def _kappa_table(ctx: Context) -> Section:
    s = ctx.settings
    per_model, per_run = summaries.kappa_table(ctx.data, s.kappa_steps, s.confidence, s.seed)
    caption = f"Table 1: kappa-bar, the mean of the online kappa estimate over the first {s.kappa_steps} steps (App E)"
    view = tables.kappa_view(per_model, s.kappa_steps, caption)
    paths = tables.write(view, per_model, ctx.out, "table1_kappa")
    per_run.to_csv(ctx.out / "table1_kappa_runs.csv", index=False)
    return Section("Table 1: kappa", view.caption, table_html=tables.to_html(view),
                   files=tuple(p.name for p in paths) + ("table1_kappa_runs.csv",))


def _accuracy_table(ctx: Context) -> Section:
    # Table 3 is the paper's backbone table; any other study's accuracy table plays Table 2.
    number = 3 if ctx.data.study == "backbones" else 2
    caption = (f"Table {number}: accuracy per benchmark and average at the {ctx.select_text}; AUC: the area under "
               f"the {ctx.select_name} eval curve over the run divided by its length (time-average accuracy); "
               "Steps: the selected step of each seed")
    frame = summaries.accuracy_table(ctx.scores, ctx.benchmarks, checkpoints.base_scores(ctx.data, ctx.benchmarks),
                                     ctx.settings.confidence, ctx.settings.seed)
    view = tables.accuracy_view(frame, ctx.benchmarks, caption)
    paths = tables.write(view, frame, ctx.out, f"table{number}_accuracy")
    return Section(f"Table {number}: accuracy", view.caption, table_html=tables.to_html(view),
                   files=tuple(p.name for p in paths))


def _ordering_table(ctx: Context) -> Section:
    frame = ordering_table(ctx.data)
    rows = []
    for r in frame.itertuples(index=False):
        gap = "reference" if r.gap is None else f"{r.gap.mean:+.4f} ± {r.gap.se:.4f}"
        verdict = "" if r.gap is None else ("agrees" if r.predicted == r.observed else "disagrees") + \
            ("" if r.beyond_noise else " (within noise)")
        rows.append([r.model, r.label, r.entropy.text(4), f"{r.kappa_bar:+.3f}", gap, r.predicted, r.observed, verdict])
    view = tables.Table("Entropy relative to REINFORCE, a trajectory outcome of separately trained runs (not "
                        "Proposition 1's one-step change: see `asym probe prop1`): late-window mean, ± 95% t interval "
                        "over seeds; gap paired per seed, ± its standard error; within noise = under the 95% t "
                        "half-width (t quantile for the number of seeds)",
                        ["Model", "Method", "Entropy", "kappa-bar (1-20)", "Gap to REINFORCE", "Predicted",
                         "Observed", "Verdict"], rows, set())
    flat = frame.assign(entropy=[e.mean for e in frame["entropy"]],
                        gap=[math.nan if g is None else g.mean for g in frame["gap"]],
                        gap_se=[math.nan if g is None else g.se for g in frame["gap"]])
    paths = tables.write(view, flat, ctx.out, "prop1_ordering")
    return Section("Entropy ordering (a trajectory outcome)", view.caption, table_html=tables.to_html(view),
                   files=tuple(p.name for p in paths))


def _ordering_applies(ctx: Context) -> bool:
    estimators = ctx.data.runs["estimator"]
    return mn.ENTROPY in ctx.tracked and (estimators == "reinforce").any() and estimators.isin(["pos-only", "neg-only"]).any()


def _cost_table(ctx: Context) -> Section:
    frame = cost_table(ctx.data.runs, ctx.data.metrics)
    rows = [[r.label, str(int(r.trials)), f"{r.gpu_hours:.4f}", f"{r.cpu_hours:.4f}",
             f"{r.gpu_hours_per_trial:.4f}", f"{r.cpu_hours_per_trial:.4f}"] for r in frame.itertuples(index=False)]
    view = tables.Table("Cost per configuration (the ledger: GPUs reserved x wall time; CPU time of the trial's "
                        "processes; finished trials)", ["Method", "Trials", "GPU-h", "CPU-h", "GPU-h / trial",
                                                         "CPU-h / trial"], rows, set())
    paths = tables.write(view, frame, ctx.out, "cost")
    return Section("Cost", view.caption, table_html=tables.to_html(view), files=tuple(p.name for p in paths))


def _comparison_table(ctx: Context) -> Section:
    runs = comparison.per_run(ctx.data, ctx.scores)
    frame = comparison.comparison_table(runs, ctx.settings.confidence, ctx.settings.seed)
    caption = ("Table 4: methods side by side: accuracy (average over benchmarks at the "
               + (ctx.select_text if ctx.benchmarks else "- not evaluated")
               + f"), training reward and entropy over the last {comparison.LAST_FRACTION:.0%} of steps, "
               "entropy over all steps, none-/all-solved fractions and Cov(log pi, A) averaged over steps, kappa-bar "
               f"over the first {agg.KAPPA_STEPS} steps, PPO clip fractions per side")
    notes = _covariance_loss_notes(ctx)
    if notes:
        caption += ". " + "; ".join(notes)
    view = tables.comparison_view(frame, caption)
    paths = tables.write(view, frame, ctx.out, "table4_comparison")
    runs.to_csv(ctx.out / "table4_comparison_runs.csv", index=False)
    return Section("Table 4: methods side by side", view.caption, table_html=tables.to_html(view),
                   files=tuple(p.name for p in paths) + ("table4_comparison_runs.csv",))


def _covariance_loss_notes(ctx: Context) -> list[str]:
    """Clip-Cov / KL-Cov rows of the embedded engine: how many tokens they can act on (not ranked)."""

    runs = ctx.data.runs
    if "policy_loss" not in runs or "backend" not in runs:
        return []
    notes = []
    for label, rows in runs[runs["policy_loss"].isin(["clip_cov", "kl_cov"]) & (runs["backend"] == "embedded")].groupby("label"):
        run = rows.iloc[0]
        try:
            rollouts = float(run["cfg.prompts_per_step"]) * float(run["cfg.group_size"]) / float(run["cfg.mini_batches"])
        except (KeyError, TypeError, ValueError):
            continue
        length = ctx.data.history(run["run_id"], mn.RESPONSE_LENGTH).mean()
        note = covariance_loss_note(run["policy_loss"], rollouts * float(length))
        if note:
            notes.append(f"{label}: {note}")
    return notes


def _prop1_check_table(ctx: Context) -> Section | None:
    check = comparison.prop1_check(ctx.data, comparison.per_run(ctx.data, ctx.scores))
    if check.empty:
        return None
    caption = ("Table 5: Proposition 1 sign check. 'step': Cui et al.'s first-order entropy change "
               "dH = -eta Cov(log pi, A), which Prop. 1 builds on, per run mean and per step. 'eq 6 at step 1': "
               "the sign of the step-1 entropy change minus REINFORCE's (same base model and first batch per seed) "
               "against Proposition 1's exact within-group prediction (embedded runs; the linearised "
               "(a+ - a-) kappa-bar beside it, and deciding where the exact one is not logged, as on verl). A "
               "one-step change of AdamW runs: Adam's first update is about lr * sign(gradient), so only the sign "
               "is compared; `asym probe prop1` measures it like for like. n/a: a sign is undefined.")
    view = tables.prop1_view(check, caption)
    paths = tables.write(view, check, ctx.out, "table5_prop1")
    return Section("Table 5: Proposition 1 sign check", view.caption, table_html=tables.to_html(view),
                   files=tuple(p.name for p in paths))


def _comparison_applies(ctx: Context) -> bool:
    return telemetry_tracked(ctx) and len(ctx.data.labels) > 1


TABLES: tuple[TableEntry, ...] = (
    TableEntry("Table 1 kappa", ("table1_kappa",), lambda ctx: mn.KAPPA in ctx.tracked, _kappa_table),
    TableEntry("Table 2/3 accuracy", ("table2_accuracy", "table3_accuracy"),
               lambda ctx: bool(ctx.benchmarks) and ctx.scores is not None and not ctx.scores.empty, _accuracy_table),
    TableEntry("Table 4 comparison", ("table4_comparison",), _comparison_applies, _comparison_table),
    TableEntry("Table 5 Prop. 1", ("table5_prop1",), _comparison_applies, _prop1_check_table),
    TableEntry("Prop. 1 ordering", ("prop1_ordering",), _ordering_applies, _ordering_table),
    TableEntry("Cost table", ("cost",), lambda ctx: mn.COST_CPU_SECONDS in ctx.tracked, _cost_table),
    TableEntry("Alpha schedules", (schedules.TABLE_STEM,), schedules.table_applies, schedules.table_section),
)
