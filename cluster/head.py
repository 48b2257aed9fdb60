"""Where a cluster's head answers: its dashboard URL, from `--address` or from a cluster file.

Job submission, job logs and `asym cluster status` all talk to the head's dashboard over HTTP
(Ray's job and state APIs). On-prem, the cluster file names the head (`provider.head_ip`); on a
cloud, Ray knows it (`ray get-head-ip FILE`). The port is the one the head's `ray start` command
gives with `--dashboard-port` (Ray's default 8265).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse

from cluster.schema import DEFAULT_DASHBOARD_PORT, load_cluster_file
from common.errors import UserError

REPO_ROOT = Path(__file__).resolve().parents[1]


def ray_executable() -> str:
    """The `ray` command of this interpreter's environment (the one `asym` runs in)."""
    beside = Path(sys.executable).parent / "ray"
    if beside.exists():
        return str(beside)
    found = shutil.which("ray")
    if found is None:
        raise UserError("the `ray` command is not installed here: pip install 'ray[default]'")
    return found


def normalize_address(address: str) -> str:
    """`http://host:port`, `host:port` or `host` (port 8265) -> the dashboard URL."""
    address = address.strip().rstrip("/")
    if not address:
        raise UserError("--address is empty: give the head's dashboard, e.g. http://10.0.0.10:8265")
    if address.startswith("ray://"):
        raise UserError(f"--address {address}: give the head's dashboard address (http://HEAD:8265), not a Ray Client one")
    if "://" not in address:
        address = "http://" + address
    parsed = urlparse(address)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise UserError(f"--address {address}: expected http://HEAD:PORT")
    try:
        port = parsed.port
    except ValueError:
        raise UserError(f"--address {address}: the port is not a number") from None
    if port is None:
        address = f"{parsed.scheme}://{parsed.hostname}:{DEFAULT_DASHBOARD_PORT}{parsed.path}"
    return address


def dashboard_url(cluster_file: str | None, address: str | None) -> str:
    """The head's dashboard URL: `address` when given, else read from / asked about `cluster_file`."""
    if address:
        return normalize_address(address)
    if not cluster_file:
        raise UserError("say which cluster: --cluster FILE (a Ray cluster YAML) or --address http://HEAD:8265")
    cluster = load_cluster_file(cluster_file)
    host = cluster.head_ip if cluster.provider == "local" else _ask_ray_for_head_ip(cluster.path)
    return f"http://{host}:{cluster.dashboard_port}"


def _ask_ray_for_head_ip(path: Path) -> str:
    try:
        result = subprocess.run(
            [ray_executable(), "get-head-ip", str(path.resolve())],
            capture_output=True, text=True, timeout=120, cwd=REPO_ROOT,
        )
    except subprocess.TimeoutExpired:
        raise UserError(f"`ray get-head-ip {path}` did not answer in 120 s: is the cluster up?") from None
    lines = [line.strip() for line in result.stdout.splitlines() if line.strip()]
    if result.returncode != 0 or not lines:
        raise UserError(f"cannot find the head of {path}: run `asym cluster up {path}` first (ray get-head-ip failed)")
    return lines[-1]
