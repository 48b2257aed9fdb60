"""`asym estimators list | show`: the paper's advantage family, as a table, JSON or Figure 1.

Only typer is imported at module level; torch and the estimators load inside the commands.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(help="The paper's advantage estimators: list them, show their values per k of G.",
                  no_args_is_help=True)


def _fmt(value: float | None, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _plot_figure_1(tables, path: str) -> None:
    """Figure 1 for these tables, drawn by the report's own function (``analysis.figures``)."""

    import pandas as pd  # deferred: pandas

    from analysis import figures, summaries  # deferred: matplotlib, numpy, pandas
    from estimators import get_estimator  # deferred: asym --help

    target = Path(path)
    if target.suffix.lower() != ".png":
        raise ValueError(f"--plot writes a PNG; give a file name ending in .png, got '{target}'")
    if not target.parent.exists():
        raise ValueError(f"--plot: directory '{target.parent}' does not exist")
    labels = []
    for t in tables:
        est = get_estimator(t.estimator)
        labels.append(f"{est.label} (a+={t.alpha_pos:g}, a-={t.alpha_neg:g})" if est.tunable else est.label)
    configs = pd.DataFrame({"label": labels, "estimator": [t.estimator for t in tables],
                            "alpha_pos": [t.alpha_pos for t in tables], "alpha_neg": [t.alpha_neg for t in tables]})
    group_size = tables[0].group_size
    curves = summaries.advantage_curves(configs, group_size)
    fig = figures.advantage_figure(curves, figures.palette(labels), group_size)
    fig.savefig(target, format="png", dpi=figures.DPI)


@app.command("list")
def list_estimators() -> None:
    """Every registered estimator: name, label, default alphas, which alphas are tunable, its source."""

    from estimators import ESTIMATORS  # deferred: asym --help

    table = Table(title="advantage estimators")
    for column in ("name", "paper label", "alpha_pos", "alpha_neg", "tunable"):
        table.add_column(column, no_wrap=True)
    table.add_column("source", overflow="fold")
    for e in ESTIMATORS.values():
        table.add_row(e.name, e.label, f"{e.default_alpha_pos:g}", f"{e.default_alpha_neg:g}",
                      ", ".join(e.tunable) or "-", e.source)
    Console().print(table)


@app.command("show")
def show(
    name: Annotated[str, typer.Argument(help="Estimator name (see `asym estimators list`); a comma list overlays several in --plot.")],
    group_size: Annotated[int, typer.Option("--group-size", "-G", help="Rollouts per prompt G (>= 2).")] = 8,
    alpha_pos: Annotated[Optional[float], typer.Option("--alpha-pos", help="Positive-channel exponent (estimators that tune it).")] = None,
    alpha_neg: Annotated[Optional[float], typer.Option("--alpha-neg", help="Negative-channel exponent (estimators that tune it).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the table as JSON (one estimator).")] = False,
    plot: Annotated[Optional[str], typer.Option("--plot", help="Also write the paper's Figure 1 to this PNG file.")] = None,
) -> None:
    """Advantage of a correct (pos) and a failed (neg) rollout for k = 0..G correct, and the
    Proposition 2 pressure peaks."""

    from estimators.curves import advantage_table, overlay_alphas  # deferred: torch

    names = [n.strip() for n in name.split(",") if n.strip()]
    if as_json and len(names) != 1:
        raise ValueError(f"--json shows one estimator; got {len(names)} ({name})")
    tables = [advantage_table(n, group_size, ap, an) for n, ap, an in overlay_alphas(names, alpha_pos, alpha_neg)]
    if plot is not None:
        _plot_figure_1(tables, plot)
    if as_json:
        typer.echo(json.dumps(tables[0].to_dict()))
        return
    _print_tables(tables)
    if plot is not None:
        typer.echo(f"wrote {plot}")


def _print_tables(tables) -> None:
    from estimators import get_estimator  # deferred: asym --help

    console = Console()
    for t in tables:
        label = get_estimator(t.estimator).label
        title = (f"{label} ('{t.estimator}'), G={t.group_size}, alpha_pos={t.alpha_pos:g}, "
                 f"alpha_neg={t.alpha_neg:g}")
        table = Table(title=title)
        for column in ("k", "p", "A+ (correct)", "A- (failed)"):
            table.add_column(column, justify="right")
        for r in t.rows:
            table.add_row(str(r.k), f"{r.p:.4f}", _fmt(r.pos), _fmt(r.neg))
        console.print(table)
        peaks = t.peaks
        console.print(f"pressure peaks (Prop. 2): W_pos at p={_fmt(peaks['pos'], 3)}, "
                      f"W_neg at p={_fmt(peaks['neg'], 3)}  ('-' = not interior)")
