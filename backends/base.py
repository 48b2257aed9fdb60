"""What every backend is: the whole interface the orchestrator calls, and nothing it probes for.

The orchestrator owns run identity (MLflow run, Tune trial); a backend only trains and reports.
Metric names are those of ``common.metric_names``, shared by every backend. The registry of
backends (name -> class) is ``backends``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Mapping, Protocol, runtime_checkable

from experiments.spec import TrialSpec


class Reporter(Protocol):
    def __call__(self, step: int, metrics: Mapping[str, float]) -> None:
        """Called once per training step (step 0: evaluation of the starting model), in order."""


@runtime_checkable
class Backend(Protocol):
    name: str
    # Steps between the backend's checkpoints: the orchestrator makes metrics durable in MLflow at
    # these steps, so a retry (which resumes at the last checkpoint) never skips buffered steps.
    checkpoint_every: int

    def resources(self, trial: TrialSpec) -> dict[str, float]:
        """The Ray resources one trial reserves (``--cpus/--gpus-per-trial`` override them)."""

    def configure_runtime(self, cpus: float, gpus: float) -> None:
        """Called in the trial's process with the resources Tune gave it, before ``run``."""

    def preflight(self, trials: Iterable[TrialSpec]) -> None:
        """Called by the sweep's driver before anything is written or started: raise a one-line
        ``UserError`` for a trial that cannot run here (a missing model, more GPUs than there are)."""

    def prepare(self, trials: Iterable[TrialSpec]) -> None:
        """Called once by the sweep's driver before any trial starts (base models, data files)."""

    def identity(self, trial: TrialSpec) -> dict[str, str]:
        """What the trial runs on besides its settings, after ``prepare``: ``engine`` (the engine's
        version) and ``base_model`` (the weights' content hash, or the model's path/revision)."""

    def run(self, trial: TrialSpec, report: Reporter, workdir: Path) -> None:
        """Train ``trial`` to completion; resume from checkpoints in ``workdir`` when it has any.

        ``workdir`` is deterministic per trial key, so a retried attempt finds the last
        checkpoint of the failed one. Raise on failure (the orchestrator retries).
        """
