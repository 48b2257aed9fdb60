"""`asym sweep logs|stop JOB`: follow or stop a sweep submitted to a cluster as a Ray Job;
`asym sweep status NAME`: a sweep's trials and its GPU-/CPU-hour ledger, running or finished."""

from __future__ import annotations

import datetime
import sys
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

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

        from cluster.head import dashboard_url  # deferred: omegaconf
        from cluster.jobs import print_logs  # deferred: omegaconf

        code = print_logs(dashboard_url(cluster, address), job, follow=follow)
        if code:
            sys.exit(code)  # a failed or stopped sweep: non-zero, so scripts can tell

    @sweep_app.command("status")
    def status(
        name: Annotated[str, typer.Argument(help="The sweep's name (`--name`, or the study's).")],
        storage: Annotated[Optional[str], typer.Option("--storage", help="The sweep's shared folder (`asym sweep --storage`): its default store is there.")] = None,
    ) -> None:
        """Trials per configuration, GPU-/CPU-hours used and projected, and the estimated finish (from MLflow)."""
        from analysis.cost import cost_by_configuration, estimated_finish, trial_costs  # deferred: pandas
        from experiments.tracking_names import storage_tracking_uri  # deferred: asym --help

        trials = trial_costs(name, storage_tracking_uri(storage))
        table = Table(title=f"sweep {name} ({trials.attrs.get('status', '?').lower()}): "
                            f"{len(trials)} of {trials.attrs.get('planned', len(trials))} trials started")
        for column in ("configuration", "trials", "finished", "GPU-h used", "GPU-h projected", "CPU-h used", "CPU-h projected"):
            table.add_column(column, justify="left" if column == "configuration" else "right")
        summary = cost_by_configuration(trials)
        for row in summary.itertuples(index=False):
            table.add_row(row.label, str(row.trials), str(row.finished), f"{row.gpu_hours:.4f}",
                          f"{row.projected_gpu_hours:.4f}", f"{row.cpu_hours:.4f}", f"{row.projected_cpu_hours:.4f}")
        table.add_row("total", str(int(summary["trials"].sum())), str(int(summary["finished"].sum())),
                      f"{summary['gpu_hours'].sum():.4f}", f"{summary['projected_gpu_hours'].sum():.4f}",
                      f"{summary['cpu_hours'].sum():.4f}", f"{summary['projected_cpu_hours'].sum():.4f}", style="bold")
        console = Console(width=140)
        console.print(table)
        finish = estimated_finish(trials)
        if finish is not None:
            console.print(f"estimated finish: {datetime.datetime.fromtimestamp(finish).strftime('%Y-%m-%d %H:%M:%S')}")

    @sweep_app.command("stop")
    def stop(job: JobArg, cluster: ClusterOpt = None, address: AddressOpt = None) -> None:
        """Stop a submitted sweep (its trials stop with it; finished trials stay in MLflow)."""
        from cluster.head import dashboard_url  # deferred: omegaconf
        from cluster.jobs import stop_job  # deferred: omegaconf

        print(stop_job(dashboard_url(cluster, address), job))
