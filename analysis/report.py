"""`asym report`: a sweep's figures and tables, one self-contained report.html, attached to MLflow.

``build_report`` loads the sweep once (``analysis.load``), computes every summary
(``analysis.summaries``), then renders whatever the sweep contains: Fig 1 always, Fig 2 style
curves per model, Fig 3 when the flip estimators ran, Fig 4(d) when the runs form an alpha grid,
Prop. 2 pressure for alpha-family configurations, Table 1 when kappa is tracked and Table 2 (one
model) or Table 3 (several) when evaluations are. Files are rendered into a scratch folder next to
``out_dir`` and moved in at the end, so a failure leaves nothing half-written; then they are logged
as artifacts of the sweep's parent run under ``report/``.
"""

from __future__ import annotations

import base64
import html
import math
import os
import re
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

from analysis import aggregate as agg

ARTIFACT_DIR = "report"


@dataclass(frozen=True)
class ReportSettings:
    """What the paper leaves open ([NF]) or a reader may want to change; defaults are ours."""

    ema: float = agg.DEFAULT_EMA  # EMA factor on test-accuracy curves
    select: str = "best"  # checkpoint for Tables 2/3: "best" (by the first benchmark) or "last"
    select_on: str | None = None  # the benchmark "best" is judged on (default: the sweep's first)
    kappa_steps: int = agg.KAPPA_STEPS  # Table 1 averages kappa-hat over this many first steps
    group_size: int | None = None  # G of Fig 1 (default: the runs' tracked group size, else 8)
    confidence: float = agg.DEFAULT_CONFIDENCE
    seed: int = 0  # bootstrap RNG seed
    log_artifacts: bool = True  # attach the files to the sweep's MLflow parent run

    def validate(self) -> "ReportSettings":
        if not 0.0 <= self.ema < 1.0:
            raise ValueError(f"--ema must be in [0, 1) (0 = no smoothing), got {self.ema}")
        if self.select not in agg.SELECT_MODES:
            raise ValueError(f"--select must be one of {', '.join(agg.SELECT_MODES)}, got '{self.select}'")
        if self.kappa_steps < 1:
            raise ValueError(f"kappa steps must be >= 1, got {self.kappa_steps}")
        if self.group_size is not None and self.group_size < 2:
            raise ValueError(f"group size must be >= 2, got {self.group_size}")
        if not 0.0 < self.confidence < 1.0:
            raise ValueError(f"confidence must be in (0, 1), got {self.confidence}")
        return self


@dataclass
class Section:
    """One block of the HTML report: a figure (its PNG) or a table (its HTML), with a caption."""

    title: str
    caption: str
    png: Path | None = None
    table_html: str | None = None
    files: tuple[str, ...] = ()


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.-]+", "-", text).strip("-") or "model"


@dataclass
class Context:
    """What every figure and table of one report reads, computed once from the sweep."""

    data: object
    settings: ReportSettings
    out: Path
    colours: dict
    configs: object
    group_size: int
    tracked: set
    benchmarks: list
    accuracy_metric: str
    ema_note: str
    flip: list
    scores: object = None  # per-checkpoint scores when evaluations are tracked
    select_text: str = ""

    def suffix(self, model: str | None) -> str:
        return "" if model is None or len(self.data.models) == 1 else f"_{_slug(model)}"

    def panels(self, model: str, metrics, labels=None) -> list:
        """(title, y label, curve frame) per tracked metric of ``metrics``, for one model."""
        from analysis import summaries

        out = []
        for metric, title, ylabel, ema in metrics:
            frame = summaries.curve(self.data, metric, ema_factor=ema, labels=labels, model=model,
                                    confidence=self.settings.confidence, seed=self.settings.seed)
            if not frame.empty:
                out.append((title, ylabel, frame))
        return out

    def curve_metrics(self) -> list[tuple]:
        from common import metric_names as mn

        return [
            (mn.ENTROPY, "Policy entropy", "token entropy (eq 7)", None),
            (self.accuracy_metric, f"Test accuracy ({self.ema_note})", self.accuracy_metric, self.settings.ema),
            (mn.NONE_SOLVED, "None-solved groups", "fraction of groups with p = 0", None),
            (mn.ALL_SOLVED, "All-solved groups", "fraction of groups with p = 1", None),
            (mn.LOGP_GAIN_CORRECT, "Log-prob gain on correct rollouts", "mean log-prob gain", None),
            # Fig 4(a-c)'s reward dynamics ("stronger reward and test-accuracy dynamics", Sec 4)
            (mn.REWARD_MEAN, "Training reward", "mean reward of the rollouts", None),
        ]

    def sweep_metrics(self) -> list[tuple]:
        """Fig 2(a-d)/(e-h)'s panels: entropy, none-solved, accuracy, log-prob gain."""
        metrics = self.curve_metrics()
        return [metrics[i] for i in (0, 2, 1, 4)]


def _context(data, settings: ReportSettings, out: Path) -> Context:
    from analysis import figures, summaries
    from common import metric_names as mn

    benchmarks = summaries.eval_benchmarks(data, settings.select_on)
    accuracy_metric = mn.EVAL_MEAN_ACCURACY
    if accuracy_metric not in data.metric_names() and benchmarks:
        accuracy_metric = mn.eval_accuracy(benchmarks[0])
    ctx = Context(data=data, settings=settings, out=out, colours=figures.palette(data.labels),
                  configs=summaries.configurations(data), group_size=settings.group_size or summaries.group_size(data),
                  tracked=set(data.metric_names()), benchmarks=benchmarks, accuracy_metric=accuracy_metric,
                  ema_note=f"EMA {settings.ema:g}" if settings.ema else "no smoothing", flip=summaries.flip_labels(data))
    if benchmarks:
        ctx.scores = summaries.checkpoint_scores(data, benchmarks, settings.select)
        ctx.select_text = f"best checkpoint by {benchmarks[0]}" if settings.select == "best" else "last checkpoint"
    return ctx


# --- the figures: (when it applies, what it draws), one entry each --------------------------------


def _fig1(ctx: Context, model: str | None):
    from analysis import figures, summaries

    return figures.advantage_figure(summaries.advantage_curves(ctx.configs, ctx.group_size), ctx.colours, ctx.group_size)


def _fig2(ctx: Context, model: str):
    from analysis import figures

    panels = ctx.panels(model, ctx.curve_metrics())
    return figures.curves_figure(panels, ctx.colours, f"Training dynamics per configuration: {model}") if panels else None


def _channel_sweep(estimator: str, channel: str):
    """Fig 2(a-d): the alpha+ sweep (alpha- = 0, ``pos-only``); Fig 2(e-h): the alpha- sweep (``neg-only``)."""
    def draw(ctx: Context, model: str):
        from analysis import figures, summaries

        panels = ctx.panels(model, ctx.sweep_metrics(), summaries.channel_sweep_labels(ctx.data, estimator))
        return figures.curves_figure(panels, ctx.colours, f"{channel} sweep, one channel at a time: {model}") if panels else None

    def applies(ctx: Context, model: str) -> bool:
        from analysis import summaries

        return bool(summaries.channel_sweep_labels(ctx.data, estimator)) and any(m[0] in ctx.tracked for m in ctx.sweep_metrics())

    return draw, applies


def _channel_sweep_entry(estimator: str, letters: str, channel: str) -> "FigureEntry":
    draw, applies = _channel_sweep(estimator, channel)
    return FigureEntry(
        f"fig2{letters[0]}_{estimator.replace('-', '_')}_sweep", f"Figure 2({letters}): the {channel} sweep ({{model}})",
        lambda c: f"REINFORCE (alpha = 0) and {estimator} at each {channel} the sweep ran, the other channel at 0: "
                  f"entropy, none-solved groups, test accuracy ({c.ema_note}) and the log-prob gain on correct "
                  f"rollouts. Mean over seeds; band: {c.settings.confidence:.0%} bootstrap interval.",
        draw, applies=applies, per_model=True)


def _fig3(ctx: Context, model: str):
    from analysis import figures

    panels = ctx.panels(model, ctx.curve_metrics()[:4], ctx.flip)
    return figures.curves_figure(panels, ctx.colours, f"Advantage-flip test: {model}") if panels else None


def _alpha_grids(ctx: Context) -> dict:
    from analysis import summaries

    return summaries.alpha_grid(ctx.data, ctx.scores) if ctx.benchmarks else {}


def _fig4d(ctx: Context, model: str):
    from analysis import figures

    from analysis import summaries

    grid = _alpha_grids(ctx)[model]
    se, n = summaries.alpha_grid_spread(ctx.data, ctx.scores)[model]
    grid.to_csv(ctx.out / f"fig4d_alpha_grid{ctx.suffix(model)}.csv")  # the heatmap's numbers, beside it
    return figures.heatmap_figure(grid, f"Final accuracy over the alpha grid: {model}",
                                  f"average accuracy ({ctx.select_text})", se=se, n=n)


def _channel_metrics() -> list[tuple]:
    from common import metric_names as mn

    return [
        (mn.ENTROPY_POS, "Entropy, positive-advantage rollouts", "token entropy (eq 7)", None),
        (mn.ENTROPY_NEG, "Entropy, negative-advantage rollouts", "token entropy (eq 7)", None),
        (mn.LOGP_CHANGE_POS, "Log-prob change, positive rollouts", "mean token log-prob change", None),
        (mn.LOGP_CHANGE_NEG, "Log-prob change, negative rollouts", "mean token log-prob change", None),
        (mn.COV_LOGP_ADV, "Cov(log pi, A) per token", "mean of C_t", None),
        (mn.ENTROPY_CHANGE, "Entropy change per update", "dH (same tokens)", None),
        (mn.CLIP_FRAC_UPPER, "PPO clip fraction, upper", "share of tokens", None),
        (mn.CLIP_FRAC_LOWER, "PPO clip fraction, lower", "share of tokens", None),
    ]


def _fig5(ctx: Context, model: str):
    from analysis import figures

    panels = ctx.panels(model, _channel_metrics())
    return figures.curves_figure(panels, ctx.colours, f"Per-channel telemetry: {model}") if panels else None


def _telemetry_tracked(ctx: Context, model: str | None = None) -> bool:
    from common import metric_names as mn

    return mn.COV_LOGP_ADV in ctx.tracked


def _prop2(ctx: Context, model: str | None):
    from analysis import figures, summaries

    pressure, peaks = summaries.pressure_curves(ctx.configs)
    return figures.pressure_figure(pressure, peaks) if not pressure.empty else None


@dataclass(frozen=True)
class FigureEntry:
    """One figure: drawn once (``per_model`` False) or per model for which ``applies`` holds."""

    stem: str
    title: str  # "{model}" is filled in per model
    caption: Callable[[Context], str]
    draw: Callable[[Context, str | None], object]
    applies: Callable[[Context, str | None], bool] = lambda ctx, model: True
    per_model: bool = False
    extra_files: Callable[[Context, str | None], tuple[str, ...]] = lambda ctx, model: ()


FIGURES: tuple[FigureEntry, ...] = (
    FigureEntry("fig1_advantages", "Figure 1: advantage curves",
                lambda c: f"Advantage each estimator gives a correct (left) and a wrong (right) rollout in a group of "
                          f"G = {c.group_size} with k correct, computed by estimators.compute_advantages.", _fig1),
    FigureEntry("fig2_training", "Figure 2 style: training dynamics ({model})",
                lambda c: f"Mean over seeds; the band is the {c.settings.confidence:.0%} bootstrap interval over seeds. "
                          f"Test accuracy is {c.ema_note}-smoothed per seed before averaging; step 0 is the starting model.",
                _fig2, applies=lambda c, m: any(k[0] in c.tracked for k in c.curve_metrics()), per_model=True),
    _channel_sweep_entry("pos-only", "a-d", "alpha+"),
    _channel_sweep_entry("neg-only", "e-h", "alpha-"),
    FigureEntry("fig3_flip", "Figure 3 style: advantage-flip test ({model})",
                lambda c: "GRPO against EntDecrease (positive channel mirrored) and EntIncrease (negative channel "
                          "mirrored), spec section 2.",
                _fig3, applies=lambda c, m: bool(c.flip) and any(k[0] in c.tracked for k in c.curve_metrics()[:2]),
                per_model=True),
    FigureEntry("fig4d_alpha_grid", "Figure 4(d) style: alpha grid ({model})",
                lambda c: f"Average accuracy ({c.select_text}), mean over seeds ± 95% t interval, n = seeds per cell; red "
                          "box: best cell; dashed boxes: cells within two standard errors of the best (not "
                          "distinguishable from it at these seeds). Values in the CSV beside it (rows alpha_pos, "
                          "columns alpha_neg).",
                _fig4d, applies=lambda c, m: m in _alpha_grids(c), per_model=True,
                extra_files=lambda c, m: (f"fig4d_alpha_grid{c.suffix(m)}.csv",)),
    FigureEntry("fig5_channels", "Per-channel telemetry ({model})",
                lambda c: "Positive / negative channel: tokens of rollouts with advantage > 0 / < 0. Log-prob and entropy "
                          "changes are measured on the step's tokens after its update (embedded backend). Cov(log pi, A) "
                          "is the token mean of Cui et al.'s C_t; clip fractions are PPO's ratio clip per side. Mean over seeds.",
                _fig5, applies=_telemetry_tracked, per_model=True),
    FigureEntry("prop2_pressure", "Proposition 2: gradient pressure",
                lambda c: "W_pos per alpha_pos and W_neg per alpha_neg (eqs 9, 10) of the sweep's alpha-family "
                          "configurations; stars mark the interior peaks of eq 11 (none for alpha 0 or >= 1).",
                _prop2),
)


# --- the tables ------------------------------------------------------------------------------------


def _kappa_table(ctx: Context) -> Section:
    from analysis import summaries, tables

    s = ctx.settings
    per_model, per_run = summaries.kappa_table(ctx.data, s.kappa_steps, s.confidence, s.seed)
    caption = f"Table 1: kappa-bar, the mean of the online kappa estimate over the first {s.kappa_steps} steps (App E)"
    view = tables.kappa_view(per_model, s.kappa_steps, caption)
    paths = tables.write(view, per_model, ctx.out, "table1_kappa")
    per_run.to_csv(ctx.out / "table1_kappa_runs.csv", index=False)
    return Section("Table 1: kappa", view.caption, table_html=tables.to_html(view),
                   files=tuple(p.name for p in paths) + ("table1_kappa_runs.csv",))


def _accuracy_table(ctx: Context) -> Section:
    from analysis import summaries, tables

    # Table 3 is the paper's backbone table; any other study's accuracy table plays Table 2.
    number = 3 if ctx.data.study == "backbones" else 2
    caption = f"Table {number}: accuracy per benchmark and average, {ctx.select_text}"
    frame = summaries.accuracy_table(ctx.scores, ctx.benchmarks, summaries.base_scores(ctx.data, ctx.benchmarks),
                                     ctx.settings.confidence, ctx.settings.seed)
    view = tables.accuracy_view(frame, ctx.benchmarks, caption)
    paths = tables.write(view, frame, ctx.out, f"table{number}_accuracy")
    return Section(f"Table {number}: accuracy", view.caption, table_html=tables.to_html(view),
                   files=tuple(p.name for p in paths))


def _ordering_table(ctx: Context) -> Section:
    from analysis import tables
    from analysis.ordering import ordering_table

    frame = ordering_table(ctx.data)
    rows = []
    for r in frame.itertuples(index=False):
        gap = "reference" if r.gap is None else f"{r.gap.mean:+.4f} ± {r.gap.se:.4f}"
        verdict = "" if r.gap is None else ("agrees" if r.predicted == r.observed else "disagrees") + \
            ("" if r.beyond_noise else " (within noise)")
        rows.append([r.model, r.label, r.entropy.text(4), f"{r.kappa_bar:+.3f}", gap, r.predicted, r.observed, verdict])
    view = tables.Table("Proposition 1: entropy relative to REINFORCE (late-window mean, ± 95% t interval over "
                        "seeds; gap paired per seed, ± its standard error; within noise = under 2 standard errors)",
                        ["Model", "Method", "Entropy", "kappa-bar (1-20)", "Gap to REINFORCE", "Predicted",
                         "Observed", "Verdict"], rows, set())
    flat = frame.assign(entropy=[e.mean for e in frame["entropy"]],
                        gap=[math.nan if g is None else g.mean for g in frame["gap"]],
                        gap_se=[math.nan if g is None else g.se for g in frame["gap"]])
    paths = tables.write(view, flat, ctx.out, "prop1_ordering")
    return Section("Proposition 1: the entropy ordering", view.caption, table_html=tables.to_html(view),
                   files=tuple(p.name for p in paths))


def _ordering_applies(ctx: Context) -> bool:
    from common import metric_names as mn

    estimators = ctx.data.runs["estimator"]
    return mn.ENTROPY in ctx.tracked and (estimators == "reinforce").any() and estimators.isin(["pos-only", "neg-only"]).any()


def _cost_table(ctx: Context) -> Section:
    from analysis import tables
    from analysis.cost import cost_table

    frame = cost_table(ctx.data.runs, ctx.data.metrics)
    rows = [[r.label, str(int(r.trials)), f"{r.gpu_hours:.4f}", f"{r.cpu_hours:.4f}",
             f"{r.gpu_hours_per_trial:.4f}", f"{r.cpu_hours_per_trial:.4f}"] for r in frame.itertuples(index=False)]
    view = tables.Table("Cost per configuration (the ledger: GPUs reserved x wall time; CPU time of the trial's "
                        "processes; finished trials)", ["Method", "Trials", "GPU-h", "CPU-h", "GPU-h / trial",
                                                         "CPU-h / trial"], rows, set())
    paths = tables.write(view, frame, ctx.out, "cost")
    return Section("Cost", view.caption, table_html=tables.to_html(view), files=tuple(p.name for p in paths))


def _cost_tracked(ctx: Context) -> bool:
    from common import metric_names as mn

    return mn.COST_CPU_SECONDS in ctx.tracked


def _comparison_table(ctx: Context) -> Section:
    from analysis import comparison, tables

    runs = comparison.per_run(ctx.data, ctx.scores)
    frame = comparison.comparison_table(runs, ctx.settings.confidence, ctx.settings.seed)
    caption = ("Table 4: methods side by side: accuracy (average over benchmarks, "
               + (f"{ctx.settings.select} checkpoint" if ctx.benchmarks else "not evaluated")
               + f"), training reward and entropy over the last {comparison.LAST_FRACTION:.0%} of steps, "
               "entropy over all steps, none-/all-solved fractions and Cov(log pi, A) averaged over steps, kappa-bar "
               f"over the first {agg.KAPPA_STEPS} steps, PPO clip fractions per side")
    view = tables.comparison_view(frame, caption)
    paths = tables.write(view, frame, ctx.out, "table4_comparison")
    runs.to_csv(ctx.out / "table4_comparison_runs.csv", index=False)
    return Section("Table 4: methods side by side", view.caption, table_html=tables.to_html(view),
                   files=tuple(p.name for p in paths) + ("table4_comparison_runs.csv",))


def _prop1_check_table(ctx: Context) -> Section | None:
    from analysis import comparison, tables

    check = comparison.prop1_check(ctx.data, comparison.per_run(ctx.data, ctx.scores))
    if check.empty:
        return None
    caption = ("Table 5: Proposition 1 sign check. 'step': Cui et al.'s first-order entropy change "
               "dH = -eta Cov(log pi, A), which Prop. 1 builds on, per run mean and per step. 'eq 6': the "
               "alpha-family prediction against REINFORCE, observed on step 1 (same base model and "
               "rollouts per seed; Adam's first update is about lr * sign(gradient), so only the sign of the "
               "difference is meaningful). n/a: no first-order prediction (a+ = a-) or a sign is undefined.")
    view = tables.prop1_view(check, caption)
    paths = tables.write(view, check, ctx.out, "table5_prop1")
    return Section("Table 5: Proposition 1 sign check", view.caption, table_html=tables.to_html(view),
                   files=tuple(p.name for p in paths))


def _comparison_applies(ctx: Context) -> bool:
    return _telemetry_tracked(ctx) and len(ctx.data.labels) > 1


def _kappa_tracked(ctx: Context) -> bool:
    from common import metric_names as mn

    return mn.KAPPA in ctx.tracked


TABLES: tuple[tuple[str, Callable[[Context], bool], Callable[[Context], Section]], ...] = (
    ("Table 1 kappa", _kappa_tracked, _kappa_table),
    ("Table 2/3 accuracy", lambda ctx: bool(ctx.benchmarks), _accuracy_table),
    ("Table 4 comparison", _comparison_applies, _comparison_table),
    ("Table 5 Prop. 1", _comparison_applies, _prop1_check_table),
    ("Prop. 1 ordering", _ordering_applies, _ordering_table),
    ("Cost table", _cost_tracked, _cost_table),
)


def _plan(data, settings: ReportSettings, out: Path) -> list[tuple[str, Callable[[], Section | None]]]:
    """Every figure and table this sweep supports, as (progress description, render job), read
    off the declarative FIGURES and TABLES."""
    from analysis import figures

    ctx = _context(data, settings, out)
    jobs: list[tuple[str, Callable[[], Section | None]]] = []
    for entry in FIGURES:
        for model in (data.models if entry.per_model else [None]):
            if not entry.applies(ctx, model):
                continue

            def job(entry=entry, model=model) -> Section | None:
                fig = entry.draw(ctx, model)
                if fig is None:  # nothing of this model to draw
                    return None
                stem = entry.stem + (ctx.suffix(model) if entry.per_model else "")
                paths = figures.save(fig, out, stem)
                return Section(entry.title.format(model=model), entry.caption(ctx), png=out / f"{stem}.png",
                               files=tuple(p.name for p in paths) + entry.extra_files(ctx, model))

            jobs.append((f"{entry.stem}{'' if model is None else ' ' + model}", job))
    jobs += [(name, lambda render=render: render(ctx)) for name, applies, render in TABLES if applies(ctx)]
    return jobs


def _runs_section(data, out: Path) -> Section:
    columns = [c for c in ("trial", "label", "estimator", "alpha_pos", "alpha_neg", "seed", "model", "backend",
                           "steps", "run_id") if c in data.runs.columns]
    data.runs.to_csv(out / "runs.csv", index=False)
    table = data.runs[columns].to_html(index=False, border=0, float_format=lambda v: f"{v:g}")
    caption = f"{len(data.runs)} finished trial(s)"
    if data.unfinished:
        caption += f"; left out (not finished): {', '.join(data.unfinished)}"
    return Section("Trials", caption, table_html=table, files=("runs.csv",))


def _html(data, settings: ReportSettings, sections: list[Section]) -> str:
    def image(path: Path) -> str:
        encoded = base64.b64encode(path.read_bytes()).decode("ascii")
        return f'<img alt="{html.escape(path.stem)}" src="data:image/png;base64,{encoded}">'

    blocks = []
    for s in sections:
        body = image(s.png) if s.png else s.table_html
        files = ", ".join(s.files)
        blocks.append(f"<section><h2>{html.escape(s.title)}</h2>{body}<p class='cap'>{html.escape(s.caption)}</p>"
                      f"<p class='files'>files: {html.escape(files)}</p></section>")
    from common.redact import redact  # a URI's user:password never reaches the page

    meta = {"sweep": data.name, "study": data.study, "tracking store": redact(data.tracking_uri),
            "parent run": data.parent_run_id, **{f"setting {k}": v for k, v in asdict(settings).items()}}
    meta_rows = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>" for k, v in meta.items())
    style = ("body{font-family:sans-serif;max-width:1150px;margin:24px auto;color:#222}"
             "img{max-width:100%;border:1px solid #ddd}table{border-collapse:collapse;margin:8px 0}"
             "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}caption{text-align:left;font-weight:bold}"
             ".meta td,.meta th{text-align:left}"
             ".cap{color:#444}.files{color:#888;font-size:small}")
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>asym report: {html.escape(data.name)}</title>"
            f"<style>{style}</style></head><body><h1>Sweep report: {html.escape(data.name)}</h1>"
            f"<table class='meta'>{meta_rows}</table>{''.join(blocks)}</body></html>\n")


# Every file a report writes matches this: a previous report in the same folder is replaced whole
# (no stale figure from another sweep survives), other files there are left alone.
REPORT_FILES = re.compile(r"^(fig\d|prop2_|table\d)[^/]*\.(png|svg|csv|md|tex)$|^(report\.html|runs\.csv)$")


def _move_into(scratch: Path, out_dir: Path) -> None:
    if out_dir.exists():
        for old in out_dir.iterdir():
            if old.is_file() and REPORT_FILES.match(old.name):
                old.unlink()
        for path in scratch.iterdir():
            os.replace(path, out_dir / path.name)
        scratch.rmdir()
    else:
        os.replace(scratch, out_dir)


def build_report(sweep_name: str, out_dir: Path | str, tracking_uri: str | None = None,
                 settings: ReportSettings | None = None, show_progress: bool = True) -> Path:
    """Render every figure and table the sweep supports into ``out_dir``; returns report.html's path.

    Raises ValueError (one line) for bad settings, an unknown sweep or a sweep without a finished
    trial; nothing is written then.
    """
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from analysis.load import load_sweep

    settings = (settings or ReportSettings()).validate()
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"--out {out_dir} is a file; give a folder for the report")
    console = Console(stderr=True)
    with console.status(f"loading sweep '{sweep_name}' from MLflow", spinner="dots"):
        data = load_sweep(sweep_name, tracking_uri)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        jobs = _plan(data, settings, scratch)
        sections = []
        columns = (TextColumn("[bold]report[/bold] {task.description}"), BarColumn(), MofNCompleteColumn())
        with Progress(*columns, console=console, transient=True, disable=not show_progress) as progress:
            task = progress.add_task("", total=len(jobs) + 1)
            for description, job in jobs:
                progress.update(task, description=description)
                section = job()
                if section is not None:
                    sections.append(section)
                progress.advance(task)
            progress.update(task, description="report.html")
            sections.append(_runs_section(data, scratch))
            (scratch / "report.html").write_text(_html(data, settings, sections))
            progress.advance(task)
        _move_into(scratch, out_dir)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    if settings.log_artifacts:
        _attach(data, out_dir, sorted({f for s in sections for f in s.files} | {"report.html"}), console)
    return out_dir / "report.html"


def _attach(data, out_dir: Path, names: list[str], console) -> None:
    """Log this report's files under ``report/`` on the sweep's parent run (shown in the MLflow UI)."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=data.tracking_uri)
    with tempfile.TemporaryDirectory() as staging:
        for name in names:
            shutil.copy2(out_dir / name, Path(staging) / name)
        try:
            client.log_artifacts(data.parent_run_id, staging, artifact_path=ARTIFACT_DIR)
        except Exception as exc:  # the report on disk stands; say why the UI copy is missing
            console.print(f"warning: report written, but not attached to MLflow run {data.parent_run_id}: "
                          f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}")
