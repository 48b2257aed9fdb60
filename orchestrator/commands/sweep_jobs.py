"""`asym sweep logs|stop JOB`: follow or stop a sweep submitted to a cluster (placeholder)."""

import typer


def register(sweep_app: typer.Typer) -> None:
    """Add the job commands to the `sweep` group."""
