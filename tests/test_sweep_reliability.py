"""`asym sweep` end to end on a real local Ray, a real `mlflow server` and the real embedded engine:
a trial process that dies is retried and finishes; MLflow ends with one FINISHED child run per trial
and no duplicate or missing steps. Each test runs `asym` as a subprocess in its own empty directory.

A SIGKILLed driver resumed by `asym sweep resume` without re-running finished trials is proven in
tests/test_cluster_storage.py (with the orphan server it leaves reaped; reaping by the next command on
a local store: tests/test_faults.py, which also resumes a local sweep after Ctrl-C)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from asym_process import finish, runs_of, start_asym

from common import metric_names as M
from experiments import tracking_names as names

pytestmark = pytest.mark.slow

STEPS = 12  # > the backend's checkpoint cadence (10), so a retry resumes from a checkpoint
SWEEP = ["sweep", "isolation", "--smoke", "--seeds", "0", "--steps", str(STEPS)]


def _client(cwd: Path):
    from mlflow import MlflowClient

    return MlflowClient(f"sqlite:///{cwd / '.asym' / 'mlflow' / 'mlflow.db'}")


def _check_complete_sweep(client, n_trials: int) -> list:
    (parent,) = runs_of(client, names.KIND_SWEEP)
    assert parent.info.status == "FINISHED"
    children = runs_of(client, names.KIND_TRIAL)
    assert len(children) == n_trials
    assert len({c.data.tags[names.TAG_TRIAL_KEY] for c in children}) == n_trials
    for child in children:
        assert child.info.status == "FINISHED", child.info.run_name
        assert child.data.tags[names.PARENT_RUN_ID] == parent.info.run_id
        assert {"estimator", "alpha_pos", "alpha_neg", "seed", "model", "backend"} <= set(child.data.params)
        assert set(M.TRAIN_METRICS) | {M.EVAL_MEAN_ACCURACY} <= set(child.data.metrics), child.info.run_name
        for key in child.data.metrics:
            steps = [m.step for m in client.get_metric_history(child.info.run_id, key)]
            assert len(steps) == len(set(steps)), f"{child.info.run_name}: duplicate steps in {key}"
        entropy_steps = sorted(m.step for m in client.get_metric_history(child.info.run_id, M.ENTROPY))
        assert entropy_steps == list(range(1, STEPS + 1)), child.info.run_name  # nothing lost
        eval_steps = {m.step for m in client.get_metric_history(child.info.run_id, M.EVAL_MEAN_ACCURACY)}
        assert {0, STEPS} <= eval_steps
        cpu = [m.value for m in sorted(client.get_metric_history(child.info.run_id, M.COST_CPU_SECONDS), key=lambda m: m.step)]
        assert len(cpu) == STEPS and cpu == sorted(cpu) and cpu[-1] > 0  # the ledger: cumulative, every step
        assert child.data.metrics[M.COST_GPU_SECONDS] == 0.0  # no GPU reserved on this machine
    # the parent's totals are the sum of the trials' bills
    parent = client.get_run(parent.info.run_id)
    total = sum(c.data.metrics[M.COST_CPU_SECONDS] for c in children) / 3600
    assert abs(parent.data.metrics["cost/cpu_hours"] - total) < 1e-9
    return children




def test_isolation_smoke_sweep_with_a_trial_killed_once(tmp_path):
    """A small real sweep end to end; one trial's process dies at step 11 (after its step-10
    checkpoint) on its first attempt: Tune retries it, it resumes, and the sweep completes."""
    victim = "pos-only-ap0.5-s0"
    proc = start_asym([*SWEEP, "--name", "iso"], tmp_path, env={"ASYM_TEST_CRASH_AT": f"{victim}:11"})
    code, err = finish(proc, timeout=420)
    assert code == 0, err[-3000:]
    children = _check_complete_sweep(_client(tmp_path), n_trials=4)
    assert {c.data.tags[names.TAG_TRIAL] for c in children} == {"reinforce-s0", "reinforce-ent0.01-s0", victim,
                                                                  "neg-only-an0.5-s0"}
    assert all(c.info.run_name.endswith(" s0") for c in children)  # "<label> s<seed>"
    crashed = [p for p in (tmp_path / ".asym" / "trials" / "iso").glob("*/crashed-once")]
    assert len(crashed) == 1  # the hook fired once, in the victim's work directory
    assert "4/4 trials done" in err
    status = subprocess.run([sys.executable, "-m", "orchestrator.cli", "sweep", "status", "iso"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    assert status.returncode == 0, status.stderr
    assert "4 of 4 trials started" in status.stdout and "Pos-Only" in status.stdout and "total" in status.stdout


def test_resume_of_an_unknown_sweep_is_a_one_line_error(tmp_path):
    code, err = finish(start_asym(["sweep", "resume", "nope"], tmp_path), timeout=60)
    assert code == 2 and err.count("\n") == 1 and "no sweep named 'nope'" in err
    assert not (tmp_path / ".asym").exists()
