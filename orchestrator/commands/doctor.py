"""`asym doctor`: what this machine can run and why not (``orchestrator.doctor`` holds the checks).

A table of checks, then each backend mode with a yes/no and its reasons; ``--json`` prints the same
as one JSON object. Exit 0 when the chosen backend mode can run here, 1 when it cannot.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table


def doctor(
    backend: Annotated[str, typer.Option("--backend", help="The mode whose readiness sets the exit code: "
                                                           "embedded, verl-cpu (verl's CPU mode) or verl (vLLM on GPUs).")] = "embedded",
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of tables.")] = False,
) -> None:
    """Check this machine: Python, torch/CUDA, GPUs, driver, vLLM, flash-attn, verl and its pins, HF cache, Ray, tracking."""
    from orchestrator import doctor as checks  # deferred: asym --help

    needs = checks.backend_needs()
    if backend not in needs:
        raise ValueError(f"unknown --backend '{backend}'; known: {', '.join(needs)}")
    results = checks.run_checks()
    reasons = checks.verdicts(results, needs)
    if as_json:
        typer.echo(json.dumps(checks.as_json(results, reasons, backend), indent=2))
    else:
        _print_tables(results, reasons)
    if reasons[backend]:
        raise typer.Exit(1)


def _print_tables(results, reasons) -> None:
    console = Console()
    table = Table(title="asym doctor")
    for column in ("check", "ok", "detail"):
        table.add_column(column, overflow="fold")
    for check in results:
        table.add_row(check.name, "[green]yes[/]" if check.ok else "[red]no[/]", escape(check.detail))
    console.print(table)
    verdict = Table(title="can run here")
    for column in ("backend", "can run", "why not"):
        verdict.add_column(column, overflow="fold")
    for mode, why in reasons.items():
        verdict.add_row(mode, "[green]yes[/]" if not why else "[red]no[/]", escape("; ".join(why)))
    console.print(verdict)


def register(app: typer.Typer) -> None:
    app.command("doctor")(doctor)
