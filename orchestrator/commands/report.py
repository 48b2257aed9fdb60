"""`asym report ...` (placeholder: filled in by its issue)."""

import typer

app = typer.Typer(help="report commands", no_args_is_help=True)
