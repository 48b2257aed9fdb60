"""`asym estimators ...` (placeholder: filled in by its issue)."""

import typer

app = typer.Typer(help="estimators commands", no_args_is_help=True)
