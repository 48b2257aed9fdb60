"""`asym cluster up|down FILE`: Ray's own cluster launcher (`ray up` / `ray down`), after our checks.

The file is checked first (cluster.schema): a bad field is one line and nothing starts. `ray` runs
from the repository root so that a `file_mounts` entry `~/asym: .` copies this checkout to the nodes.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from cluster.head import REPO_ROOT, ray_executable
from cluster.schema import ClusterFile, load_cluster_file
from common.errors import UserError


def check_before_start(path: str | Path) -> ClusterFile:
    """Everything that can be checked on this machine before `ray up` touches a node."""
    cluster = load_cluster_file(path)
    key = cluster.typed.auth.ssh_private_key
    if key and not Path(os.path.expanduser(key)).is_file():
        raise UserError(f"{cluster.path}: auth.ssh_private_key: no key file at {key}")
    return cluster


def launcher_command(action: str, cluster: ClusterFile) -> list[str]:
    """The `ray up|down -y FILE` command line (absolute path: it runs from the repository root)."""
    if action not in ("up", "down"):
        raise ValueError(f"unknown launcher action {action!r}")
    return [ray_executable(), action, "-y", str(cluster.path.resolve())]


def up(path: str | Path) -> None:
    _run(launcher_command("up", check_before_start(path)))


def down(path: str | Path) -> None:
    _run(launcher_command("down", load_cluster_file(path)))


def _run(command: list[str]) -> None:
    result = subprocess.run(command, cwd=REPO_ROOT)  # Ray's own progress output goes to the terminal
    if result.returncode != 0:
        raise UserError(f"`ray {command[1]}` failed with exit code {result.returncode} (its output is above)")
