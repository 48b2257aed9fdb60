"""The order a sweep hands its trials to Tune: longest processing time first.

Tune starts pending trials in the order it was given them, backfilling any that fit when resources
free up (FIFO with backfill). With mixed shapes (4-, 2- and 1-GPU trials of different lengths) the
plan's order can leave GPUs idle at the end while a big trial runs alone: on the mixed workload of
``benchmarks/cluster_makespan.py`` the best FIFO schedule of the plan's order is 1.167x the ideal
makespan. Graham's LPT rule (start the largest jobs first, R. L. Graham, "Bounds on multiprocessing
timing anomalies", 1969) brings that bound to 1.0 there, and never changes a single-shape grid
(the sort is stable). The size of a trial is its GPU (else CPU) request times its steps: a proxy for
GPU-seconds that the planner knows before anything runs.
"""

from __future__ import annotations

from typing import Callable, Mapping, Sequence, TypeVar

T = TypeVar("T")


def trial_size(resources: Mapping[str, float], steps: int) -> float:
    """GPU-steps when the trial takes GPUs, else CPU-steps: what it holds, times how long."""
    held = resources.get("GPU") or resources.get("CPU") or 1.0
    return float(held) * float(steps)


def longest_first(trials: Sequence[T], size: Callable[[T], float]) -> list[T]:
    """``trials`` largest ``size`` first; equal sizes keep the plan's order (stable)."""
    return sorted(trials, key=lambda trial: -size(trial))
