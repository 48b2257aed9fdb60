"""`asym study list` and `asym study show NAME|FILE`: the declared studies (the paper's, or a study file) and what they plan."""

from __future__ import annotations

import json
from typing import Annotated, List, Optional

import typer
from rich.console import Console

from orchestrator.commands.choices import BackendName

app = typer.Typer(help="The paper's declared studies: list them, show one with its sources and trials.",
                  no_args_is_help=True)


@app.command("list")
def list_studies(
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list instead of a table.")] = False,
) -> None:
    """List the declared studies: name, title, number of methods, default models."""
    from experiments.describe import studies_overview, studies_table  # deferred: omegaconf

    rows = studies_overview()
    if as_json:

        typer.echo(json.dumps(rows, indent=2))
        return

    Console().print(studies_table(rows))


@app.command("show")
def show_study(
    name: Annotated[str, typer.Argument(help="A study name (see `asym study list`) or a study file (.yaml).")],
    backend: Annotated[BackendName, typer.Option(help="Plan the trials for this backend.")] = BackendName.embedded,
    sets: Annotated[Optional[List[str]], typer.Option("--set", help="Add an axis: key=v1,v2 (as on `asym sweep`).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON (methods, sources, trials) instead of tables.")] = False,
) -> None:
    """Show a study's methods with their values and sources, its axes, and its trials for one seed."""
    from experiments.describe import describe_study, method_sources, methods_table  # deferred: omegaconf
    from experiments.parse import parse_set  # deferred: asym --help
    from experiments.plan_print import trials_table  # deferred: asym --help

    study = name
    if name.endswith((".yaml", ".yml")) or "/" in name:
        from experiments.study_file import load_study_file  # deferred: omegaconf

        study = load_study_file(name)
    desc, trials = describe_study(study, backend.value, axes=tuple(parse_set(text) for text in sets or ()))
    if as_json:

        typer.echo(json.dumps(desc, indent=2))
        return

    console = Console()
    console.print(f"{desc['title']} ({desc['name']}): {desc['description']}", markup=False, highlight=False)
    console.print(methods_table(desc))
    console.print("Sources (shared/paper/spec.md tags; [NF] = not in the paper, our default; file:line):", markup=False)
    for line in method_sources(desc):
        console.print(f"  {line}", markup=False, highlight=False)
    command = f"asym sweep run {name}" if desc["origin"] else f"asym sweep {desc['name']}"
    console.print(trials_table(trials, title=f"Trials on {desc['backend']} for seed {desc['seeds'][0]} "
                                             f"(`{command} --backend {desc['backend']} --dry-run`)"))
