"""A trial's identity (design, "Trial identity"): its settings, the engine's version and the base
model's content hash, all in ``TrialSpec.key``.

The planner knows the settings; the backend knows the rest once the base models exist, so the
sweep's driver stamps every trial after ``Backend.prepare`` (and an Optuna sample as it is
planned). Reuse of a finished trial (``orchestrator.reuse``), dedup of MLflow runs and resume all
read the stamped key.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Sequence

from backends import get_backend
from experiments.spec import TrialSpec


def stamp(trials: Sequence[TrialSpec]) -> list[TrialSpec]:
    """``trials`` with ``identity`` set by their backends (call after ``prepare``)."""

    backends: dict[str, object] = {}
    out = []
    for trial in trials:
        backend = backends.setdefault(trial.backend, get_backend(trial.backend))
        out.append(replace(trial, identity=tuple(sorted(backend.identity(trial).items()))))
    return out
