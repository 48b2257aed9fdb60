"""verl's logged keys -> the shared metric names (``common.metric_names``).

One record of verl's file logger is ``{"step": int, "data": {key: value}}``. What maps:

- ``asym/<x>`` (our trainer subclass, ``diagnostics.py``) -> ``train/<x>``;
- ``actor/pg_clipfrac`` -> ``train/clip_frac``;
- ``actor/entropy`` -> ``train/entropy`` only when our token-mean entropy is absent (verl aggregates
  it with the loss's ``loss_agg_mode``, so it is token-mean only for token-mean runs);
- ``val-core/<benchmark>/acc/mean@N`` (also MLflow's ``mean_at_N``) -> ``eval/<benchmark>/accuracy``,
  and ``eval/mean_accuracy`` = their mean over the benchmarks of that record.
Everything else (timings, verl's own critic/* and actor/* stats) stays in verl's MLflow run only.
"""

from __future__ import annotations

import math
import re
from typing import Any, Mapping

from common import metric_names as names
from backends.verl.diagnostics import PREFIX

_VAL_CORE = re.compile(r"^val-core/(?P<source>.+)/acc/mean(?:@|_at_)(?P<n>\d+)$")


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def map_metrics(data: Mapping[str, Any]) -> dict[str, float]:
    """Shared-name metrics of one verl log call; non-numeric and non-finite values are dropped."""
    out: dict[str, float] = {}
    accuracies: dict[str, float] = {}
    for key, raw in data.items():
        value = _number(raw)
        if value is None:
            continue
        if key.startswith(PREFIX):
            out["train/" + key[len(PREFIX):]] = value
        elif key == "actor/pg_clipfrac":
            out[names.CLIP_FRAC] = value
        elif (match := _VAL_CORE.match(key)) is not None:
            accuracies[match["source"]] = value
    if names.ENTROPY not in out and (entropy := _number(data.get("actor/entropy"))) is not None:
        out[names.ENTROPY] = entropy
    for source, accuracy in sorted(accuracies.items()):
        out[names.eval_accuracy(source)] = accuracy
    if accuracies:
        out[names.EVAL_MEAN_ACCURACY] = sum(accuracies.values()) / len(accuracies)
    return out
