"""The watchdog that stops a verl job whose actors died with their node (verl 0.9.1 would wait on
them forever). The records below have the shape Ray's state API returned on the simulated cluster
(`list_actors(detail=True)` after a worker node was removed); the watchdog's real run is the lost
node of tests/test_verl_cluster.py."""

from __future__ import annotations

import pytest

from orchestrator.backends.verl.job_watch import NodeLossWatchdog, NodeLost, describe, lost_with_their_node


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
