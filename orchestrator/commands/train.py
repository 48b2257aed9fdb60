"""`asym train` (placeholder: filled in by its issue)."""

import typer


def register(app: typer.Typer) -> None:
    """Add the command to the root app."""
