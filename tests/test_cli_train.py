"""`asym train`: one real smoke trial on the embedded engine with --metrics-out and a local MLflow
store; bad input checked before training (exit 2, one line, nothing written); the metrics file is
complete or absent."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from common import metric_names as M
from experiments import tracking_names as names
from orchestrator import tracking
from orchestrator.cli import main
from common.errors import UserError
from orchestrator.single import MetricsFile


def _asym(argv, cwd: Path):
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    return subprocess.run([sys.executable, "-m", "orchestrator.cli", *argv], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def test_smoke_trial_writes_every_step_and_one_tracked_run(tmp_path):
    steps = 6
    proc = _asym(["train", "--backend", "embedded", "--estimator", "asym", "--alpha-pos", "0.9", "--alpha-neg", "0.4",
                  "--steps", str(steps), "--seed", "1", "--smoke", "--metrics-out", "m.jsonl"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = [json.loads(line) for line in (tmp_path / "m.jsonl").read_text().splitlines()]
    assert [line["step"] for line in lines] == list(range(steps + 1))
    assert M.EVAL_MEAN_ACCURACY in lines[0] and M.EVAL_MEAN_ACCURACY in lines[-1]
    for line in lines[1:]:
        assert set(M.TRAIN_METRICS) <= set(line)
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []

    client = tracking.make_client(f"sqlite:///{tmp_path / '.asym' / 'mlflow' / 'mlflow.db'}")
    exp = client.get_experiment_by_name(names.EXPERIMENT)
    (run,) = client.search_runs([exp.experiment_id])
    assert run.info.status == "FINISHED"
    assert run.data.tags[names.TAG_KIND] == tracking.KIND_STANDALONE
    assert run.data.params["alpha_pos"] == "0.9" and run.data.params["seed"] == "1"
    history = client.get_metric_history(run.info.run_id, M.REWARD_MEAN)
    assert sorted(m.step for m in history) == list(range(1, steps + 1))
    by_step = {m.step: m.value for m in history}
    assert all(abs(by_step[line["step"]] - line[M.REWARD_MEAN]) < 1e-9 for line in lines[1:])


BAD = [
    (["--estimator", "nope", "--steps", "3"], "unknown estimator 'nope'"),
    (["--estimator", "asym", "--alpha-pos", "-1", "--steps", "3"], "alpha_pos must be a finite number >= 0"),
    (["--estimator", "asym", "--alpha-neg", "inf", "--steps", "3"], "alpha_neg must be a finite number >= 0"),
    (["--estimator", "grpo", "--alpha-pos", "2", "--steps", "3"], "fixes alpha_pos"),
    (["--estimator", "grpo", "--steps", "0"], "--steps must be an integer >= 1"),
    (["--estimator", "grpo", "--steps", "3", "--seed", "-2"], "--seed must be >= 0"),
    (["--estimator", "grpo", "--steps", "3", "--metrics-out", "no/such/dir/m.jsonl"], "does not exist"),
    (["--estimator", "grpo", "--steps", "3", "--metrics-out", "."], "is a directory"),
]


@pytest.mark.parametrize("argv,message", BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_input_is_rejected_before_training(argv, message, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    with pytest.raises(SystemExit) as info:
        main(["train", *argv])
    err = capsys.readouterr().err
    assert info.value.code == 2 and err.count("\n") == 1 and message in err, err
    assert list(tmp_path.iterdir()) == []


def test_unwritable_metrics_directory_is_a_user_error(tmp_path):
    # Places no one can write to, root included (CI runs as root): procfs, and a path through a file.
    with pytest.raises(UserError, match="cannot write in /proc"):
        MetricsFile(Path("/proc/asym-metrics.jsonl"))
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    with pytest.raises(UserError, match="does not exist"):
        MetricsFile(blocker / "m.jsonl")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["not-a-dir"]


def test_metrics_file_is_complete_or_absent(tmp_path):
    target = tmp_path / "m.jsonl"
    out = MetricsFile(target)
    out.write(0, {"eval/mean_accuracy": 0.5})
    assert not target.exists()  # nothing at the target until the run ends
    out.discard()
    assert list(tmp_path.iterdir()) == []
    out = MetricsFile(target)
    out.write(0, {"a": 1.0})
    out.write(1, {"a": 2.0})
    out.commit()
    assert [json.loads(x) for x in target.read_text().splitlines()] == [{"step": 0, "a": 1.0}, {"step": 1, "a": 2.0}]
    assert list(tmp_path.iterdir()) == [target]
