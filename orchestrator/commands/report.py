"""`asym report NAME`: the paper's figures and tables for a tracked sweep (see analysis.report)."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

app = typer.Typer(
    help="Figures, tables and one report.html for a tracked sweep; also attached to its MLflow run.",
    no_args_is_help=True,
    # NAME and options in any order (a callback is a Click group, which stops at the first argument).
    context_settings={"allow_interspersed_args": True},
)


class Select(str, Enum):
    best = "best"
    last = "last"


@app.callback(invoke_without_command=True)
def report(
    name: Annotated[str, typer.Argument(help="The sweep's name (as given to or printed by `asym sweep`).")],
    out: Annotated[Optional[Path], typer.Option("--out", help="Output folder (default: ./reports/NAME).")] = None,
    ema: Annotated[float, typer.Option(help="EMA factor for test-accuracy curves, in [0, 1); 0 = raw. The paper does not give it.")] = 0.8,
    select: Annotated[Select, typer.Option(help="Checkpoint in the accuracy tables: best by --select-on, or the last; never step 0, later step on ties.")] = Select.best,
    select_on: Annotated[Optional[str], typer.Option("--select-on", help="Benchmark that picks the best checkpoint, or 'mean' (default: the hard split when tracked, else MATH-500, else the mean).")] = None,
    kappa_steps: Annotated[int, typer.Option(help="Table 1 averages kappa over this many first training steps.")] = 20,
    tracking_uri: Annotated[Optional[str], typer.Option(help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else ./.asym/mlflow).")] = None,
    no_mlflow: Annotated[bool, typer.Option("--no-mlflow", help="Do not attach the files to the sweep's MLflow run.")] = False,
    storage: Annotated[Optional[str], typer.Option("--storage", help="The sweep's shared folder (`asym sweep --storage`): its default store is there.")] = None,
) -> None:
    """Write figures (PNG, SVG), tables (Markdown, CSV, LaTeX) and a self-contained report.html."""
    from analysis.report import ReportSettings, build_report  # deferred: matplotlib, numpy, pandas, torch
    from orchestrator.mlflow_server import reap_orphans  # deferred: asym --help

    reap_orphans()  # an mlflow server a SIGKILLed sweep driver left on this store

    settings = ReportSettings(ema=ema, select=select.value, select_on=select_on, kappa_steps=kappa_steps,
                              log_artifacts=not no_mlflow)
    if tracking_uri is None:
        from experiments.tracking_names import storage_tracking_uri  # deferred: asym --help

        tracking_uri = storage_tracking_uri(storage)
    path = build_report(name, out or Path("reports") / name, tracking_uri=tracking_uri, settings=settings)
    typer.echo(f"report: {path}")
