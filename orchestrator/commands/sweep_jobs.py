"""`asym sweep logs|stop JOB`: follow or stop a sweep submitted to a cluster as a Ray Job."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

JobArg = Annotated[str, typer.Argument(help="The job id `asym sweep ... --cluster` printed.")]
ClusterOpt = Annotated[Optional[str], typer.Option("--cluster", help="The cluster file the sweep went to.")]
AddressOpt = Annotated[Optional[str], typer.Option("--address", help="The head's dashboard, e.g. http://10.0.0.10:8265.")]


def register(sweep_app: typer.Typer) -> None:
    """Add the job commands to the `sweep` group."""

    @sweep_app.command("logs")
    def logs(
        job: JobArg,
        cluster: ClusterOpt = None,
        address: AddressOpt = None,
        follow: Annotated[bool, typer.Option("--follow", "-f", help="Stream new lines until the sweep ends.")] = False,
    ) -> None:
        """Print a submitted sweep's driver log (the `asym sweep` output on the head); exit 1 if it failed or was stopped."""
        import sys

        from cluster.head import dashboard_url
        from cluster.jobs import print_logs

        code = print_logs(dashboard_url(cluster, address), job, follow=follow)
        if code:
            sys.exit(code)  # a failed or stopped sweep: non-zero, so scripts can tell

    @sweep_app.command("stop")
    def stop(job: JobArg, cluster: ClusterOpt = None, address: AddressOpt = None) -> None:
        """Stop a submitted sweep (its trials stop with it; finished trials stay in MLflow)."""
        from cluster.head import dashboard_url
        from cluster.jobs import stop_job

        print(stop_job(dashboard_url(cluster, address), job))
