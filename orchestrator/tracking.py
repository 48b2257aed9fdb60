"""MLflow tracking for sweeps and trials: clients, stores, run identity and retries.

The layout is ``experiments.tracking_names`` (the analysis layer reads it):

- ``make_client``: a client whose HTTP calls fail fast (our own buffers retry, with backoff).
- ``prepare_store``: a sqlite store is created (and migrated) under a file lock, so two processes
  using a fresh store at once never race MLflow's migrations.
- ``open_sweep_run``: the sweep's parent run, found again by its tags on a resume.
- ``with_retries``: a call retried with backoff until a deadline, then ``TrackingError``.

A trial's child run and its batched logging are ``orchestrator.trial_run``; the parent run's live
description is ``orchestrator.sweep_note``; URIs are masked by ``common.redact``.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping

from common import metric_names as M
from common.errors import UserError, first_line
from common.redact import redact, redact_text
from experiments import tracking_names as names

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
    from mlflow import MlflowClient  # deferred: mlflow

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

    path = sqlite_path(uri)
    with store_lock(path):
        from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore  # deferred: mlflow

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
    from mlflow.exceptions import MlflowException  # deferred: mlflow

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
    from mlflow.entities import Param  # deferred: mlflow

    tags = {names.TAG_KIND: names.KIND_SWEEP, names.TAG_SWEEP: sweep}
    runs = find_runs(client, experiment_id, tags)
    if runs:
        run_id = runs[0].info.run_id
        client.update_run(run_id, status="RUNNING")
        return run_id
    run = client.create_run(experiment_id, run_name=sweep, tags={**tags, names.TAG_STUDY: study})
    items = [Param(k, str(v)) for k, v in (params or {}).items()]
    for chunk in chunks(items, MAX_PARAMS_PER_BATCH):
        client.log_batch(run.info.run_id, params=chunk)
    return run.info.run_id


def finish_run(client, run_id: str, status: str = "FINISHED", deadline_s: float = 60.0) -> None:
    with_retries(lambda: client.set_terminated(run_id, status), deadline_s=deadline_s,
                 what=f"mark run {run_id} {status}")


# --- batched, retried metric logging -------------------------------------------------------------


# --- a trial's child run -------------------------------------------------------------------------


def chunks(items: list, size: int) -> Iterable[list]:
    for i in range(0, len(items), size):
        yield items[i:i + size]
