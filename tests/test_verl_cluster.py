"""A multi-node verl trial for real: verl 0.9.1's own trainer in its CPU mode (the cpu-tiny preset)
spread over two nodes of a Ray cluster simulated on this machine (cluster.local_sim: a real head with
its job server and three worker nodes with one logical GPU each), submitted by `asym sweep --storage`
as a Ray Job. A worker node running one of its two FSDP2 training processes is lost mid-trial: the
job fails, the trial is retried as a second job on the surviving nodes, resumes from verl's sharded
checkpoint in the shared folder, and MLflow holds every step once, verl's own keys included.
"""

from __future__ import annotations

import json
import math
import os
import re
import signal

import pytest
from asym_process import finish, runs_of, start_asym, steps_exactly_once, wait_for

from experiments import tracking_names as names

pytestmark = pytest.mark.slow
pytest.importorskip("verl")

STEPS = 4  # cpu-tiny evaluates every 2 steps; save_every=1 checkpoints every step
SWEEP = "verl-nodes"


@pytest.fixture(scope="module")
def sim():
    from cluster.local_sim import simulated_cluster
    from backends.verl.admission import ADMISSION_RESOURCE, JOB_RESOURCE

    # logical CPUs: verl's ~10 processes per job each ask for one; the head declares the admission
    # units a multi-node verl trial holds (one GPU slot per worker GPU, one verl job at a time)
    with simulated_cluster(workers=3, gpus_per_worker=1, cpus_per_worker=8, head_cpus=8, connect=False,
                           dashboard=True, head_resources={ADMISSION_RESOURCE: 3, JOB_RESOURCE: 1}) as cluster:
        yield cluster


def _steps(path) -> list[int]:
    return [json.loads(line)["step"] for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


def _actors(dashboard: str) -> list:
    from ray.util.state import list_actors

    return list_actors(address=dashboard, filters=[("state", "=", "ALIVE")], limit=1000, raise_on_missing_output=False)


def _training_nodes(actors) -> set[str]:
    """The nodes of verl's training processes (its colocated ``WorkerDict`` actors)."""
    return {a.node_id for a in actors if "WorkerDict" in a.class_name}


def test_a_two_node_verl_trial_survives_a_lost_node(sim, tmp_path):
    from orchestrator.mlflow_server import store_paths
    from orchestrator.tracking import make_client
    from ray.job_submission import JobSubmissionClient

    shared, node_a = tmp_path / "nfs", tmp_path / "node-a"
    shared.mkdir(), node_a.mkdir()
    proc = start_asym(["sweep", "grid", "--backend", "verl", "--model", "cpu-tiny", "--alpha-pos", "1",
                       "--alpha-neg", "0.5", "--steps", str(STEPS), "--set", "nnodes=2", "--set", "save_every=1",
                       "--max-failures", "2", "--storage", str(shared), "--name", SWEEP],
                      node_a, env={"RAY_ADDRESS": sim.address})
    try:
        first = lambda: next(iter(sorted((shared / "trials" / SWEEP).glob("*/metrics/attempt-1.jsonl"))), None)  # noqa: E731
        wait_for(lambda: first() is not None and 2 in _steps(first()), 420, "step 2 of the first job", proc, every=0.5)
        workers = set(sim.worker_node_ids())
        actors = _actors(sim.dashboard)
        training = _training_nodes(actors) & workers
        assert len(training) == 2, ("verl's two training processes are not on two worker nodes", workers,
                                    sorted((a.class_name, a.node_id) for a in actors))
        # the harder loss when placement allows: the node that also holds the agent-loop worker,
        # which verl 0.9.1 would wait on forever (job_watch.NodeLossWatchdog stops the job)
        agent_loop = {a.node_id for a in actors if "AgentLoopWorker" in a.class_name} & training
        lost = sorted(agent_loop or training)[0]
        sim.remove_worker(lost)  # a machine lost with one of the two ranks on it
        code, err = finish(proc, timeout=600)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        from orchestrator.mlflow_server import reap_orphans, run_dir

        reap_orphans(run_dir(node_a))  # the sweep's own server, when the sweep was killed
    workdir = first().parents[1]
    logs = "\n".join(p.read_text(errors="replace")[-3000:] for p in sorted((workdir / "logs").glob("*.log")))
    assert code == 0, err[-3000:] + logs

    client = make_client(store_paths(storage=shared)[0])
    (run,) = runs_of(client, names.KIND_TRIAL)
    assert run.info.status == "FINISHED"
    steps_exactly_once(client, run, STEPS)  # every key, verl's actor/* and val-core/* too
    assert "actor/pg_loss" in run.data.metrics and "actor/grad_norm" in run.data.metrics
    # verl trained across the two nodes, through the retry (issue 26): a finite, non-zero gradient on
    # every step, and the weights verl synced to the rollout after the last step differ from the base
    history = lambda key: {m.step: m.value for m in client.get_metric_history(run.info.run_id, key)}  # noqa: E731
    grad = history("actor/grad_norm")
    assert sorted(grad) == list(range(1, STEPS + 1)) and all(math.isfinite(v) and v > 0 for v in grad.values()), grad
    assert history("asym_cpu/weight_change").get(STEPS, 0.0) > 0, history("asym_cpu/weight_change")

    # the first job died with the node; the retry was a second job that resumed from the checkpoint
    before, after = _steps(workdir / "metrics" / "attempt-1.jsonl"), _steps(workdir / "metrics" / "attempt-2.jsonl")
    assert after and min(after) == max(before) + 1 and max(after) == STEPS, (before, after)
    retry_log = (workdir / "logs" / "attempt-2.log").read_text(errors="replace")
    assert "asym: resumed from the checkpoint of step" in retry_log, retry_log[-3000:]
    jobs = JobSubmissionClient(sim.dashboard)
    key = workdir.name
    # Either verl's own ray.get on the dead rank ended the job (FAILED), or verl waited on a lost
    # actor (the agent-loop worker, when it was on the lost node) and asym stopped it (STOPPED); the
    # live view says which, on the retry's line.
    first_job = jobs.get_job_status(f"asym-{key}-a1").value
    sweep_lines = [line for line in err.splitlines() if line.startswith("[sweep]")]
    why = {"FAILED": r"RETRYING step \d+[^:]*: RuntimeError: verl job asym-\S+ ended FAILED",
           "STOPPED": r"RETRYING step \d+[^:]*: NodeLost: verl job asym-\S+ lost \d+ actor"}.get(first_job)
    if why is None or not any(re.search(why, line) for line in sweep_lines):
        pytest.fail(f"first job {first_job}, lost node had the agent loop: {bool(agent_loop)}; the sweep said:\n"
                    + "\n".join(sweep_lines))
    assert jobs.get_job_status(f"asym-{key}-a2").value == "SUCCEEDED"
