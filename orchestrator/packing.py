"""The order a sweep hands its trials to Tune: longest processing time first.

Tune starts pending trials in the order it was given them, backfilling any that fit when resources
free up (FIFO with backfill). With mixed shapes (4-, 2- and 1-GPU trials of different lengths) the
plan's order can leave GPUs idle at the end while a big trial runs alone: on the mixed workload of
``benchmarks/cluster_makespan.py`` the best FIFO schedule of the plan's order is 1.167x the ideal
makespan. Graham's LPT rule (start the largest jobs first, R. L. Graham, "Bounds on multiprocessing
timing anomalies", 1969) brings that bound to 1.0 there, and never changes a single-shape grid
(the sort is stable). The size of a trial is its GPU (else CPU) request times its steps: a proxy for
GPU-seconds that the planner knows before anything runs.

The order alone is not enough: Tune asks Ray for a placement group for every pending trial at once
(up to ``TUNE_MAX_PENDING_TRIALS_PG``, by default 1.1 x the cluster's CPUs), and Ray's GCS places
whichever pending group fits when GPUs free up, not the first in Tune's list: on the simulated
2-node cluster the plan order started its 1-GPU trials before the 2-GPU ones. ``pending_window``
caps the pending groups at one per node plus one, so Ray sees the trials in LPT order, a few at a
time, with one spare for backfill.
"""

from __future__ import annotations

import os
from typing import Callable, Mapping, Sequence, TypeVar

T = TypeVar("T")


def trial_size(resources: Mapping[str, float], steps: int) -> float:
    """GPU-steps when the trial takes GPUs, else CPU-steps: what it holds, times how long."""
    held = resources.get("GPU") or resources.get("CPU") or 1.0
    return float(held) * float(steps)


def longest_first(trials: Sequence[T], size: Callable[[T], float]) -> list[T]:
    """``trials`` largest ``size`` first; equal sizes keep the plan's order (stable)."""
    return sorted(trials, key=lambda trial: -size(trial))


PENDING_WINDOW_ENV = "TUNE_MAX_PENDING_TRIALS_PG"


def pending_window(nodes: int) -> int:
    """How many trials may wait for their placement group at once: one per node, plus one."""
    return max(1, nodes) + 1


_OURS = "ASYM_PENDING_WINDOW"  # marks a cap this module set (a later sweep in the process recomputes it)


def cap_pending_trials(nodes: int) -> int:
    """Set Tune's pending-trial cap (read when a Tuner starts) to ``pending_window(nodes)`` unless the
    user set it themselves; returns the cap in force."""
    if PENDING_WINDOW_ENV not in os.environ or os.environ.get(_OURS) == os.environ[PENDING_WINDOW_ENV]:
        os.environ[PENDING_WINDOW_ENV] = os.environ[_OURS] = str(pending_window(nodes))
    return int(os.environ[PENDING_WINDOW_ENV])
