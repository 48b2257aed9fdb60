"""The sweep's live view says why a trial is retried or failed, read from a real Ray Tune run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from ray_local import LOCAL_RAY_INIT

REPO = Path(__file__).resolve().parents[1]

TUNE_RUN = """
import io, sys
import ray
from ray import tune
from rich.console import Console
from orchestrator.live import LiveTable

def flaky(config):
    raise RuntimeError("verl job asym-k-a1 lost 2 actor(s) (AgentLoopWorkerTQ, WorkerDict) on node 97978d63\\n"
                       "second line of the message")

out = io.StringIO()
live = LiveTable("sweep t", console=Console(file=out, force_terminal=False, soft_wrap=True))
{local_ray_init}
tune.Tuner(flaky, run_config=tune.RunConfig(storage_path=sys.argv[1], name="t", callbacks=[live], verbose=0,
           failure_config=tune.FailureConfig(max_failures=1))).fit()
print(out.getvalue())
""".replace("{local_ray_init}", LOCAL_RAY_INIT.format(num_cpus=1))


def test_a_retried_then_failed_trial_shows_what_it_raised(tmp_path):
    done = subprocess.run([sys.executable, "-c", TUNE_RUN, str(tmp_path)], cwd=REPO, capture_output=True,
                          text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = [line for line in done.stdout.splitlines() if line.startswith("[sweep]")]
    reason = "RuntimeError: verl job asym-k-a1 lost 2 actor(s) (AgentLoopWorkerTQ, WorkerDict) on node 97978d63"
    retrying = [line for line in lines if ": RETRYING" in line]
    failed = [line for line in lines if ": ERROR" in line]
    assert len(retrying) == 1 and retrying[0].endswith(f"RETRYING: {reason}"), lines
    assert len(failed) == 1 and failed[0].endswith(f"ERROR: {reason}"), lines
    assert "second line" not in done.stdout


def test_failure_line_is_the_cause_and_first_line_cut_to_its_limit():
    from orchestrator.live import failure_line

    assert failure_line(None) is None
    assert failure_line(ValueError("")) == "ValueError"
    assert failure_line(KeyError("x" * 500), limit=40) == "KeyError: '" + "x" * 26 + "..."


def test_first_line_of_an_exception_for_one_line_errors():
    from common.errors import first_line

    assert first_line(RuntimeError("  no server at X\n  Traceback ...")) == "no server at X"
    assert first_line(ConnectionError()) == "ConnectionError"
    assert first_line(RuntimeError("y" * 400), limit=300) == "y" * 297 + "..."
