"""The watchdog that stops a verl job whose actors died with their node (verl 0.9.1 would wait on
them forever). The records below have the shape Ray's state API returned on the simulated cluster
(`list_actors(detail=True)` after a worker node was removed); the watchdog's real run is the lost
node of tests/test_verl_cluster.py."""

from __future__ import annotations

import pytest

from backends.verl.job_watch import NodeLossWatchdog, NodeLost, describe, lost_with_their_node


def actor(class_name: str, state: str = "DEAD", reason: str | None = "NODE_DIED", node: str = "97978d636acc9416"):
    cause = None if reason is None else {"actor_died_error_context": {"reason": reason, "never_started": False}}
    return {"class_name": class_name, "state": state, "node_id": node, "death_cause": cause}


def test_only_actors_that_died_with_their_node_count():
    records = [actor("AgentLoopWorkerTQ"), actor("create_colocated_worker_cls.<locals>.WorkerDict"),
               actor("RewardLoopWorker", reason="OUT_OF_SCOPE"), actor("CPURolloutServer", reason=None),
               actor("TaskRunnerV1", state="ALIVE", reason=None)]
    lost = lost_with_their_node(records)
    assert [a["class_name"] for a in lost] == ["AgentLoopWorkerTQ", "create_colocated_worker_cls.<locals>.WorkerDict"]
    assert describe(lost) == "2 actor(s) (AgentLoopWorkerTQ, WorkerDict) on node 97978d63"


def test_the_watchdog_asks_once_a_period_skips_a_silent_state_api_and_raises_on_a_lost_node():
    now, answers, calls = [0.0], [ConnectionError("dashboard restarting"), [], [actor("AgentLoopWorkerTQ")]], []

    def list_dead():
        calls.append(now[0])
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    watch = NodeLossWatchdog("asym-k-a1", list_dead, every_s=5.0, clock=lambda: now[0])
    watch.check()  # the state API does not answer: looked again next period
    now[0] = 2.0
    watch.check()  # within the period: not asked
    now[0] = 5.0
    watch.check()  # nothing dead
    assert calls == [0.0, 5.0]
    now[0] = 10.0
    with pytest.raises(NodeLost, match=r"^verl job asym-k-a1 lost 1 actor\(s\) \(AgentLoopWorkerTQ\) on node 97978d63"):
        watch.check()


HOLDER = """
import sys, time
import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

ray.init()

@ray.remote(num_cpus=0)
class Rollouts:  # stands in for verl's agent-loop worker: an actor of the job on a worker node
    def ping(self):
        return 1

actor = Rollouts.options(scheduling_strategy=NodeAffinitySchedulingStrategy(sys.argv[1], soft=False)).remote()
ray.get(actor.ping.remote())
print("holding", flush=True)
time.sleep(600)  # like verl polling for rollouts that will never come
"""


@pytest.mark.slow
def test_on_a_real_cluster_the_watchdog_finds_a_jobs_actor_lost_with_its_node(tmp_path):
    """A Ray Job on a simulated cluster (cluster.local_sim: real head, job server and worker node)
    keeps an actor on the worker and waits; the worker is removed; the job stays RUNNING, and the
    watchdog, asking Ray's state API, raises NodeLost naming the actor."""
    import time

    from ray.job_submission import JobStatus, JobSubmissionClient

    from cluster.local_sim import simulated_cluster
    from backends.verl.job_watch import dead_actors_of

    script = tmp_path / "holder.py"
    script.write_text(HOLDER)
    with simulated_cluster(workers=1, gpus_per_worker=0, cpus_per_worker=1, head_cpus=1, connect=False,
                           dashboard=True) as sim:
        jobs = JobSubmissionClient(sim.dashboard)
        (worker,) = sim.worker_node_ids()
        job = jobs.submit_job(entrypoint=f"python {script} {worker}", entrypoint_num_cpus=0)
        try:
            deadline = time.monotonic() + 120
            while "holding" not in jobs.get_job_logs(job):
                assert time.monotonic() < deadline and not jobs.get_job_status(job).is_terminal(), jobs.get_job_logs(job)
                time.sleep(0.5)
            watch = NodeLossWatchdog(job, dead_actors_of(sim.dashboard, jobs.get_job_info(job).driver_info.id),
                                     every_s=1.0)
            watch.check()  # all alive: nothing raised
            sim.remove_worker(worker)
            deadline = time.monotonic() + 120
            with pytest.raises(NodeLost, match=rf"^verl job {job} lost 1 actor\(s\) \(Rollouts\) on node {worker[:8]}"):
                while time.monotonic() < deadline:
                    watch.check()
                    time.sleep(1.0)
            assert jobs.get_job_status(job) == JobStatus.RUNNING  # the job itself would have waited on
        finally:
            jobs.stop_job(job)
