"""Logs and stop for a sweep running as a Ray Job on a cluster's head."""

from __future__ import annotations

import asyncio
import sys

from cluster.submit import connect
from common.errors import UserError

_FAILED = {"FAILED", "STOPPED"}


def _status(client, job: str) -> str:
    try:
        return str(client.get_job_status(job).value)
    except Exception as exc:  # noqa: BLE001 - RuntimeError "job does not exist" and HTTP errors
        raise UserError(f"no sweep job {job!r} on this cluster (see `asym cluster status`)") from exc


def print_logs(head: str, job: str, follow: bool = False) -> int:
    """Write the job's log to stdout; return 0, or 1 when the sweep failed or was stopped."""
    client = connect(head)
    status = _status(client, job)
    if follow:
        asyncio.run(_follow(client, job))
        status = _status(client, job)
    else:
        sys.stdout.write(client.get_job_logs(job))
    sys.stdout.flush()
    print(f"[{job}: {status}]", file=sys.stderr)
    return 1 if status in _FAILED else 0


async def _follow(client, job: str) -> None:
    async for chunk in client.tail_job_logs(job):
        sys.stdout.write(chunk)
        sys.stdout.flush()


def stop_job(head: str, job: str) -> str:
    """Ask Ray to stop the job; return a one-line summary."""
    client = connect(head)
    status = _status(client, job)
    if status in ("SUCCEEDED", "FAILED", "STOPPED"):
        return f"{job} already {status.lower()}"
    client.stop_job(job)
    return f"{job}: stop requested (was {status.lower()})"
