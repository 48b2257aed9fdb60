"""A local ``mlflow server`` over the sqlite store, for the length of a sweep (and for ``asym ui``).

Concurrent trial processes writing one sqlite file directly would contend for its lock; instead
the driver starts ``mlflow server`` on 127.0.0.1 (a free port) backed by the store, and every trial
logs over HTTP. The server runs in its own process group so stopping it stops its workers too.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from experiments import tracking_names as names
from orchestrator.tracking import server_is_up


def store_paths(workdir: Path | None = None) -> tuple[str, str]:
    """(backend store URI, artifact root URI) of the local store under ./.asym/mlflow."""
    root = names.local_store_dir(workdir).resolve()
    return f"sqlite:///{root / 'mlflow.db'}", (root / "artifacts").as_uri()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_command(store_uri: str, artifact_root: str, port: int) -> list[str]:
    mlflow_cli = Path(sys.executable).with_name("mlflow")
    head = [str(mlflow_cli)] if mlflow_cli.exists() else [sys.executable, "-m", "mlflow"]
    return head + ["server", "--backend-store-uri", store_uri, "--default-artifact-root", artifact_root,
                   "--no-serve-artifacts", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]


def stop_stale(pid_file: Path, store_uri: str) -> None:
    """Stop a server a killed driver left running on this store (found by its pid file and command line)."""
    try:
        pid = int(pid_file.read_text())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except (OSError, ValueError):
        return
    if "mlflow" in cmdline and store_uri in cmdline:
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


@dataclass
class LocalServer:
    """A running ``mlflow server`` child process."""

    process: subprocess.Popen
    uri: str
    log_path: Path

    @classmethod
    def start(cls, store_uri: str, artifact_root: str, log_path: Path, port: int | None = None) -> "LocalServer":
        """Start the server (returns at once; call ``wait_ready``)."""
        port = port or free_port()
        log_path.parent.mkdir(parents=True, exist_ok=True)
        stop_stale(log_path.with_suffix(".pid"), store_uri)
        log = open(log_path, "ab")
        # No job runner: it forks half a dozen worker processes that a tracking store never uses.
        env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
        process = subprocess.Popen(server_command(store_uri, artifact_root, port), stdout=log, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True, env=env)
        log.close()
        log_path.with_suffix(".pid").write_text(f"{process.pid}\n")  # its process group, for cleanup by hand
        return cls(process=process, uri=f"http://127.0.0.1:{port}", log_path=log_path)

    def wait_ready(self, timeout_s: float = 90.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"mlflow server exited with code {self.process.returncode}; see {self.log_path}")
            if server_is_up(self.uri, timeout=1.0):
                return
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"mlflow server did not answer within {timeout_s:.0f} s; see {self.log_path}")

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop the server and its workers (its whole process group)."""
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                return
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                continue
            time.sleep(0.2)  # let the workers see their parent go, then make sure they are gone
