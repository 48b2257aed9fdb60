"""A sweep on shared storage (`--storage`), on a multi-node Ray cluster simulated on this machine
(cluster.local_sim: a real head and two real worker nodes): a worker node is lost mid-sweep, its
trials are retried on the other node and resume from their checkpoints in the shared folder; the
driver is then SIGKILLed, and `asym sweep resume --storage` from a fresh process in another
working directory (another machine that mounts the same folder) finishes the sweep, with every
step of every trial in MLflow once. Without `--storage`, a multi-node sweep is refused in one line.

The shared folder is a plain directory standing for an NFS mount; each "machine" is its own
working directory, so nothing can come from the first driver's ./.asym.
"""

from __future__ import annotations

import json
import os
import signal

import pytest
from asym_process import check_resumed_sweep, finish, runs_of, start_asym, wait_for

from experiments import tracking_names as names

pytestmark = pytest.mark.slow

# Checkpoints every 10 steps (the embedded backend's cadence). Long enough that the retried trials,
# resumed from step 10 or so, are still running when the survivors have finished: a smoke step is
# ~50 ms, and shorter trials could all finish between two polls, ending the sweep before the kill.
STEPS = 120
SWEEP = "shared"


@pytest.fixture(scope="module")
def sim():
    from cluster.local_sim import simulated_cluster

    # A head with no CPUs for trials: they all run on the two workers (2 at a time on each).
    with simulated_cluster(workers=2, gpus_per_worker=0, cpus_per_worker=2, head_cpus=0, connect=False) as cluster:
        yield cluster


def _client(storage):
    from orchestrator.mlflow_server import store_paths
    from orchestrator.tracking import make_client

    return make_client(store_paths(storage=storage)[0])


def test_a_multi_node_sweep_without_storage_is_refused_in_one_line(sim, tmp_path):
    code, err = finish(start_asym(["sweep", "grid", "--alpha-pos", "0", "--alpha-neg", "0", "--smoke", "--name", "no-storage"],
                                  tmp_path, env={"RAY_ADDRESS": sim.address}), timeout=180)
    assert code == 2, err[-3000:]
    assert err.count("\n") == 1 and "3 nodes" in err and "--storage" in err, err
    assert not (tmp_path / ".asym" / "sweeps").exists() and not (tmp_path / ".asym" / "trials").exists()


def test_shared_storage_survives_a_lost_worker_and_a_killed_driver(sim, tmp_path):
    shared, node_a, node_b = tmp_path / "nfs", tmp_path / "node-a", tmp_path / "node-b"
    for folder in (shared, node_a, node_b):
        folder.mkdir()
    env = {"RAY_ADDRESS": sim.address}
    sweep = ["sweep", "grid", "--alpha-pos", "0.5,0.9", "--alpha-neg", "0.4,0.8", "--smoke", "--seeds", "0",
             "--steps", str(STEPS), "--name", SWEEP, "--max-failures", "3", "--storage", str(shared)]  # 4 trials
    proc = start_asym(sweep, node_a, env=env)
    try:
        client = wait_for(lambda: (shared / "mlflow" / "mlflow.db").exists() and _client(shared), 180,
                          "the sweep's store in the shared folder", proc)

        checkpoints = shared / "trials" / SWEEP
        wait_for(lambda: len(list(checkpoints.glob("*/checkpoints/*.pt"))) == 4, 300,
                 "every trial's first checkpoint in the shared folder", proc, every=0.1)
        lost = sim.worker_node_ids()[0]
        sim.remove_worker(lost)  # a machine lost: its two trials die with it

        def half_done() -> bool:  # the survivors finished; the lost trials retried, not finished
            done = [r for r in runs_of(client, names.KIND_TRIAL) if r.info.status == "FINISHED"]
            return 2 <= len(done) < 4

        wait_for(half_done, 300, "two trials finished after the node loss", proc, every=0.3)
        os.killpg(proc.pid, signal.SIGKILL)  # the driver goes (its mlflow server, in a session of its own, stays)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert not (node_a / ".asym" / "sweeps").exists() and not (node_a / ".asym" / "trials").exists(), \
        "the sweep's state went to the driver's machine, not the shared folder"
    assert (shared / "sweeps" / SWEEP / "asym_sweep.json").exists()
    finished_before = {r.info.run_id: r.info.end_time for r in runs_of(client, names.KIND_TRIAL)
                       if r.info.status == "FINISHED"}

    from orchestrator.mlflow_server import reap_orphans, run_dir

    try:
        code, err = finish(start_asym(["sweep", "resume", SWEEP, "--storage", str(shared)], node_b, env=env), timeout=600)
    finally:  # node A "came back": the next asym command there reaps the killed driver's server
        reaped = reap_orphans(run_dir(node_a))
    assert code == 0, err[-3000:]
    assert len(reaped) == 1, "the SIGKILLed driver's mlflow server (its own session) was not an orphan to reap"
    check_resumed_sweep(client, finished_before, n_trials=4, steps=STEPS)
    restarts = _restarts(shared / "sweeps" / SWEEP)
    assert restarts, "no trial was restarted after the node loss"
    assert all(first > 1 for first in restarts), f"a retried trial started again from step 1: {restarts}"


def _restarts(experiment) -> list[int]:
    """The first step each restarted attempt of a trial reported (Tune appends every attempt's
    results to the trial's result.json): > 1 means it resumed from a checkpoint."""
    firsts = []
    for path in experiment.glob("*/result.json"):
        steps = [json.loads(line)["step"] for line in path.read_text().splitlines() if line.strip()]
        firsts += [b for a, b in zip(steps, steps[1:]) if b <= a]
    return firsts
