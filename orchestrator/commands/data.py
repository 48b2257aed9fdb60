"""`asym data ...` (placeholder: filled in by its issue)."""

import typer

app = typer.Typer(help="data commands", no_args_is_help=True)
