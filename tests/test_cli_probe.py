"""`asym probe prop1`: a real run on the smoke base with the local MLflow sqlite store (CSV columns,
one parent run and a child per seed, artifacts), and bad input rejected before anything is written."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest

from estimators.registry import ESTIMATORS, Estimator, Lazy
from experiments import tracking_names as names
from orchestrator import tracking
from orchestrator.cli import main
from orchestrator.probe import COLUMNS, KIND_PROBE

REQUIRED = ("seed", "step", "method", "optimizer", "control", "predicted_dh", "predicted_dh_linear", "measured_dh_batch",
            "measured_dh_probe")


def _asym(argv, cwd: Path):
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    return subprocess.run([sys.executable, "-m", "orchestrator.cli", *argv], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600)


def test_smoke_probe_writes_the_csv_the_report_and_one_parent_with_a_child_per_seed(tmp_path):
    proc = _asym(["probe", "prop1", "--smoke", "--seeds", "3,4", "--at", "0,2", "--steps", "4", "--methods",
                  "grpo,pos-only,neg-only,asym:0.9:0.4", "--optimizers", "sgd,adamw", "--out", "out"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = tmp_path / "out"
    assert {"probe.csv", "probe.png", "probe_probe_set.png", "agreement.md"} <= {p.name for p in out.iterdir()}
    with open(out / "probe.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert set(REQUIRED) <= set(rows[0]) and tuple(rows[0]) == COLUMNS
    # REINFORCE joins as the reference: 5 methods x 2 optimizers x 2 controls x 2 steps x 2 seeds
    assert len(rows) == 5 * 2 * 2 * 2 * 2
    assert {(r["seed"], r["step"]) for r in rows} == {(s, t) for s in ("3", "4") for t in ("0", "2")}
    reference = [r for r in rows if r["estimator"] == "reinforce"]
    assert all(float(r["measured_dh_batch"]) == 0.0 and float(r["predicted_dh"]) == 0.0 for r in reference)
    others = [r for r in rows if r["estimator"] != "reinforce"]
    assert any(float(r["measured_dh_batch"]) != 0.0 for r in others)
    # the prediction does not depend on the optimizer; centring leaves it unchanged (Cov is shift-invariant)
    by_key = {(r["seed"], r["step"], r["method"], r["optimizer"], r["control"]): float(r["predicted_gap_per_eta"])
              for r in others}
    for (seed, step, method, _, _), value in by_key.items():
        for opt in ("sgd", "adamw"):
            for control in ("none", "center_groups"):
                assert by_key[(seed, step, method, opt, control)] == pytest.approx(value, rel=1e-5, abs=1e-9)  # float32 advantages
    assert "sign (exact)" in (out / "agreement.md").read_text()

    client = tracking.make_client(f"sqlite:///{tmp_path / '.asym' / 'mlflow' / 'mlflow.db'}")
    exp = client.get_experiment_by_name(names.EXPERIMENT)
    runs = client.search_runs([exp.experiment_id])
    assert all(r.data.tags[names.TAG_KIND] == KIND_PROBE and r.info.status == "FINISHED" for r in runs)
    (parent,) = [r for r in runs if names.PARENT_RUN_ID not in r.data.tags]
    children = [r for r in runs if r.data.tags.get(names.PARENT_RUN_ID) == parent.info.run_id]
    assert sorted(r.data.params["seed"] for r in children) == ["3", "4"]
    history = client.get_metric_history(children[0].info.run_id, "probe/sgd/none/Pos-Only/measured_dh_batch")
    assert sorted(m.step for m in history) == [0, 2]
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"probe.csv", "agreement.md", "probe.png"} <= artifacts


BAD = [
    (["--methods", "reinforce,nope"], "unknown estimator 'nope'"),
    (["--methods", "asym:0.9"], "write name or name:alpha+:alpha-"),
    (["--optimizers", "sgd,lbfgs"], "unknown optimizer 'lbfgs'"),
    (["--controls", "none,shift"], "unknown control 'shift'"),
    (["--at", "0,10"], "--at steps must be in 0..9"),
    (["--at", "0,5", "--steps", "5"], "--at steps must be in 0..4"),
    (["--at", "x"], "--at must be comma-separated integers"),
    (["--seeds", "1,1"], "--seeds must be distinct integers >= 0"),
    (["--model", "qwen3-4b"], "not an embedded preset"),
    (["--sgd-lr", "0"], "--sgd-lr must be > 0"),
    (["--warmup-seed", "-1"], "--warmup-seed must be >= 0"),
    (["--methods", "needs-values"], "which the probe does not have"),
    (["--out", "no/such/dir/out"], "does not exist"),
]


@pytest.mark.parametrize("argv,message", BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_input_is_one_line_exit_2_and_nothing_written(argv, message, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    # an estimator that needs an input no backend offers the probe (a user's, say)
    monkeypatch.setitem(ESTIMATORS, "needs-values", Estimator("needs-values", Lazy("estimators.advantages", "grpo"),
                                                              "NeedsValues", 0.5, 0.5, (), inputs=("value_estimate",)))
    args = ["probe", "prop1", "--smoke", *argv]
    if "--at" not in argv:
        args += ["--at", "0,5"]
    if "--out" not in argv:
        args += ["--out", "out"]
    with pytest.raises(SystemExit) as info:
        main(args)
    err = capsys.readouterr().err
    assert info.value.code == 2 and err.count("\n") == 1 and message in err, err
    assert list(tmp_path.iterdir()) == []


def test_out_that_is_a_file_is_rejected_and_left_alone(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    (tmp_path / "taken").write_text("mine")
    with pytest.raises(SystemExit) as info:
        main(["probe", "prop1", "--smoke", "--at", "0,5", "--out", "taken"])
    assert info.value.code == 2 and "is a file" in capsys.readouterr().err
    assert [p.name for p in tmp_path.iterdir()] == ["taken"] and (tmp_path / "taken").read_text() == "mine"
