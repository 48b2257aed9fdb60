"""A local ``mlflow server`` over the sqlite store, for the length of a sweep (and for ``asym ui``).

Concurrent trial processes writing one sqlite file directly would contend for its lock; instead
the driver starts ``mlflow server`` on 127.0.0.1 (a free port) backed by the store, and every trial
logs over HTTP. The server runs in its own process group so stopping it stops its workers too.

Faults it survives:
- the server dies mid-sweep: ``supervise`` restarts it on the same port (trials only see a short
  outage, which their buffered logging rides out);
- the driver is SIGKILLed: its server stays up, but the pid file it left in ``.asym/run/``
  (server pid, driver pid, store) lets the next asym command on the store ``reap_orphans``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from experiments import tracking_names as names
from common.net import LOOPBACK, free_port
from orchestrator.tracking import prepare_store, server_is_up



def store_paths(workdir: Path | None = None, storage: str | Path | None = None) -> tuple[str, str]:
    """(backend store URI, artifact root URI) of the local store under ./.asym/mlflow (or STORAGE/mlflow)."""
    root = names.local_store_dir(workdir, storage).resolve()
    return f"sqlite:///{root / 'mlflow.db'}", (root / "artifacts").as_uri()


def run_dir(workdir: Path | None = None) -> Path:
    """Where live servers leave their pid files: ./.asym/run."""
    return names.local_store_dir(workdir).parent / "run"


def server_command(store_uri: str, artifact_root: str, port: int, host: str = LOOPBACK) -> list[str]:
    mlflow_cli = Path(sys.executable).with_name("mlflow")
    head = [str(mlflow_cli)] if mlflow_cli.exists() else [sys.executable, "-m", "mlflow"]
    return head + ["server", "--backend-store-uri", store_uri, "--default-artifact-root", artifact_root,
                   "--no-serve-artifacts", "--host", host, "--port", str(port), "--workers", "1"]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie is not alive
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _kill_server_group(pid: int, store_uri: str) -> bool:
    """SIGKILL the process group of ``pid`` if it still is an mlflow server on ``store_uri``."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return False
    if "mlflow" not in cmdline or store_uri not in cmdline:
        return False  # the pid was reused by something else
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        return False
    return True


def reap_orphans(directory: Path | None = None) -> list[int]:
    """Stop servers whose driver is gone (SIGKILLed, OOM-killed); returns their pids.

    A pid file whose driver is alive belongs to a running sweep (or `asym ui`) and is left alone.
    """
    directory = directory or run_dir()
    reaped = []
    for pid_file in sorted(directory.glob("mlflow-server-*.json")) if directory.exists() else []:
        try:
            info = json.loads(pid_file.read_text())
            server, driver, store = int(info["server_pid"]), int(info["driver_pid"]), str(info["store"])
        except (OSError, ValueError, KeyError, TypeError):
            pid_file.unlink(missing_ok=True)
            continue
        if driver != os.getpid() and _alive(driver):
            continue
        if _kill_server_group(server, store):
            reaped.append(server)
        pid_file.unlink(missing_ok=True)
    return reaped


@dataclass
class LocalServer:
    """A running ``mlflow server`` child process (restarted on the same port by ``supervise``)."""

    process: subprocess.Popen
    uri: str
    log_path: Path
    store_uri: str
    artifact_root: str
    port: int
    host: str = LOOPBACK
    pid_dir: Path | None = None
    restarts: int = 0
    _stopping: threading.Event = field(default_factory=threading.Event, repr=False)
    _watcher: threading.Thread | None = field(default=None, repr=False)

    @classmethod
    def start(cls, store_uri: str, artifact_root: str, log_path: Path, port: int | None = None,
              host: str = LOOPBACK, pid_dir: Path | None = None) -> "LocalServer":
        """Start the server (returns at once; call ``wait_ready``). The store is created first,
        under its lock, so two servers on a fresh store never race its migrations."""
        if store_uri.startswith("sqlite:"):
            prepare_store(store_uri, artifact_root)
        port = port or free_port()
        client_host = LOOPBACK if host in ("0.0.0.0", "::") else host
        server = cls(process=None, uri=f"http://{client_host}:{port}", log_path=log_path,  # type: ignore[arg-type]
                     store_uri=store_uri, artifact_root=artifact_root, port=port, host=host,
                     pid_dir=pid_dir or log_path.parent)
        server._spawn()
        return server

    def _spawn(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            # No job runner: it forks half a dozen worker processes that a tracking store never uses.
            env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
            self.process = subprocess.Popen(server_command(self.store_uri, self.artifact_root, self.port, self.host),
                                            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                            start_new_session=True, env=env)
        self.pid_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.pid_file.with_suffix(".tmp")
        tmp.write_text(json.dumps({"server_pid": self.process.pid, "driver_pid": os.getpid(),
                                   "store": self.store_uri, "port": self.port}))
        os.replace(tmp, self.pid_file)

    @property
    def pid_file(self) -> Path:
        return self.pid_dir / f"mlflow-server-{self.port}.json"

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

    def supervise(self, on_restart: Callable[[int], None] | None = None, poll_s: float = 0.5) -> None:
        """Restart the server on the same port whenever it exits until ``stop`` (a daemon thread)."""
        def watch() -> None:
            while not self._stopping.wait(poll_s):
                if self.process.poll() is None:
                    continue
                _kill_group(self.process.pid)  # its workers, if the parent alone died
                time.sleep(0.5)  # let the port be released
                if self._stopping.is_set():
                    return
                self.restarts += 1
                self._spawn()
                if on_restart is not None:
                    on_restart(self.restarts)

        self._watcher = threading.Thread(target=watch, name="asym-mlflow-supervisor", daemon=True)
        self._watcher.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop the server and its workers (its whole process group), and remove its pid file."""
        self._stopping.set()
        if self._watcher is not None:
            self._watcher.join(timeout=5)
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                break
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                continue
            time.sleep(0.2)  # let the workers see their parent go, then make sure they are gone
        try:
            self.process.wait(timeout=1)
        except subprocess.TimeoutExpired:
            pass
        self.pid_file.unlink(missing_ok=True)


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
