"""The report's figures, declared once: ``FIGURES`` says for each its file stem, title, caption, when
it applies and how it is drawn (``analysis.figures`` draws; ``analysis.summaries`` computes).

A new figure is one ``FigureEntry`` here; its files are then written, listed, attached to MLflow and
cleaned on a rerun without another edit (``analysis.report`` derives all of that from ``FIGURES``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from analysis import checkpoints, figures, schedules, summaries
from analysis.report_context import Context
from common import metric_names as mn


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


def _fig1(ctx: Context, model: str | None):
    return figures.advantage_figure(summaries.advantage_curves(ctx.configs, ctx.group_size), ctx.colours, ctx.group_size)


def _fig2(ctx: Context, model: str):
    panels = ctx.panels(model, ctx.curve_metrics())
    return figures.curves_figure(panels, ctx.colours, f"Training dynamics per configuration: {model}") if panels else None


def _channel_sweep_entry(estimator: str, letters: str, channel: str) -> FigureEntry:
    """Fig 2(a-d): the alpha+ sweep (alpha- = 0, ``pos-only``); Fig 2(e-h): the alpha- sweep (``neg-only``)."""
    def draw(ctx: Context, model: str):
        panels = ctx.panels(model, ctx.sweep_metrics(), summaries.channel_sweep_labels(ctx.data, estimator))
        return figures.curves_figure(panels, ctx.colours, f"{channel} sweep, one channel at a time: {model}") if panels else None

    def applies(ctx: Context, model: str) -> bool:
        return bool(summaries.channel_sweep_labels(ctx.data, estimator)) and any(m[0] in ctx.tracked for m in ctx.sweep_metrics())

    return FigureEntry(
        f"fig2{letters[0]}_{estimator.replace('-', '_')}_sweep", f"Figure 2({letters}): the {channel} sweep ({{model}})",
        lambda c: f"REINFORCE (alpha = 0) and {estimator} at each {channel} the sweep ran, the other channel at 0: "
                  f"entropy, none-solved groups, test accuracy ({c.ema_note}) and the log-prob gain on correct "
                  f"rollouts. Mean over seeds; band: {c.settings.confidence:.0%} bootstrap interval.",
        draw, applies=applies, per_model=True)


def _fig3(ctx: Context, model: str):
    panels = ctx.panels(model, ctx.curve_metrics()[:4], ctx.flip)
    return figures.curves_figure(panels, ctx.colours, f"Advantage-flip test: {model}") if panels else None


def _alpha_grids(ctx: Context) -> dict:
    if not ctx.benchmarks or ctx.scores is None:
        return {}
    if "alpha_grids" not in ctx.cache:
        ctx.cache["alpha_grids"] = summaries.alpha_grid(ctx.data, ctx.scores, ctx.select_column)
    return ctx.cache["alpha_grids"]


def _model_grids(ctx: Context, model: str) -> list[tuple[str, object]]:
    return [(estimator, cells) for (m, estimator), cells in _alpha_grids(ctx).items() if m == model]


def _grid_csv(ctx: Context, model: str, estimator: str) -> str:
    """The file of one heatmap panel's numbers (AsymGRPO's keeps the plain name)."""
    return f"fig4d_alpha_grid{ctx.suffix(model)}{'' if estimator == 'asym' else '_' + estimator}.csv"


def _fig4d(ctx: Context, model: str):
    panels = _model_grids(ctx, model)
    for estimator, cells in panels:  # the heatmap's numbers, beside it
        cells.mean.to_csv(ctx.out / _grid_csv(ctx, model, estimator))
    return figures.heatmap_figure(panels, f"Alpha grid ({model}): {ctx.select_name}\nat the {ctx.select_text}",
                                  f"{ctx.select_name}, mean over seeds")


def _fig4d_files(ctx: Context, model: str) -> tuple[str, ...]:
    return tuple(_grid_csv(ctx, model, estimator) for estimator, _ in _model_grids(ctx, model))


def _pass_at_k(ctx: Context, model: str):
    frame = checkpoints.pass_at_k(ctx.data, ctx.scores, ctx.settings.confidence)
    frame = frame[frame["model"] == model]
    return figures.pass_at_k_figure(frame, ctx.colours, f"pass@k: {model}") if not frame.empty else None


def _pass_at_k_tracked(ctx: Context, model: str) -> bool:
    return ctx.scores is not None and any(checkpoints.PASS_AT_K.match(m) for m in ctx.tracked)


def _channel_metrics() -> list[tuple]:
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
    panels = ctx.panels(model, _channel_metrics())
    return figures.curves_figure(panels, ctx.colours, f"Per-channel telemetry: {model}") if panels else None


def telemetry_tracked(ctx: Context, model: str | None = None) -> bool:
    return mn.COV_LOGP_ADV in ctx.tracked


def _prop2(ctx: Context, model: str | None):
    pressure, peaks = summaries.pressure_curves(ctx.configs)
    return figures.pressure_figure(pressure, peaks) if not pressure.empty else None


FIGURES: tuple[FigureEntry, ...] = (
    FigureEntry("fig1_advantages", "Figure 1: advantage curves",
                lambda c: f"Advantage each estimator gives a correct (left) and a wrong (right) rollout in a group of "
                          f"G = {c.group_size} with k correct, computed by estimators.compute_advantages.", _fig1),
    FigureEntry("fig2_training", "Figure 2 style: training dynamics ({model})",
                lambda c: f"Mean over seeds; the band is the {c.settings.confidence:.0%} bootstrap interval over seeds. "
                          f"Test accuracy is {c.accuracy_metric} ({c.ema_note}; an EMA is applied per seed before averaging); "
                          "step 0 is the starting model.",
                _fig2, applies=lambda c, m: any(k[0] in c.tracked for k in c.curve_metrics()), per_model=True),
    _channel_sweep_entry("pos-only", "a-d", "alpha+"),
    _channel_sweep_entry("neg-only", "e-h", "alpha-"),
    FigureEntry("fig3_flip", "Figure 3 style: advantage-flip test ({model})",
                lambda c: "GRPO against EntDecrease (positive channel mirrored) and EntIncrease (negative channel "
                          "mirrored), spec section 2.",
                _fig3, applies=lambda c, m: bool(c.flip) and any(k[0] in c.tracked for k in c.curve_metrics()[:2]),
                per_model=True),
    FigureEntry("fig4d_alpha_grid", "Figure 4(d) style: alpha grid ({model})",
                lambda c: f"{c.select_name[0].upper() + c.select_name[1:]} at the {c.select_text}, per cell the mean "
                          "over seeds ± the 95% t half-width (t quantile for n - 1 degrees of freedom), n = seeds; the "
                          "colour range is the data's range. Red box: best cell; dashed boxes: cells within two "
                          "standard errors of the best (not distinguishable from it at these seeds); hatched: an alpha "
                          ">= 1, outside the paper's range (eq 11 has no interior peak there). One panel per "
                          "alpha-family estimator with a grid. Values in the CSV beside it (rows alpha_pos, columns "
                          "alpha_neg).",
                _fig4d, applies=lambda c, m: bool(_model_grids(c, m)), per_model=True, extra_files=_fig4d_files),
    FigureEntry("fig_pass_at_k", "pass@k ({model})",
                lambda c: f"pass@k (unbiased estimator, T = 1) per configuration at its {c.select_text}, and the base "
                          "model (step 0, dashed); mean over seeds ± 95% t interval.",
                _pass_at_k, applies=_pass_at_k_tracked, per_model=True),
    FigureEntry("fig5_channels", "Per-channel telemetry ({model})",
                lambda c: "Positive / negative channel: tokens of rollouts with advantage > 0 / < 0. Log-prob and entropy "
                          "changes are measured on the step's tokens after its update (embedded backend). Cov(log pi, A) "
                          "is the token mean of Cui et al.'s C_t; clip fractions are PPO's ratio clip per side. Mean over seeds.",
                _fig5, applies=telemetry_tracked, per_model=True),
    FigureEntry(schedules.STEM, schedules.TITLE, schedules.caption, schedules.draw, applies=schedules.applies,
                per_model=True),
    FigureEntry("prop2_pressure", "Proposition 2: gradient pressure",
                lambda c: "W_pos per alpha_pos and W_neg per alpha_neg (eqs 9, 10) of the sweep's alpha-family "
                          "configurations; stars mark the interior peaks of eq 11 (none for alpha 0 or >= 1).",
                _prop2),
)
