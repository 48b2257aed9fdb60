"""Admission of verl trials to GPUs, and a watchdog for placement groups that never become ready.

verl does not queue for GPUs: it refuses ("Total available GPUs X is less than total desired GPUs
Y") or, when another job holds them, waits forever on a placement group (no timeout in 0.9.1).
So GPUs are reserved before verl starts, by Ray Tune, never by verl:

- a single-node trial reserves ``GPU: k`` for its (CPU-only) trial process; Ray sets
  ``CUDA_VISIBLE_DEVICES`` and the private Ray that verl starts sees exactly those GPUs;
- a multi-node trial cannot hold GPUs itself (its Ray Job needs them), so it reserves ``k`` units of
  the logical resource ``ADMISSION_RESOURCE``, which the cluster declares once, equal to its GPU
  count (``ray start --head --resources='{"asym_gpu_slot": <total GPUs>, "asym_verl_job": 1}'``).
  Tune then never starts more multi-node trials than there are free GPUs; mixing both kinds of
  trial on one cluster is not supported.
- a multi-node trial also holds the one ``JOB_RESOURCE`` unit: verl 0.9.1's v1 trainer keeps its
  batches in TransferQueue, whose controller is a named actor in the fixed Ray namespace
  ``transfer_queue`` (transfer_queue/interface.py), so two verl jobs on one cluster would share it
  whatever their own namespaces. Single-node trials are isolated by their private Ray instances.
- ``PlacementGroupWatchdog`` watches the placement groups a Ray Job creates (a placement group id
  ends with its creator's job id) and raises when one stays PENDING longer than its timeout.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Mapping

from experiments.spec import TrialSpec

ADMISSION_RESOURCE = "asym_gpu_slot"
JOB_RESOURCE = "asym_verl_job"  # the cluster declares 1: one verl job at a time on a shared cluster
DEFAULT_PENDING_TIMEOUT_S = 900.0  # [ours] model download + vLLM start fit well within 15 minutes


class PlacementGroupTimeout(RuntimeError):
    """A placement group of the trial's job stayed PENDING past the watchdog's timeout."""


def gpus_per_trial(trial: TrialSpec) -> int:
    s = trial.settings_dict()
    gpus = s.get("gpus_per_trial") or int(s.get("n_gpus_per_node", 1)) * int(s.get("nnodes", 1))
    return int(gpus)


def trial_resources(trial: TrialSpec) -> dict[str, float]:
    """What the Tune trial reserves: its GPUs on one node, or admission units for a multi-node job."""
    if int(trial.settings_dict().get("nnodes", 1)) > 1:
        return {"CPU": 1.0, ADMISSION_RESOURCE: float(gpus_per_trial(trial)), JOB_RESOURCE: 1.0}
    return {"CPU": 1.0, "GPU": float(gpus_per_trial(trial))}


def owned_by_job(job_id_hex: str) -> Callable[[Mapping[str, Any]], bool]:
    """Ray's PlacementGroupID ends with the JobID of its creator."""
    suffix = job_id_hex.lower()
    return lambda info: str(info.get("placement_group_id", "")).lower().endswith(suffix)


class PlacementGroupWatchdog:
    """Call ``check()`` now and then; it raises ``PlacementGroupTimeout`` for a stuck placement group.

    ``table`` is ``ray.util.placement_group_table`` (the caller is connected to the cluster);
    ``owner`` selects the placement groups of one job (``owned_by_job``).
    """

    def __init__(self, timeout_s: float, owner: Callable[[Mapping[str, Any]], bool] | None = None,
                 table: Callable[[], Mapping[str, Mapping[str, Any]]] | None = None,
                 clock: Callable[[], float] = time.monotonic):
        if timeout_s <= 0:
            raise ValueError(f"placement-group timeout must be > 0 seconds, got {timeout_s}")
        if table is None:
            from ray.util.placement_group import placement_group_table as table  # deferred: ray
        self.timeout_s = float(timeout_s)
        self._owner = owner or (lambda info: True)
        self._table = table
        self._clock = clock
        self._pending_since: dict[str, float] = {}

    def pending(self) -> dict[str, Mapping[str, Any]]:
        return {pg_id: info for pg_id, info in self._table().items()
                if info.get("state") == "PENDING" and self._owner(info)}

    def check(self) -> None:
        now = self._clock()
        pending = self.pending()
        self._pending_since = {pg: self._pending_since.get(pg, now) for pg in pending}
        stuck = {pg: now - since for pg, since in self._pending_since.items() if now - since > self.timeout_s}
        if stuck:
            pg, waited = max(stuck.items(), key=lambda item: item[1])
            info = pending[pg]
            bundles = info.get("bundles", {})
            raise PlacementGroupTimeout(
                f"placement group {info.get('name') or pg} ({dict(bundles)}) was not ready after {waited:.0f} s "
                f"(scheduling state {info.get('stats', {}).get('scheduling_state', '?')}); the cluster lacks "
                f"the GPUs the trial asks for, or another job holds them")
