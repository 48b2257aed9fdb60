"""The paper's Figure 1: advantage against group accuracy p, positive and negative channel.

Only draws numbers computed by ``estimators.curves`` (matplotlib is imported lazily, Agg backend).
Lines are the estimator on a fine grid (interior p only, where the closed forms are defined);
markers are the user's group size, endpoint rules (0**0, flip-test extrapolation) included.
"""

from __future__ import annotations

from pathlib import Path

import torch

from estimators.curves import AdvantageTable, advantage_table, channel_values
from estimators.registry import get_estimator

LINE_GRID = 200


def _label(table: AdvantageTable) -> str:
    estimator = get_estimator(table.estimator)
    if estimator.tunable:
        return f"{estimator.label} (a+={table.alpha_pos:g}, a-={table.alpha_neg:g})"
    return estimator.label


def plot_advantage_curves(tables: list[AdvantageTable], path: str | Path) -> Path:
    """Write Figure 1 for the given tables (one colour per estimator) to ``path`` (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ValueError(f"--plot writes a PNG; give a file name ending in .png, got '{path}'")
    if not path.parent.exists():
        raise ValueError(f"--plot: directory '{path.parent}' does not exist")

    fig, (ax_pos, ax_neg) = plt.subplots(1, 2, figsize=(10, 4), sharex=True)
    p_line = torch.arange(1, LINE_GRID, dtype=torch.float64) / LINE_GRID
    for i, table in enumerate(tables):
        color = f"C{i}"
        estimator = get_estimator(table.estimator)
        a_pos, a_neg = channel_values(estimator, LINE_GRID, table.alpha_pos, table.alpha_neg)
        ax_pos.plot(p_line, a_pos[1:-1], color=color, label=_label(table))
        ax_neg.plot(p_line, a_neg[1:-1], color=color, label=_label(table))
        pts_pos = [(r.p, r.pos) for r in table.rows if r.pos is not None]
        pts_neg = [(r.p, r.neg) for r in table.rows if r.neg is not None]
        ax_pos.plot(*zip(*pts_pos), "o", color=color, markersize=4)
        ax_neg.plot(*zip(*pts_neg), "o", color=color, markersize=4)

    # Clip the view to the marker range: near p = 0 (resp. 1) the closed forms blow up.
    marker_vals = [v for t in tables for r in t.rows for v in (r.pos, r.neg) if v is not None]
    top = max(max(marker_vals), 1.0) * 1.15
    bottom = min(min(marker_vals), -1.0) * 1.15
    ax_pos.set_ylim(min(0.0, bottom * 0.05), top)
    ax_neg.set_ylim(bottom, max(0.0, top * 0.05))
    group_size = tables[0].group_size
    ax_pos.set_title("positive channel: A+ of a correct rollout")
    ax_neg.set_title("negative channel: A- of a failed rollout")
    for ax in (ax_pos, ax_neg):
        ax.axhline(0.0, color="grey", linewidth=0.5)
        ax.set_xlabel(f"group accuracy p = k/G (markers: G = {group_size})")
        ax.grid(alpha=0.3)
    ax_pos.set_ylabel("advantage")
    ax_pos.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_estimators(names: list[str], group_size: int, alpha_pos: float | None, alpha_neg: float | None,
                    path: str | Path) -> Path:
    """Convenience: tables for several estimators (see ``curves.overlay_alphas``) drawn together."""
    from estimators.curves import overlay_alphas

    tables = [advantage_table(n, group_size, ap, an) for n, ap, an in overlay_alphas(names, alpha_pos, alpha_neg)]
    return plot_advantage_curves(tables, path)
