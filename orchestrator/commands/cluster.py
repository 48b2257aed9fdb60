"""`asym cluster up|down|status`: Ray's cluster launcher behind our cluster-file checks, and a status view."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

app = typer.Typer(help="Start, stop and inspect Ray clusters described by cluster/*.yaml.", no_args_is_help=True)

FileArg = Annotated[str, typer.Argument(help="A Ray cluster-launcher YAML, e.g. cluster/onprem.yaml.")]


@app.command()
def up(file: FileArg) -> None:
    """Check the cluster file, then start (or update) the cluster with `ray up`."""
    from cluster.launcher import up as launch  # deferred: omegaconf

    launch(file)


@app.command()
def down(file: FileArg) -> None:
    """Check the cluster file, then tear the cluster down with `ray down`."""
    from cluster.launcher import down as teardown  # deferred: omegaconf

    teardown(file)


@app.command()
def status(
    file: Annotated[Optional[str], typer.Argument(help="The cluster file (or give --address).")] = None,
    address: Annotated[Optional[str], typer.Option(help="A running head's dashboard, e.g. http://10.0.0.10:8265.")] = None,
) -> None:
    """Show the cluster's nodes, GPUs and the sweeps submitted to it."""
    from cluster.head import dashboard_url  # deferred: omegaconf
    from cluster.status import render, snapshot  # deferred: omegaconf

    render(snapshot(dashboard_url(file, address)))
