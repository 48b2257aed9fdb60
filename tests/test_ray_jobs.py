"""common.ray_jobs.submit_when_ready: a head whose agent is still starting is waited for; any other
refusal is not. The client here scripts the answers of Ray's job server (the message is Ray 2.60's)."""

from __future__ import annotations

import pytest

from common.ray_jobs import AGENT_NOT_READY, submit_when_ready

NOT_READY = RuntimeError(f"Request failed with status code 500: {AGENT_NOT_READY}, please try again later..")


class ScriptedHead:
    def __init__(self, answers):
        self.answers, self.requests = list(answers), []

    def submit_job(self, **request):
        self.requests.append(request)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


def test_the_agent_is_waited_for_then_the_job_is_submitted_once():
    head = ScriptedHead([NOT_READY, NOT_READY, "raysubmit_1"])
    assert submit_when_ready(head, deadline_s=5, poll_s=0.01, entrypoint="echo hi") == "raysubmit_1"
    assert head.requests == [{"entrypoint": "echo hi"}] * 3


def test_another_refusal_is_raised_at_once():
    head = ScriptedHead([RuntimeError("Request failed with status code 400: job 'x' already exists")])
    with pytest.raises(RuntimeError, match="already exists"):
        submit_when_ready(head, deadline_s=5, poll_s=0.01, entrypoint="echo hi")
    assert len(head.requests) == 1


def test_an_agent_that_never_comes_is_raised_after_the_deadline():
    head = ScriptedHead([NOT_READY] * 1000)
    with pytest.raises(RuntimeError, match=AGENT_NOT_READY):
        submit_when_ready(head, deadline_s=0.1, poll_s=0.02, entrypoint="echo hi")
    assert 2 <= len(head.requests) <= 10
