"""`asym` as a user runs it, in its own process group, for the tests that kill or interrupt sweeps,
and what those tests wait for and check in the sweep's MLflow store."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from common import metric_names as M
from experiments import tracking_names as names


def start_asym(argv, cwd: Path, env=None, **kwargs) -> subprocess.Popen:
    """`python -m orchestrator.cli ARGV` in `cwd`, ignoring any tracking server or Ray this shell points at."""
    clean = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "RAY_ADDRESS")}
    return subprocess.Popen([sys.executable, "-m", "orchestrator.cli", *argv], cwd=cwd, env={**clean, **(env or {})},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                            **kwargs)


def finish(proc: subprocess.Popen, timeout: float = 300) -> tuple[int, str]:
    """Exit code and stderr; a process still running after `timeout` has its group killed and fails the test."""
    try:
        _, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        _, err = proc.communicate()
        pytest.fail(f"asym did not finish in {timeout} s:\n{err[-3000:]}")
    return proc.returncode, err


def wait_for(condition, timeout: float, what: str, proc: subprocess.Popen | None = None, every: float = 0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"asym exited ({proc.returncode}) while waiting for {what}:\n{proc.communicate()[1][-3000:]}")
        time.sleep(every)
    pytest.fail(f"timed out waiting for {what}")


def runs_of(client, kind: str) -> list:
    try:
        exp = client.get_experiment_by_name(names.experiment_name())
        if exp is None:
            return []
        return list(client.search_runs([exp.experiment_id], f"tags.`{names.TAG_KIND}` = '{kind}'"))
    except Exception:  # the store is being created
        return []


def steps_exactly_once(client, run, steps: int) -> None:
    """Every metric's steps logged once; training metrics at 1..steps, evaluation at 0 and ``steps``."""
    for key in run.data.metrics:
        logged = [m.step for m in client.get_metric_history(run.info.run_id, key)]
        assert len(logged) == len(set(logged)), f"{run.info.run_name}: {key} has duplicate steps"
    entropy = sorted(m.step for m in client.get_metric_history(run.info.run_id, M.ENTROPY))
    assert entropy == list(range(1, steps + 1)), f"{run.info.run_name}: entropy steps {entropy}"
    evals = {m.step for m in client.get_metric_history(run.info.run_id, M.EVAL_MEAN_ACCURACY)}
    assert {0, steps} <= evals, run.info.run_name


def check_resumed_sweep(client, finished_before: dict, n_trials: int, steps: int) -> None:
    """After `asym sweep resume`: every trial FINISHED with each step once, the ones that had finished
    before (run id -> end time) untouched, and the sweep's parent run FINISHED."""
    trials = runs_of(client, names.KIND_TRIAL)
    assert len(trials) == n_trials and {r.info.status for r in trials} == {"FINISHED"}
    for run in trials:
        steps_exactly_once(client, run, steps)
        if run.info.run_id in finished_before:
            assert run.info.end_time == finished_before[run.info.run_id], f"{run.info.run_name} was run again"
    (parent,) = runs_of(client, names.KIND_SWEEP)
    assert parent.info.status == "FINISHED"
