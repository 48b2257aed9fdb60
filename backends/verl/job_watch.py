"""A watchdog for verl jobs that lost actors with a node and would wait for them forever.

verl 0.9.1 notices a dead training worker (its next ``ray.get`` raises), but not every dead actor:
when the node that dies holds the agent-loop worker, the trainer keeps polling TransferQueue for
rollouts that worker will never write ("pending: 0, running: 4" once a minute, without end), and
the Ray Job stays RUNNING. Ray's state API does know: the job's actors are DEAD with the cause
``NODE_DIED``. ``NodeLossWatchdog.check()`` looks every few seconds and raises ``NodeLost``, and the
caller stops the job so that Tune retries the trial, which resumes from verl's last checkpoint.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any, Callable, Iterable, Mapping

NODE_DIED = "NODE_DIED"  # Ray's ActorDiedErrorContext.reason when the actor's node died


class NodeLost(RuntimeError):
    """Actors of the trial's verl job died with their node; the job cannot finish."""


def lost_with_their_node(actors: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The actors (Ray state API records, ``detail=True``) that died because their node died."""
    def reason(actor: Mapping[str, Any]) -> str | None:
        context = (actor.get("death_cause") or {}).get("actor_died_error_context") or {}
        return context.get("reason")

    return [a for a in actors if a.get("state") == "DEAD" and reason(a) == NODE_DIED]


def describe(actors: list[Mapping[str, Any]]) -> str:
    """'4 actors (AgentLoopWorkerTQ, CPURolloutServer, ...) on node 97978d63'."""
    classes = sorted({str(a.get("class_name", "?")).rsplit(".", 1)[-1] for a in actors})
    nodes = sorted({str(a.get("node_id") or "?")[:8] for a in actors})
    return f"{len(actors)} actor(s) ({', '.join(classes)}) on node {', '.join(nodes)}"


def dead_actors_of(address: str, job_id_hex: str) -> Callable[[], list[Mapping[str, Any]]]:
    """A lister of the job's DEAD actors through the state API of the cluster at ``address``."""
    def list_dead() -> list[Mapping[str, Any]]:
        from ray.util.state import list_actors  # deferred: ray

        found = list_actors(address=address, filters=[("job_id", "=", job_id_hex), ("state", "=", "DEAD")],
                            detail=True, limit=1000, raise_on_missing_output=False)
        return [dataclasses.asdict(a) for a in found]  # ActorState records, as plain dicts

    return list_dead


class NodeLossWatchdog:
    """Call ``check()`` now and then; at most every ``every_s`` it asks ``list_dead`` (the job's DEAD
    actors) and raises ``NodeLost`` when one died with its node. A state API that does not answer
    is skipped: it only delays what it would have found by one period."""

    def __init__(self, submission_id: str, list_dead: Callable[[], list[Mapping[str, Any]]],
                 every_s: float = 5.0, clock: Callable[[], float] = time.monotonic):
        self.submission_id, self._list_dead, self.every_s, self._clock = submission_id, list_dead, every_s, clock
        self._next = clock()

    def check(self) -> None:
        if self._clock() < self._next:
            return
        self._next = self._clock() + self.every_s
        try:
            dead = self._list_dead()
        except Exception:  # the dashboard busy or restarting: look again next period
            return
        lost = lost_with_their_node(dead)
        if lost:
            raise NodeLost(f"verl job {self.submission_id} lost {describe(lost)}, which died; verl would wait "
                           "for them forever, so asym stopped the job (the trial's retry resumes from its last checkpoint)")
