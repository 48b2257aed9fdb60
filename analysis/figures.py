"""Draw precomputed frames (``analysis.summaries``) as the paper's figures; no computing here.

Figures are plain ``matplotlib.figure.Figure`` objects rendered by the Agg canvas (no pyplot, no
global state, no display needed). Every method keeps one colour across all figures: the palette
is keyed by label and built once per report.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.colors import Normalize, to_hex
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from analysis.stats import t95

FORMATS = ("png", "svg")
DPI = 130


def palette(labels: list[str]) -> dict[str, str]:
    """One colour per label, in the given order (tab10, then tab20 for larger sweeps)."""

    cmap = colormaps["tab10"] if len(labels) <= 10 else colormaps["tab20"]
    return {label: to_hex(cmap(i % cmap.N)) for i, label in enumerate(labels)}


def save(fig: Figure, out_dir: Path, stem: str, formats: tuple[str, ...] = FORMATS) -> list[Path]:
    """Write the figure once per format; the SVG carries no date, so reruns are byte-stable."""
    paths = []
    for fmt in formats:
        path = out_dir / f"{stem}.{fmt}"
        metadata = {"Date": None} if fmt == "svg" else None
        fig.savefig(path, format=fmt, dpi=DPI, metadata=metadata)  # constrained layout already fits
        paths.append(path)
        try:  # the layout is solved: later formats reuse it instead of solving it again
            fig.set_layout_engine("none")
        except RuntimeError:  # matplotlib refuses for some colorbar layouts; solve again then
            pass
    return paths


def _legend_below(fig: Figure, axes) -> None:
    handles, labels = {}, []
    for ax in np.ravel(axes):
        for handle, label in zip(*ax.get_legend_handles_labels()):
            if label not in handles:
                handles[label] = handle
                labels.append(label)
    if handles:
        # "outside": constrained layout reserves room for it, so it never covers an axis label
        fig.legend([handles[label] for label in labels], labels, loc="outside lower center",
                   ncol=min(len(labels), 4), frameon=False)


MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "h")
LINESTYLES = ("-", "--", "-.", ":")


def advantage_figure(curves: pd.DataFrame, colours: dict[str, str], group_size: int) -> Figure:
    """Fig 1: A+(p) on correct rollouts and A-(p) on wrong ones, one line per configuration.

    Methods whose curves coincide on a channel (Neg-Only's A+ is REINFORCE's +1) stay visible:
    each line has its own marker and the later ones are drawn thinner on top.
    """
    fig = Figure(figsize=(10, 4.4), layout="constrained")
    axes = fig.subplots(1, 2)
    titles = {"pos": "Positive channel: correct rollouts", "neg": "Negative channel: wrong rollouts"}
    for ax, channel in zip(axes, ("pos", "neg")):
        rows_of = curves[curves["channel"] == channel]
        magnitude = rows_of["advantage"].abs()
        for i, (label, rows) in enumerate(rows_of.groupby("label", sort=False)):
            colour = colours.get(label) or colours[label.split(" / ")[0]]
            ax.plot(rows["p"], rows["advantage"].abs(), marker=MARKERS[i % len(MARKERS)], ms=7 - 0.5 * (i % 6),
                    lw=2.4 - 0.3 * (i % 6), color=colour, label=label, zorder=2 + i)
        # The paper draws magnitudes. A strong alpha (alpha+ = 3 gives 343 at k = 1) would flatten every
        # other curve on a linear axis: past a 20x range, a symmetric-log axis keeps them all readable.
        finite = magnitude[np.isfinite(magnitude) & (magnitude > 0)]
        if len(finite) and finite.max() / max(finite.min(), 1e-12) > 20:
            ax.set_yscale("symlog", linthresh=0.1)
        ax.set_title(titles[channel])
        ax.set_xlabel(f"group accuracy p = k/G (G = {group_size})")
        ax.set_ylabel("|A+|" if channel == "pos" else "|A-|")
        ax.grid(alpha=0.3)
    fig.suptitle("Advantage curves of the estimators in this sweep (eqs 2, 4, 8)")
    _legend_below(fig, axes)
    return fig


def curves_figure(panels: list[tuple[str, str, pd.DataFrame]], colours: dict[str, str], title: str) -> Figure:
    """Fig 2/3 style: one panel per metric, one line per configuration (mean over seeds),
    the band its bootstrap interval over seeds. ``panels``: (title, y label, curve frame)."""
    ncols = 2 if len(panels) == 4 else min(len(panels), 3)
    nrows = int(np.ceil(len(panels) / ncols))
    fig = Figure(figsize=(4.6 * ncols, 3.6 * nrows + 0.6), layout="constrained")
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False).ravel())
    for ax, (panel_title, ylabel, frame) in zip(axes, panels):
        for label, rows in frame.groupby("label", sort=False):
            # a line style per method keeps methods with equal curves (tiny or early runs) apart
            ax.plot(rows["step"], rows["mean"], color=colours[label], lw=1.6, label=label,
                    ls=LINESTYLES[list(colours).index(label) % len(LINESTYLES)])
            if (rows["n"] > 1).any():
                ax.fill_between(rows["step"], rows["low"], rows["high"], color=colours[label], alpha=0.2, lw=0)
        ax.set_title(panel_title)
        ax.set_xlabel("training step")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    fig.suptitle(title)
    _legend_below(fig, axes[: len(panels)])
    return fig


PAPER_ALPHA_RANGE = 1.0  # eq 11 has an interior peak only for 0 < alpha < 1 (Prop. 2)


def heatmap_figure(panels: list[tuple[str, object]], title: str, value_label: str) -> Figure:
    """Fig 4(d): one heatmap per (panel title, ``summaries.GridCells``), alpha_pos rows x alpha_neg columns.

    Each cell reads "mean ± 95% t half-width / n=k"; the best cell has a red box and the cells within
    two standard errors of it a dashed one (the grid's structure is only what stands out of that
    noise); cells with an alpha >= 1 (outside the paper's range, no interior pressure peak) are
    hatched. The colour range is the data's own range, shared by the panels.
    """

    finite_all = np.concatenate([c.mean.to_numpy(dtype=np.float64).ravel() for _, c in panels])
    finite_all = finite_all[np.isfinite(finite_all)]
    vmin, vmax = (float(finite_all.min()), float(finite_all.max())) if finite_all.size else (0.0, 1.0)
    if vmax == vmin:
        vmax = vmin + 1e-9
    width = max(c.mean.shape[1] for _, c in panels)
    height = max(c.mean.shape[0] for _, c in panels)
    fig = Figure(figsize=(len(panels) * (1.35 * width + 1.6) + 1.6, 0.9 * height + 2.4), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(panels), squeeze=False).ravel())
    image = None
    for ax, (panel_title, cells) in zip(axes, panels):
        grid = cells.mean
        values = grid.to_numpy(dtype=np.float64)
        errors = cells.se.reindex_like(grid).to_numpy(dtype=np.float64)
        counts = cells.n.reindex_like(grid).to_numpy(dtype=np.float64)
        image = ax.imshow(np.ma.masked_invalid(values), cmap="viridis", origin="lower", aspect="auto", vmin=vmin, vmax=vmax)
        ax.set_xticks(range(values.shape[1]), [f"{a:g}" for a in grid.columns])
        ax.set_yticks(range(values.shape[0]), [f"{a:g}" for a in grid.index])
        ax.set_xlabel("alpha_neg (negative channel)")
        ax.set_ylabel("alpha_pos (positive channel)")
        middle = (vmin + vmax) / 2
        for i, alpha_pos in enumerate(grid.index):
            for j, alpha_neg in enumerate(grid.columns):
                if not np.isfinite(values[i, j]):
                    continue
                text = f"{values[i, j]:.3f}"
                if np.isfinite(errors[i, j]) and np.isfinite(counts[i, j]) and counts[i, j] > 1:
                    text += f"\n± {t95(int(counts[i, j]) - 1) * errors[i, j]:.3f}"
                if np.isfinite(counts[i, j]):
                    text += f"\nn={int(counts[i, j])}"
                ax.text(j, i, text, ha="center", va="center", color="white" if values[i, j] < middle else "black",
                        fontsize=8, linespacing=1.1)
                if max(alpha_pos, alpha_neg) >= PAPER_ALPHA_RANGE:
                    ax.add_patch(_cell_box(j, i, hatch=True))
        if np.isfinite(values).any():
            best = np.unravel_index(np.nanargmax(values), values.shape)
            ax.add_patch(_cell_box(best[1], best[0]))
            for i, j in zip(*np.nonzero(np.isfinite(values))):
                if (i, j) == best:
                    continue
                spread = np.sqrt(np.nan_to_num(errors[i, j]) ** 2 + np.nan_to_num(errors[best]) ** 2)
                if spread > 0 and values[best] - values[i, j] <= 2 * spread:
                    ax.add_patch(_cell_box(j, i, dashed=True))
        ax.set_title(panel_title)
    fig.colorbar(image, ax=list(axes), label=value_label)
    fig.suptitle(title)
    return fig


def _cell_box(x: int, y: int, dashed: bool = False, hatch: bool = False):
    if hatch:  # outside the paper's alpha range
        return Rectangle((x - 0.5, y - 0.5), 1, 1, fill=False, edgecolor="grey", lw=0, hatch="//", alpha=0.6)
    return Rectangle((x - 0.5, y - 0.5), 1, 1, fill=False, edgecolor="white" if dashed else "red", lw=1.5 if dashed else 2,
                     linestyle="--" if dashed else "-")


def pass_at_k_figure(frame: pd.DataFrame, colours: dict[str, str], title: str) -> Figure:
    """pass@k against k (log2 axis), one panel per benchmark: a line per configuration at its selected
    checkpoint (mean over seeds, band: the interval), the base model dashed grey."""
    benches = list(dict.fromkeys(frame["benchmark"]))
    n_labels = frame["label"].nunique()
    fig = Figure(figsize=(max(10.0, 5.2 * len(benches)), 4.2 + 0.28 * np.ceil(n_labels / 4)), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(benches), squeeze=False).ravel())
    for ax, bench in zip(axes, benches):
        rows_of = frame[frame["benchmark"] == bench]
        for label, rows in rows_of.groupby("label", sort=False):
            base = label.endswith(" (base)")
            colour = "grey" if base else colours.get(label, "black")
            ax.plot(rows["k"], rows["mean"], marker="o", ms=3, color=colour, ls="--" if base else "-", label=label)
            if (rows["n"] > 1).any():
                ax.fill_between(rows["k"], rows["low"], rows["high"], color=colour, alpha=0.15, lw=0)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("k (samples per prompt, T = 1)")
        ax.set_ylabel(f"pass@k on {bench}")
        ax.set_title(bench)
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    _legend_below(fig, axes)
    return fig


def pressure_figure(curves: pd.DataFrame, peaks: pd.DataFrame) -> Figure:
    """Prop. 2: W_pos(p) per alpha_pos and W_neg(p) per alpha_neg (eqs 9, 10), peaks p* (eq 11) starred.

    A curve depends on one alpha only, so it is coloured by that alpha (one sequential scale for
    both panels) and its legend names the configurations that share it.
    """

    fig = Figure(figsize=(11, 4.6), layout="constrained")
    axes = fig.subplots(1, 2)
    alphas = curves["alpha"].to_numpy(dtype=float)
    norm = Normalize(vmin=float(alphas.min()) - 0.1, vmax=float(alphas.max()) + 0.1) if alphas.size else Normalize()
    cmap = colormaps["plasma"]
    names = {"pos": ("W_pos(p) = p^(1-a+) (1-p)^(a+)", "positive pressure W_pos", "a+"),
             "neg": ("W_neg(p) = p^(a-) (1-p)^(1-a-)", "negative pressure W_neg", "a-")}
    for ax, channel in zip(axes, ("pos", "neg")):
        title, ylabel, symbol = names[channel]
        for alpha, rows in curves[curves["channel"] == channel].groupby("alpha", sort=True):
            labels = rows["labels"].iloc[0].split(" / ")
            shown = ", ".join(labels[:2]) + (f" +{len(labels) - 2} more" if len(labels) > 2 else "")
            ax.plot(rows["p"], rows["pressure"], color=cmap(norm(alpha)), lw=1.8, label=f"{symbol} = {alpha:g}: {shown}")
        for peak in peaks[peaks["channel"] == channel].itertuples(index=False):
            ax.plot([peak.p_star], [peak.pressure], marker="*", ms=13, color=cmap(norm(peak.alpha)),
                    markeredgecolor="black", markeredgewidth=0.6, zorder=5)
            ax.axvline(peak.p_star, color=cmap(norm(peak.alpha)), ls=":", lw=1)
        ax.set_title(title)
        ax.set_xlabel("group accuracy p")
        ax.set_ylabel(ylabel)
        ax.set_xlim(0, 1)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.16), frameon=False, ncol=1)
    fig.suptitle("Proposition 2: gradient pressure and its peaks (stars: p*_pos = 1 - a+, p*_neg = a-)")
    return fig
