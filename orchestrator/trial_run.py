"""A trial's child run in MLflow, and the batched logging that survives an outage.

- ``TrialRun.open``: a trial's child run, found again by (sweep, trial key) so a retried or resumed
  trial continues its run; it knows the last step logged for every metric and drops steps at or
  before it, so a trial that re-runs steps after a crash never duplicates them.
- ``MetricBuffer``: metrics are buffered and sent with ``MlflowClient.log_batch`` every few seconds.
  A failed send keeps the buffer and retries later with exponential backoff, without blocking the
  training loop; ``flush(block=True)`` (at checkpoints and at the end) retries until a deadline and
  then raises ``TrackingError``, so a trial fails loudly rather than lose metrics.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Mapping

from experiments import tracking_names as names
from orchestrator.tracking import (KIND_STANDALONE, MAX_METRICS_PER_BATCH, MAX_PARAMS_PER_BATCH, TrackingError, chunks,
                                   find_runs, finish_run, run_display_name, with_retries)


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
        from mlflow.entities import Metric  # deferred: mlflow

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
            from mlflow.entities import Param  # deferred: mlflow

            params = [Param(k, v[:6000]) for k, v in trial.params().items()]
            for chunk in chunks(params, MAX_PARAMS_PER_BATCH):
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
