"""Sweeps on a multi-node Ray cluster simulated on this machine (cluster.local_sim: a real head and two
real worker nodes, 4 logical GPUs each): Ray Tune packs 2-GPU trials onto both nodes, never more at
once than the GPUs allow, each trial with its own CUDA_VISIBLE_DEVICES. (A worker lost mid-sweep, its
trials retried on the other node and resumed from their checkpoints: tests/test_cluster_storage.py
for embedded trials, tests/test_verl_cluster.py for a trial holding (logical) GPUs on two nodes.)

The trials are a planned grid study (experiments.plan) and ask Tune for resources through the
sweep's own request (orchestrator.trial.placement, as orchestrator/sweep.py wires it, with
--gpus-per-trial 2); only the trial body is replaced by a sleep that records where it ran.
"""

from __future__ import annotations

import functools
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

GPUS_PER_WORKER = 4
GPUS_PER_TRIAL = 2


def run_grid(tmp_path: Path, n_trials: int, seconds: float):
    """A grid study of `n_trials` embedded trials, each asking for 2 GPUs through the sweep's own
    resource request (orchestrator.trial.placement with --gpus-per-trial 2); the trial body sleeps."""
    from ray import tune

    from cluster.local_sim import sleep_trial
    from experiments.plan import plan
    from orchestrator.trial import placement

    trials = plan("grid", alpha_pos=[float(a) for a in range(n_trials // 2)], alpha_neg=[0.0, 1.0], smoke=True)
    assert len(trials) == n_trials
    resources = functools.partial(placement, cpus=None, gpus=GPUS_PER_TRIAL)
    tuner = tune.Tuner(
        tune.with_resources(sleep_trial, resources),
        param_space={"trial": tune.grid_search([t.to_dict() for t in trials]), "seconds": seconds},
        tune_config=tune.TuneConfig(num_samples=1),
        run_config=tune.RunConfig(name="packing", storage_path=str(tmp_path / "tune"), verbose=0),
    )
    return tuner


def max_overlap(intervals: list[tuple[float, float]]) -> int:
    events = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals], key=lambda x: (x[0], x[1]))
    current = best = 0
    for _, delta in events:
        current += delta
        best = max(best, current)
    return best


@pytest.fixture(scope="module")
def sim():
    from cluster.local_sim import simulated_cluster

    with simulated_cluster(workers=2, gpus_per_worker=GPUS_PER_WORKER, cpus_per_worker=2) as cluster:
        yield cluster


def test_two_gpu_trials_are_packed_on_both_nodes_within_gpu_limits(sim, tmp_path):
    n_trials = 8
    tuner = run_grid(tmp_path, n_trials=n_trials, seconds=4.0)
    results = tuner.fit()
    assert not results.errors
    rows = [r.metrics for r in results]
    assert len(rows) == n_trials

    nodes = {row["node"] for row in rows}
    assert nodes == set(sim.worker_node_ids()), "the grid ran on both worker nodes (never on the GPU-less head)"

    capacity = 2 * GPUS_PER_WORKER // GPUS_PER_TRIAL
    overall = max_overlap([(row["start"], row["end"]) for row in rows])
    assert 2 < overall <= capacity, f"{overall} concurrent trials; the GPUs allow {capacity}"
    for node in nodes:
        on_node = [row for row in rows if row["node"] == node]
        assert max_overlap([(r["start"], r["end"]) for r in on_node]) <= GPUS_PER_WORKER // GPUS_PER_TRIAL

    for row in rows:
        devices = row["cvd"].split(",")
        assert len(devices) == GPUS_PER_TRIAL and len(set(devices)) == GPUS_PER_TRIAL, row["cvd"]
        assert all(0 <= int(d) < GPUS_PER_WORKER for d in devices)
    for i, a in enumerate(rows):  # trials sharing a node at the same time hold disjoint GPUs
        for b in rows[i + 1:]:
            if a["node"] == b["node"] and a["start"] < b["end"] and b["start"] < a["end"]:
                assert not set(a["cvd"].split(",")) & set(b["cvd"].split(",")), (a, b)
