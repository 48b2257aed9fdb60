"""Submitting a Ray Job to a head that is still starting (the client is passed in: no Ray import here)."""

from __future__ import annotations

import time
from typing import Any

# What Ray's job server answers (HTTP 500) while the head's dashboard agent is not up yet: a fresh or
# restarted head, or a head node that has just joined. Ray's own advice is to try again.
AGENT_NOT_READY = "No available agent to submit job"


def submit_when_ready(client: Any, deadline_s: float = 60.0, poll_s: float = 1.0, **request: Any) -> str:
    """``client.submit_job(**request)``, retried while the head has no agent yet (up to ``deadline_s``);
    any other refusal, or the same one past the deadline, is raised as Ray raised it."""
    deadline = time.monotonic() + deadline_s
    while True:
        try:
            return client.submit_job(**request)
        except RuntimeError as exc:
            if AGENT_NOT_READY not in str(exc) or time.monotonic() + poll_s > deadline:
                raise
        time.sleep(poll_s)
