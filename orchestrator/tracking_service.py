"""Where a sweep's trials log: the user's MLflow server, or a local ``mlflow server`` over the sqlite store."""

from __future__ import annotations

import os
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from experiments.tracking_names import asym_root
from common.net import free_port
from orchestrator import tracking
from orchestrator.mlflow_server import LocalServer, prepare_store, reap_orphans, run_dir, store_paths

class TrackingService:
    """Where trials log, and a client the driver can use before any server answers.

    $MLFLOW_TRACKING_URI over http is used as is (checked before: ``preflight``). A sqlite store (the
    default ./.asym/mlflow one, or a sqlite URI given) is served by a local ``mlflow server`` for the
    sweep's length, so concurrent trials never write the sqlite file themselves. The server's boot
    (seconds) is off the critical path: the driver reads and writes the store directly (reuse
    lookup, parent run, links) while it boots and while Ray starts, and trials, which retry their
    first call, reach it later. On a fresh store the driver creates the schema first and starts the
    server after it, so the two never migrate one file at once.
    """

    def __init__(self, workdir: Path | None = None, console=None, storage: str | None = None):
        reap_orphans(run_dir(workdir))  # servers of drivers killed earlier on this store
        self.workdir = workdir
        self.console = console
        self.server = None
        given = os.environ.get("MLFLOW_TRACKING_URI")
        self.http = given if given and not given.startswith("sqlite:") else None
        self.store_uri, self.artifact_root = store_paths(workdir, storage)
        if given and not self.http:
            self.store_uri = given
        self.port = free_port()
        self.uri = self.http or f"http://127.0.0.1:{self.port}"
        self._early = None
        self._thread = None
        self._error: BaseException | None = None

    @property
    def _db(self) -> Path:
        return Path(self.store_uri.removeprefix("sqlite:///"))

    @property
    def fresh(self) -> bool:
        """A local store with no database yet (nothing in it to reuse)."""
        return self.http is None and not self._db.exists()

    def start(self) -> "TrackingService":
        """Boot the server now when the store exists; on a fresh store, create the schema and then
        boot the server in a thread (while the driver starts Ray)."""
        if self.http is None and self._db.exists():
            self._start_server()
        elif self.http is None:
            self._thread = threading.Thread(target=self._make_store, name="asym-store", daemon=True)
            self._thread.start()
        return self

    def _make_store(self) -> None:
        try:
            self._db.parent.mkdir(parents=True, exist_ok=True)
            prepare_store(self.store_uri, self.artifact_root)  # the schema, under the store's lock
            client = tracking.make_client(self.store_uri)
            self._early = client
            self._start_server()
        except BaseException as exc:  # re-raised by early_client, in the driver's thread
            self._error = exc

    def _start_server(self) -> None:
        self.server = LocalServer.start(self.store_uri, self.artifact_root,
                                        asym_root(self.workdir) / "logs" / "mlflow-server.log", port=self.port,
                                        pid_dir=run_dir(self.workdir))
        if self.console is not None:
            console = self.console
            self.server.supervise(lambda n: console.print(
                f"[sweep] the local mlflow server died; restarted it on the same port ({n} restart(s))",
                highlight=False, markup=False))

    def early_client(self):
        """A client for the driver's work before Tune starts: the store itself, or the given server."""
        if self._thread is not None:
            self._thread.join()
            self._thread = None
            if self._error is not None:
                raise self._error
        if self._early is None:
            if self.http:
                self._early = tracking.make_client(self.http)
            else:
                self._db.parent.mkdir(parents=True, exist_ok=True)
                prepare_store(self.store_uri, self.artifact_root)  # the schema, under the store's lock
                self._early = tracking.make_client(self.store_uri)
                if self.server is None:
                    self._start_server()
        return self._early

    def client(self):
        """A client over the server, for the driver once trials are running (waits for it)."""
        if self.server is not None:
            self.server.wait_ready()
        return tracking.make_client(self.uri)

    def stop(self) -> None:
        if self._thread is not None:
            self._thread.join()
        if self.server is not None:
            self.server.stop()


@contextmanager
def tracking_service(workdir: Path | None = None, console=None, storage: str | None = None) -> Iterator[TrackingService]:
    service = TrackingService(workdir, console, storage).start()
    try:
        yield service
    finally:
        service.stop()


def preflight() -> None:
    """Checks that must fail before anything is written (one-line errors)."""
    given = os.environ.get("MLFLOW_TRACKING_URI")
    if given:
        tracking.check_tracking_uri(given)
