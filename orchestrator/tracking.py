"""MLflow tracking for sweeps and trials: run identity, and batched logging that survives an outage.

The layout is ``experiments.tracking_names`` (the analysis layer reads it):

- ``open_sweep_run``: the sweep's parent run, found again by its tags on a resume.
- ``TrialRun.open``: a trial's child run, found again by (sweep, trial key) so a retried or resumed
  trial continues its run; it knows the last step logged for every metric and drops steps at or
  before it, so a trial that re-runs steps after a crash never duplicates them.
- ``MetricBuffer``: metrics are buffered and sent with ``MlflowClient.log_batch`` every few seconds.
  A failed send keeps the buffer and retries later with exponential backoff, without blocking the
  training loop; ``flush(block=True)`` (at checkpoints and at the end) retries until a deadline and
  then raises ``TrackingError``, so a trial fails loudly rather than lose metrics.
- ``SweepNote``: keeps the parent run's description (``mlflow.note.content``) current: the
  command, the study, every trial with its status, read back from MLflow every few seconds.
- ``prepare_store``: a sqlite store is created (and migrated) under a file lock, so two processes
  using a fresh store at once never race MLflow's migrations.
- ``redact``: a URI with its user:password removed, for everything asym prints or stores.
"""

from __future__ import annotations

import fcntl
import json
import math
import os
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

from experiments import tracking_names as names
from common.errors import UserError, first_line
from common.redact import redact, redact_text

KIND_STANDALONE = "train"  # TAG_KIND of a run made by `asym train` (no sweep, no parent)
MAX_METRICS_PER_BATCH = 900  # MLflow accepts 1000 per log_batch
MAX_PARAMS_PER_BATCH = 100


class TrackingError(RuntimeError):
    """The tracking server stayed unreachable past the retry deadline: metrics would be lost."""


# --- clients and stores ------------------------------------------------------------------------


def make_client(uri: str):
    """An MlflowClient whose HTTP calls fail fast: our own buffer does the retrying, with backoff.

    MLflow's default (7 retries, 120 s timeout) would block a training step for minutes while a
    server restarts; we set the documented env knobs in this process unless the user set them.
    """
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
    # MLflow prints "View run ... at http://..." to stdout for every run it ends over HTTP.
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    from mlflow import MlflowClient

    if uri.startswith("sqlite:"):
        prepare_store(uri)

    return MlflowClient(tracking_uri=uri)


def is_http(uri: str) -> bool:
    return uri.startswith(("http://", "https://"))


def _without_userinfo(uri: str) -> str:
    parts = urllib.parse.urlsplit(uri)
    netloc = (parts.hostname or "") + (f":{parts.port}" if parts.port else "")
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


def server_is_up(uri: str, timeout: float = 2.0) -> bool:
    """True when an MLflow server answers its /health endpoint (unauthenticated, so no userinfo)."""
    try:
        with urllib.request.urlopen(_without_userinfo(uri).rstrip("/") + "/health", timeout=timeout) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


TRACKING_SCHEMES = ("http", "https", "sqlite", "postgresql", "mysql", "mssql", "databricks", "file")


def check_tracking_uri(uri: str) -> None:
    """Refuse a tracking URI asym cannot use, before anything is written (one-line errors): an
    unknown scheme, an http URI without a host or whose server does not answer, a sqlite file in a
    folder that does not exist."""
    parts = urllib.parse.urlsplit(uri)
    shown = redact(uri)
    if parts.scheme not in TRACKING_SCHEMES:
        raise UserError(f"MLFLOW_TRACKING_URI={shown}: unsupported scheme {parts.scheme or '(none)'!r}; use "
                        "http(s)://HOST:PORT of an MLflow server, or sqlite:////path/to/mlflow.db")
    if is_http(uri) and not parts.hostname:
        raise UserError(f"MLFLOW_TRACKING_URI={shown} has no host; use http(s)://HOST:PORT")
    if parts.scheme == "sqlite":
        if not uri.startswith("sqlite:///") or not str(sqlite_path(uri)).strip("/"):
            raise UserError(f"MLFLOW_TRACKING_URI={shown}: a sqlite URI is sqlite:///relative.db or sqlite:////absolute.db")
        if not sqlite_path(uri).parent.is_dir():
            raise UserError(f"MLFLOW_TRACKING_URI={shown}: folder {sqlite_path(uri).parent} does not exist")
    if is_http(uri) and not server_is_up(uri, timeout=3.0):
        raise UserError(f"MLflow tracking server {shown} is not reachable; start it, or unset "
                        "MLFLOW_TRACKING_URI to use the local store under ./.asym/mlflow")


@contextmanager
def store_lock(db_path: Path) -> Iterator[None]:
    """An exclusive lock on ``<db>.lock`` (flock: released by the kernel if its holder dies)."""
    db_path.parent.mkdir(parents=True, exist_ok=True)
    with open(db_path.with_name(db_path.name + ".lock"), "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def sqlite_path(uri: str) -> Path:
    """The file of a ``sqlite:///path`` URI (``sqlite:////abs`` is absolute, ``sqlite:///rel`` relative)."""
    return Path(uri.removeprefix("sqlite:///").split("?", 1)[0])


def prepare_store(uri: str, artifact_root: str | None = None) -> None:
    """Create or migrate a sqlite store once, under a lock: MLflow's own first-use migrations race
    when two processes (two sweeps, a sweep and `asym train`) open a fresh file at once."""
    import logging

    path = sqlite_path(uri)
    with store_lock(path):
        from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

        quiet = [logging.getLogger(n) for n in ("mlflow.store.db.utils", "alembic")]  # "Creating tables..."
        levels = [logger.level for logger in quiet]
        for logger in quiet:
            logger.setLevel(logging.WARNING)
        try:
            SqlAlchemyStore(uri, artifact_root or (path.parent / "artifacts").as_uri())
        finally:
            for logger, level in zip(quiet, levels):
                logger.setLevel(level)


def ensure_experiment(client, artifact_root: str | None = None) -> str:
    """The id of the shared experiment (``tracking_names.experiment_name()``), created if missing,
    tagged as a model-training experiment (MLflow's UI then opens on its runs) with the trials view."""
    from mlflow.exceptions import MlflowException

    name = names.experiment_name()
    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        try:
            experiment_id = client.create_experiment(name, artifact_location=artifact_root)
        except MlflowException:  # created by a concurrent process in between
            experiment = client.get_experiment_by_name(name)
            if experiment is None:
                raise
    if experiment is not None:
        experiment_id, tags = experiment.experiment_id, experiment.tags
    else:
        tags = {}
    for key, value in ui_tags().items():
        if tags.get(key) != value:
            client.set_experiment_tag(experiment_id, key, value)
    return experiment_id


def ui_tags() -> dict[str, str]:
    """The experiment tags that make MLflow's UI a sweep's home: the training-runs page, and a saved
    runs-table view (``?viewStateShareKey=asym-trials``) with every trial as a row and its
    configuration and headline metrics as columns."""
    from common import metric_names as M

    columns = ([f"params.`{p}`" for p in names.VIEW_PARAMS]
               + [f"metrics.`{m}`" for m in (M.EVAL_MEAN_ACCURACY, M.ENTROPY, M.REWARD_MEAN)])
    # Grouped by sweep (MLflow expands groups, but folds child runs under a collapsed parent row),
    # trials only: one row per trial, its configuration and headline metrics as columns.
    view = {"searchFilter": f"tags.`{names.TAG_KIND}` = '{names.KIND_TRIAL}'", "orderByKey": "attributes.start_time",
            "orderByAsc": False, "selectedColumns": ["attributes.`Duration`", *columns],
            "groupBy": {"aggregateFunction": "average", "groupByKeys": [{"mode": "tag", "groupByData": names.TAG_SWEEP}]}}
    return {names.EXPERIMENT_KIND: names.KIND_MODEL_TRAINING,
            names.SHARED_VIEW_PREFIX + names.TRIALS_VIEW: json.dumps(view)}


def trials_view_url(ui_uri: str, experiment_id: str) -> str:
    """The MLflow UI page of the experiment's trials, with their configuration as columns."""
    return f"{_without_userinfo(ui_uri).rstrip('/')}/#/experiments/{experiment_id}/runs?viewStateShareKey={names.TRIALS_VIEW}&workflowType=machine_learning"


def run_display_name(trial) -> str:
    """What a trial is, as its run's name in the runs table: ``AsymGRPO (1, 0.5) s0`` (label and
    seed; the model is a column). Short, as the table cuts names at about 20 characters."""
    return f"{trial.label} s{trial.seed}"


def find_runs(client, experiment_id: str, tags: Mapping[str, str]) -> list:
    """Runs of the experiment carrying every tag in ``tags``, oldest first."""
    clauses = [f"tags.`{key}` = '{value}'" for key, value in tags.items()]
    runs = client.search_runs([experiment_id], filter_string=" and ".join(clauses), max_results=1000,
                              order_by=["attributes.start_time ASC"])
    return list(runs)


def with_retries(call: Callable[[], Any], *, deadline_s: float, what: str) -> Any:
    """Run ``call`` retrying with exponential backoff until ``deadline_s``; TrackingError after."""
    delay, start = 0.25, time.monotonic()
    while True:
        try:
            return call()
        except Exception as exc:  # connection refused, 5xx, "database is locked", ...
            if time.monotonic() - start + delay > deadline_s:
                raise TrackingError(f"could not {what} within {deadline_s:.0f} s: {redact_text(first_line(exc, limit=300))}") from exc
            time.sleep(delay)
            delay = min(delay * 2, 5.0)


# --- the sweep's parent run ----------------------------------------------------------------------


def open_sweep_run(client, experiment_id: str, *, sweep: str, study: str,
                   params: Mapping[str, Any] | None = None) -> str:
    """The sweep's parent run id: found by its tags (resume), else created; set RUNNING."""
    from mlflow.entities import Param

    tags = {names.TAG_KIND: names.KIND_SWEEP, names.TAG_SWEEP: sweep}
    runs = find_runs(client, experiment_id, tags)
    if runs:
        run_id = runs[0].info.run_id
        client.update_run(run_id, status="RUNNING")
        return run_id
    run = client.create_run(experiment_id, run_name=sweep, tags={**tags, names.TAG_STUDY: study})
    items = [Param(k, str(v)) for k, v in (params or {}).items()]
    for chunk in _chunks(items, MAX_PARAMS_PER_BATCH):
        client.log_batch(run.info.run_id, params=chunk)
    return run.info.run_id


def finish_run(client, run_id: str, status: str = "FINISHED", deadline_s: float = 60.0) -> None:
    with_retries(lambda: client.set_terminated(run_id, status), deadline_s=deadline_s,
                 what=f"mark run {run_id} {status}")


class SweepNote:
    """Keeps the sweep's parent-run description current, from a daemon thread of the driver.

    Every ``every_s`` it reads the sweep's child runs back from MLflow (so a resumed sweep, or
    trials retried on other nodes, show as they are) and rewrites ``mlflow.note.content`` when it
    changed: the command, the study, each trial's status. Tracking errors are ignored here (an
    outage only delays the note); ``stop`` writes it a last time.
    """

    def __init__(self, client, experiment_id: str, run_id: str, *, sweep: str, study: str,
                 planned: Sequence[str], every_s: float = 5.0):
        self.client, self.experiment_id, self.run_id = client, experiment_id, run_id
        self.sweep, self.study, self.planned, self.every_s = sweep, study, list(planned), every_s
        self.last_text: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="asym-sweep-note", daemon=True)

    def start(self) -> "SweepNote":
        self.update()
        self._thread.start()
        return self

    def stop(self, status: str | None = None) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=self.every_s + 15)
        self.update(status)

    def _loop(self) -> None:
        while not self._stop.wait(self.every_s):
            self.update()

    def update(self, sweep_status: str | None = None) -> bool:
        try:
            parent = self.client.get_run(self.run_id)
            runs = find_runs(self.client, self.experiment_id, {names.TAG_KIND: names.KIND_TRIAL, names.TAG_SWEEP: self.sweep})
            text = self.text(runs, parent.data.params.get("command"), sweep_status)
            if text != self.last_text:
                self.client.set_tag(self.run_id, names.NOTE, text)
                self.last_text = text
            return True
        except Exception:  # the server is away: the next round (or ``stop``) writes it
            return False

    def text(self, runs: list, command: str | None, sweep_status: str | None = None) -> str:
        from common import metric_names as M

        by_name = {r.data.tags.get(names.TAG_TRIAL): r for r in runs}
        rows, counts = [], {}
        for name in [*self.planned, *sorted(n for n in by_name if n not in self.planned)]:
            run = by_name.get(name)
            status = run.info.status if run is not None else "PENDING"
            counts[status] = counts.get(status, 0) + 1
            acc = run.data.metrics.get(M.EVAL_MEAN_ACCURACY) if run is not None else None
            shown = run.info.run_name if run is not None else name
            rows.append(f"| {shown} | {status} | {'-' if acc is None else f'{acc:.3f}'} |")
        summary = ", ".join(f"{n} {s.lower()}" for s, n in sorted(counts.items()))
        lines = [f"**asym sweep `{self.sweep}`**: study `{self.study}`, {len(rows)} trials ({summary})"
                 + (f"; sweep {sweep_status.lower()}" if sweep_status else "") + ".", ""]
        if command:
            lines += [f"Command: `{command}`", ""]
        lines += [f"Continue it with `asym sweep resume {self.sweep}`; report with `asym report {self.sweep}`.", "",
                  "| trial | status | eval accuracy |", "|---|---|---|", *rows]
        return "\n".join(lines)


# --- batched, retried metric logging -------------------------------------------------------------


class MetricBuffer:
    """Buffers (key, value, step) and sends them in batches; retries with backoff, loses nothing."""

    def __init__(self, client, run_id: str, *, flush_every_s: float = 2.0, deadline_s: float = 120.0,
                 last_steps: Mapping[str, int] | None = None):
        self.client, self.run_id = client, run_id
        self.flush_every_s, self.deadline_s = flush_every_s, deadline_s
        self.last_steps: dict[str, int] = dict(last_steps or {})  # highest step logged (or queued) per key
        self.pending: list = []
        self.failures = 0  # consecutive failed sends
        self._next_attempt = time.monotonic() + flush_every_s

    def add(self, step: int, metrics: Mapping[str, float]) -> int:
        """Queue one step's metrics, dropping keys already logged at this step or later; returns how many were queued."""
        from mlflow.entities import Metric

        now_ms = int(time.time() * 1000)
        queued = 0
        for key, value in metrics.items():
            value = float(value)
            if step <= self.last_steps.get(key, -1) or math.isnan(value):
                continue
            self.pending.append(Metric(key, value, now_ms, int(step)))
            self.last_steps[key] = int(step)
            queued += 1
        return queued

    def maybe_flush(self) -> None:
        """Send if the flush interval (or the backoff after a failure) has passed; never blocks on errors."""
        if self.pending and time.monotonic() >= self._next_attempt:
            self._try_send()

    def flush(self, block: bool = True) -> None:
        """Send everything now; with ``block``, retry until sent or raise TrackingError at the deadline."""
        if not block:
            self._try_send()
            return
        start = time.monotonic()
        while self.pending:
            if self._try_send():
                return
            if time.monotonic() - start > self.deadline_s:
                raise TrackingError(f"MLflow did not accept {len(self.pending)} metrics of run {self.run_id} "
                                    f"within {self.deadline_s:.0f} s ({self.failures} failed attempts)")
            time.sleep(max(0.0, self._next_attempt - time.monotonic()))

    def _try_send(self) -> bool:
        retrying = self.failures > 0
        try:
            while self.pending:
                chunk = self.pending[:MAX_METRICS_PER_BATCH]
                if retrying:  # a send that timed out may have landed: never log a step twice
                    chunk = self._not_yet_logged(chunk)
                if chunk:
                    self.client.log_batch(self.run_id, metrics=chunk)
                del self.pending[:MAX_METRICS_PER_BATCH]
        except Exception:
            self.failures += 1
            self._next_attempt = time.monotonic() + min(0.5 * 2 ** (self.failures - 1), 10.0)
            return False
        self.failures = 0
        self._next_attempt = time.monotonic() + self.flush_every_s
        return True

    def _not_yet_logged(self, chunk: list) -> list:
        logged: dict[str, set[int]] = {}
        for key in {m.key for m in chunk}:
            logged[key] = {m.step for m in self.client.get_metric_history(self.run_id, key)}
        return [m for m in chunk if m.step not in logged[m.key]]


# --- a trial's child run -------------------------------------------------------------------------


@dataclass
class TrialRun:
    """One trial's MLflow run, opened (or re-opened) by its deterministic key."""

    client: Any
    run_id: str
    buffer: MetricBuffer
    status_at_open: str

    @classmethod
    def open(cls, client, experiment_id: str, trial, *, sweep: str | None, parent_run_id: str | None,
             flush_every_s: float = 2.0, deadline_s: float = 120.0) -> "TrialRun":
        """Find the trial's run by (sweep, trial key) or create it with the trial's params.

        ``sweep=None`` makes a standalone run (``asym train``): tagged ``asym.kind=train``, no parent.
        """
        def open_once() -> tuple[str, str, dict[str, int]]:
            kind = names.KIND_TRIAL if sweep is not None else KIND_STANDALONE
            tags = {names.TAG_KIND: kind, names.TAG_TRIAL_KEY: trial.key}
            if sweep is not None:
                tags[names.TAG_SWEEP] = sweep
            runs = find_runs(client, experiment_id, tags)
            if runs and sweep is not None:
                run = runs[0]
                return run.info.run_id, run.info.status, _last_steps(client, run)
            run_tags = {**tags, names.TAG_STUDY: trial.study, names.TAG_TRIAL: trial.name}
            if parent_run_id is not None:
                run_tags[names.PARENT_RUN_ID] = parent_run_id
            run = client.create_run(experiment_id, run_name=run_display_name(trial), tags=run_tags)
            from mlflow.entities import Param

            params = [Param(k, v[:6000]) for k, v in trial.params().items()]
            for chunk in _chunks(params, MAX_PARAMS_PER_BATCH):
                client.log_batch(run.info.run_id, params=chunk)
            return run.info.run_id, "RUNNING", {}

        run_id, status, last = with_retries(open_once, deadline_s=deadline_s, what=f"open the run of {trial.name}")
        buffer = MetricBuffer(client, run_id, flush_every_s=flush_every_s, deadline_s=deadline_s, last_steps=last)
        return cls(client=client, run_id=run_id, buffer=buffer, status_at_open=status)

    def last_step(self) -> int:
        """The highest step logged for any metric (-1 when none)."""
        return max(self.buffer.last_steps.values(), default=-1)

    def is_complete(self, steps: int) -> bool:
        """Finished earlier with every step logged: a resumed sweep must not run it again."""
        return self.status_at_open == "FINISHED" and self.last_step() >= steps

    def mark_running(self) -> None:
        if self.status_at_open != "RUNNING":
            with_retries(lambda: self.client.update_run(self.run_id, status="RUNNING"),
                         deadline_s=self.buffer.deadline_s, what="mark the run RUNNING")

    def log_step(self, step: int, metrics: Mapping[str, float]) -> None:
        self.buffer.add(step, metrics)
        self.buffer.maybe_flush()

    def close(self, status: str) -> None:
        """Flush everything (blocking, with retries) and set the final status."""
        try:
            self.buffer.flush(block=True)
        finally:
            finish_run(self.client, self.run_id, status, deadline_s=self.buffer.deadline_s)

    def latest_metrics(self) -> dict[str, float]:
        """The run's latest value per metric (retried: a trial may start while the server restarts)."""
        return with_retries(lambda: dict(self.client.get_run(self.run_id).data.metrics),
                            deadline_s=self.buffer.deadline_s, what=f"read the metrics of run {self.run_id}")


def _last_steps(client, run) -> dict[str, int]:
    last = {}
    for key in run.data.metrics:
        history = client.get_metric_history(run.info.run_id, key)
        if history:
            last[key] = max(m.step for m in history)
    return last


def _chunks(items: list, size: int) -> Iterable[list]:
    for i in range(0, len(items), size):
        yield items[i:i + size]

