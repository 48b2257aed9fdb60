"""`asym cluster ...` (placeholder: filled in by its issue)."""

import typer

app = typer.Typer(help="cluster commands", no_args_is_help=True)
