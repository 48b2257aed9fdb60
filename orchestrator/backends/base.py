"""What every backend is: run one ``TrialSpec`` and report each step's metrics, in order.

The orchestrator owns run identity (MLflow run, Tune trial); a backend only trains and reports.
Metric names are those of ``estimators.metric_names``, shared by every backend.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Protocol

from experiments.spec import TrialSpec


class Reporter(Protocol):
    def __call__(self, step: int, metrics: Mapping[str, float]) -> None:
        """Called once per training step (step 0: evaluation of the starting model), in order."""


class Backend(Protocol):
    name: str

    def run(self, trial: TrialSpec, report: Reporter, workdir: Path) -> None:
        """Train ``trial`` to completion; resume from checkpoints in ``workdir`` when it has any.

        ``workdir`` is deterministic per trial key, so a retried attempt finds the last
        checkpoint of the failed one. Raise on failure (the orchestrator retries).
        """


def get_backend(name: str) -> Backend:
    """The backend object for a name; imports its module only when asked (keeps the CLI fast)."""
    if name == "embedded":
        from orchestrator.backends.embedded import EmbeddedBackend

        return EmbeddedBackend()
    if name == "verl":
        from orchestrator.backends.verl import VerlBackend

        return VerlBackend()
    raise ValueError(f"unknown backend '{name}'; known: embedded, verl")
