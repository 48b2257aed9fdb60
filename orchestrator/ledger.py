"""The cost ledger: what each trial has used, as MLflow metrics, and what a sweep adds up to.

A trial logs ``cost/gpu_seconds`` (the GPUs Tune reserved for it times the wall seconds it held
them), ``cost/cpu_seconds`` (CPU time of its process and every process it started, verl's private
Ray included) and ``cost/wall_seconds`` with every step, cumulative: a retried or resumed trial
starts from what its run already recorded, so a trial's last value is its whole bill, steps that a
retry ran twice included (they were paid for). The parent run gets the sums when the sweep ends;
``sweep_costs`` reads the same numbers for a running sweep.
"""

from __future__ import annotations

import time
from typing import Mapping

import psutil

from common import metric_names as M


class CostMeter:
    """Cumulative cost of one trial attempt on top of what earlier attempts recorded."""

    def __init__(self, gpus: float, previous: Mapping[str, float] | None = None):
        previous = previous or {}
        self.gpus = float(gpus)
        self.offset = {name: float(previous.get(name, 0.0)) for name in M.COST_METRICS}
        self.started = time.monotonic()
        self._process = psutil.Process()
        self._cpu_at_start = self._cpu_seconds()

    def _cpu_seconds(self) -> float:
        total = sum(self._process.cpu_times()[:2])
        for child in self._process.children(recursive=True):
            try:
                total += sum(child.cpu_times()[:2])
            except psutil.Error:  # a child that just ended
                continue
        return total

    def __call__(self) -> dict[str, float]:
        wall = time.monotonic() - self.started
        return {
            M.COST_WALL_SECONDS: self.offset[M.COST_WALL_SECONDS] + wall,
            M.COST_GPU_SECONDS: self.offset[M.COST_GPU_SECONDS] + self.gpus * wall,
            M.COST_CPU_SECONDS: self.offset[M.COST_CPU_SECONDS] + max(0.0, self._cpu_seconds() - self._cpu_at_start),
        }


def log_sweep_totals(client, parent_run_id: str, children: list) -> dict[str, float]:
    """Sum the children's latest cost metrics onto the parent run (hours); returns the sums."""
    totals = {name: sum(float(run.data.metrics.get(name, 0.0)) for run in children) for name in M.COST_METRICS}
    hours = {name.replace("_seconds", "_hours"): value / 3600.0 for name, value in totals.items()}
    from mlflow.entities import Metric  # deferred: mlflow

    stamp = int(time.time() * 1000)
    client.log_batch(parent_run_id, metrics=[Metric(k, v, stamp, 0) for k, v in hours.items()])
    return hours
