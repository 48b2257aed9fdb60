"""The paper's advantage estimators and diagnostics: pure torch, no Ray, no MLflow, no verl.

What adapts them to verl lives with the verl backend (``backends.verl.adapter``); the errors and
metric names every layer shares live one floor lower, in ``common``.

The names below load on first use (PEP 562), so the registry (which the CLI reads) does not import
torch: the CLI, the sweep driver and a Tune actor pay torch's multi-second import only where they
compute advantages.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "broadcast_to_tokens": "estimators.advantages",
    "ESTIMATORS": "estimators.registry",
    "Estimator": "estimators.registry",
    "check_alpha": "estimators.registry",
    "compute_advantages": "estimators.registry",
    "compute_token_advantages": "estimators.registry",
    "get_estimator": "estimators.registry",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'estimators' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value
