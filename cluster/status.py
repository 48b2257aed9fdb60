"""`asym cluster status`: the nodes, their GPUs and the sweeps running on a cluster, as Rich tables.

Everything is read from the head's dashboard (Ray's state and job APIs over HTTP, with Ray's
token header when token authentication is on), so it works from any machine that reaches it.
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections import defaultdict
from dataclasses import dataclass

from rich.console import Console
from rich.table import Table

from cluster.submit import METADATA_ARGV, METADATA_KIND, connect
from common.errors import UserError


@dataclass(frozen=True)
class NodeRow:
    node_id: str
    ip: str
    is_head: bool
    state: str
    cpus: float
    gpus: float
    gpus_in_use: float


@dataclass(frozen=True)
class SweepRow:
    job_id: str
    status: str
    argv: str
    started: str


@dataclass(frozen=True)
class ClusterSnapshot:
    head: str
    nodes: list[NodeRow]
    sweeps: list[SweepRow]
    gpus_in_use: float  # the cluster's own count (the autoscaler's load report)
    gpus_total: float


def snapshot(head: str, include_dead: bool = False) -> ClusterSnapshot:
    """Read nodes, GPU use and asym sweeps (Ray jobs submitted by `asym sweep --cluster`) from the head."""
    from ray.util.state import list_actors, list_nodes  # deferred: ray

    try:
        nodes = list_nodes(address=head, detail=True, limit=10_000, raise_on_missing_output=False)
        actors = list_actors(address=head, filters=[("state", "=", "ALIVE")], detail=True, limit=10_000,
                             raise_on_missing_output=False)
    except Exception as exc:  # noqa: BLE001 - unreachable head, auth, version mismatch
        text = str(exc).strip().splitlines()
        raise UserError(f"cannot read the cluster at {head}: {text[0] if text else type(exc).__name__}") from None
    held = defaultdict(float)
    for actor in actors:
        resources = getattr(actor, "required_resources", None) or {}
        held[actor.node_id] += float(resources.get("GPU", 0.0))
    rows = [
        NodeRow(
            node_id=node.node_id, ip=node.node_ip, is_head=bool(node.is_head_node), state=node.state,
            cpus=float(node.resources_total.get("CPU", 0.0)), gpus=float(node.resources_total.get("GPU", 0.0)),
            gpus_in_use=held.get(node.node_id, 0.0),
        )
        for node in nodes
        if include_dead or node.state == "ALIVE"
    ]
    rows.sort(key=lambda r: (not r.is_head, r.ip, r.node_id))
    used, total = _cluster_gpu_usage(head)
    return ClusterSnapshot(head=head, nodes=rows, sweeps=_sweeps(head), gpus_in_use=used, gpus_total=total)


def _sweeps(head: str) -> list[SweepRow]:
    client = connect(head)
    rows = []
    for job in client.list_jobs():
        metadata = job.metadata or {}
        if metadata.get(METADATA_KIND) != "sweep":
            continue
        started = time.strftime("%Y-%m-%d %H:%M", time.localtime(job.start_time / 1000)) if job.start_time else ""
        rows.append(SweepRow(job_id=job.submission_id or job.job_id or "?", status=str(job.status.value),
                             argv=metadata.get(METADATA_ARGV, ""), started=started))
    rows.sort(key=lambda r: r.started, reverse=True)
    return rows


def _cluster_gpu_usage(head: str) -> tuple[float, float]:
    """(GPUs in use, GPUs in total) from the dashboard's cluster status (the autoscaler's view)."""
    from ray._private.authentication.http_token_authentication import get_auth_headers_if_auth_enabled  # deferred: ray

    request = urllib.request.Request(head.rstrip("/") + "/api/cluster_status", headers=get_auth_headers_if_auth_enabled({}))
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            data = json.loads(response.read())
        usage = data["data"]["clusterStatus"]["loadMetricsReport"]["usage"]
    except (OSError, ValueError, KeyError, TypeError):
        return float("nan"), float("nan")
    used, total = usage.get("GPU", [0.0, 0.0])
    return float(used), float(total)


def render(snap: ClusterSnapshot) -> None:
    """Print the snapshot as two Rich tables."""

    console = Console()
    nodes = Table(title=f"Ray cluster at {snap.head}: {len(snap.nodes)} node(s), "
                        f"GPUs in use {_num(snap.gpus_in_use)}/{_num(snap.gpus_total)}")
    for column in ("node", "ip", "role", "state", "CPUs", "GPUs", "GPUs held by actors"):
        nodes.add_column(column, justify="right" if column in ("CPUs", "GPUs", "GPUs held by actors") else "left")
    for row in snap.nodes:
        nodes.add_row(row.node_id[:12], row.ip, "head" if row.is_head else "worker", row.state,
                      _num(row.cpus), _num(row.gpus), _num(row.gpus_in_use))
    console.print(nodes)
    sweeps = Table(title=f"Sweeps ({len(snap.sweeps)})")
    for column in ("job", "status", "started", "asym sweep ..."):
        sweeps.add_column(column)
    for row in snap.sweeps:
        sweeps.add_row(row.job_id, row.status, row.started, row.argv)
    console.print(sweeps)


def _num(value: float) -> str:
    if value != value:  # NaN: not reported
        return "?"
    return str(int(value)) if float(value).is_integer() else f"{value:g}"
