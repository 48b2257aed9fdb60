"""`asym study ...` (placeholder: filled in by its issue)."""

import typer

app = typer.Typer(help="study commands", no_args_is_help=True)
