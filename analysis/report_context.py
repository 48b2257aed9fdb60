"""What every figure and table of one report reads: the settings, and the sweep's summaries computed once.

The checkpoint rule is declared here once and said in every caption that depends on it
(``Context.select_text``): which score picks a trained run's checkpoint (the hard held-out split on
the embedded engine, MATH-500 on verl as in the paper, else the mean over benchmarks), best or last,
never step 0 (the base model has its own row), later step on ties.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from analysis import aggregate as agg
from analysis import checkpoints, summaries
from common import metric_names as mn


@dataclass(frozen=True)
class ReportSettings:
    """What the paper leaves open ([NF]) or a reader may want to change; defaults are ours."""

    ema: float = agg.DEFAULT_EMA  # EMA factor on test-accuracy curves
    select: str = "best"  # checkpoint for Tables 2/3: "best" (by ``select_on``) or "last"; never step 0
    select_on: str | None = None  # a benchmark or "mean" (default: hard split, else MATH-500, else mean)
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


def slug(text: str) -> str:
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
    select_on: str  # a benchmark name or checkpoints.MEAN
    accuracy_metric: str
    ema_note: str
    accuracy_ema: float  # the EMA factor the accuracy curves get (0 when a run has too few evaluations)
    flip: list
    scores: object = None  # per-run checkpoint scores when evaluations are tracked
    select_text: str = ""
    cache: dict = field(default_factory=dict)  # summaries more than one figure or table reads

    @property
    def select_column(self) -> str:
        """The scores column of the selection score ("avg" for the mean over benchmarks)."""
        return "avg" if self.select_on == checkpoints.MEAN else self.select_on

    @property
    def select_name(self) -> str:
        if self.select_on == checkpoints.MEAN:
            return "mean accuracy over benchmarks"
        if self.select_on == checkpoints.HARD_SPLIT:
            return "hard-split accuracy"
        return f"{self.select_on} accuracy"

    def suffix(self, model: str | None) -> str:
        return "" if model is None or len(self.data.models) == 1 else f"_{slug(model)}"

    def panels(self, model: str, metrics, labels=None) -> list:
        """(title, y label, curve frame) per tracked metric of ``metrics``, for one model."""
        out = []
        for metric, title, ylabel, ema in metrics:
            frame = summaries.curve(self.data, metric, ema_factor=ema, labels=labels, model=model,
                                    confidence=self.settings.confidence, seed=self.settings.seed)
            if not frame.empty:
                out.append((title, ylabel, frame))
        return out

    def curve_metrics(self) -> list[tuple]:
        return [
            (mn.ENTROPY, "Policy entropy", "token entropy (eq 7)", None),
            (self.accuracy_metric, f"Test accuracy ({self.ema_note})", self.accuracy_metric, self.accuracy_ema),
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


def build_context(data, settings: ReportSettings, out: Path) -> Context:
    from analysis import figures  # deferred: matplotlib

    benchmarks = checkpoints.eval_benchmarks(data)
    select_on = checkpoints.selection_benchmark(benchmarks, settings.select_on)
    if select_on in benchmarks:  # the selection benchmark leads the tables (MATH-500 in the paper's)
        benchmarks = [select_on] + [b for b in benchmarks if b != select_on]
    tracked = set(data.metric_names())
    accuracy_metric = mn.EVAL_MEAN_ACCURACY if select_on == checkpoints.MEAN else mn.eval_accuracy(select_on)
    if accuracy_metric not in tracked and benchmarks:
        accuracy_metric = mn.eval_accuracy(benchmarks[0])
    ema, ema_note = _accuracy_smoothing(data, accuracy_metric, settings.ema)
    ctx = Context(data=data, settings=settings, out=out, colours=figures.palette(data.labels),
                  configs=summaries.configurations(data), group_size=settings.group_size or summaries.group_size(data),
                  tracked=tracked, benchmarks=benchmarks, select_on=select_on, accuracy_metric=accuracy_metric,
                  ema_note=ema_note, accuracy_ema=ema, flip=summaries.flip_labels(data))
    if benchmarks:
        ctx.scores = checkpoints.checkpoint_scores(data, benchmarks, settings.select, select_on)
        rule = (f"checkpoint with the best {ctx.select_name}" if settings.select == "best" else "last checkpoint")
        ctx.select_text = rule + " after step 0" + (" (later step on ties)" if settings.select == "best" else "")
    return ctx


MIN_EVALS_FOR_EMA = 10  # ours: an EMA over fewer evaluations is mostly its starting value


def _accuracy_smoothing(data, metric: str, ema: float) -> tuple[float, str]:
    """(factor, caption words) for the accuracy curves: ``ema`` unless the runs have fewer than
    MIN_EVALS_FOR_EMA evaluations (a 20-step run evaluated at 0, 10, 20 would read as a third of
    its accuracy at EMA 0.8)."""
    if not ema:
        return 0.0, "not smoothed"
    counts = data.metrics[data.metrics["metric"] == metric].groupby("run_id")["step"].nunique()
    if counts.empty or counts.median() < MIN_EVALS_FOR_EMA:
        return 0.0, f"not smoothed: {int(counts.median()) if not counts.empty else 0} evaluations per run"
    return ema, f"EMA {ema:g}"
