"""`asym sweep` parsing and planning, before anything runs: malformed input is one line on stderr,
exit 2 and nothing written; --dry-run prints the plan; the command line handed to a cluster is the
same plan. No Ray or MLflow starts in these tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import click
import pytest
import typer.main

from orchestrator.cli import main
from orchestrator.commands.sweep import _argv_without_cluster, app

MALFORMED = [
    (["sweep", "grid", "--alpha-pos", "1,a"], "'a' is not a number"),
    (["sweep", "grid", "--alpha-pos", ""], "--alpha-pos needs comma-separated numbers"),
    (["sweep", "grid", "--alpha-neg", "0,-0.5"], "must be >= 0"),
    (["sweep", "grid", "--alpha-pos", "0,inf"], "must be finite"),
    (["sweep", "grid", "--alpha-neg", "nan"], "must be finite"),
    (["sweep", "nosuchstudy"], "unknown study 'nosuchstudy'"),
    (["sweep", "isolation", "--seeds", "0,x"], "'x' is not an integer"),
    (["sweep", "isolation", "--seeds", "-1"], "seeds must be >= 0"),
    (["sweep", "isolation", "--steps", "0"], "--steps must be an integer >= 1"),
    (["sweep", "isolation", "--alpha-pos", "1"], "apply to 'grid'"),
    (["sweep", "isolation", "--config", "missing.yaml"], "does not exist"),
    (["sweep", "isolation", "--config", "bad.yaml"], "not valid YAML"),
    (["sweep", "isolation", "--config", "wrong_key.yaml"], "no_such_key"),
    (["sweep", "isolation", "--config", "wrong_type.yaml"], "lr"),
    (["sweep", "isolation", "--max-concurrent", "0"], "--max-concurrent must be >= 1"),
    (["sweep", "isolation", "--name", "a/b"], "sweep name"),
    (["sweep", "optuna", "--alpha-pos-range", "1,0"], "two increasing numbers"),
    (["sweep", "optuna", "--trials", "0"], "--trials must be >= 1"),
    (["sweep", "optuna", "--seeds", "0,1"], "one --model and one --seeds"),
    (["sweep", "resume", "never-ran"], "no sweep named 'never-ran'"),
    (["sweep", "resume", "never-ran", "--storage", "shared"], "no sweep named 'never-ran'"),
    (["sweep", "grid", "--storage", "s3://bucket/asym"], "only a mounted folder (a path or file:// URI)"),
    (["sweep", "grid", "--storage", "gs://bucket/asym"], "not gs://"),
    (["sweep", "grid", "--storage", "/no/such/mount/asym"], "is the share mounted?"),
    (["sweep", "grid", "--storage", "file://host/asym"], "names a local path"),
    (["sweep", "grid", "--storage", "bad.yaml"], "not a folder"),
    (["sweep", "grid", "--storage", ""], "--storage needs a folder"),
    (["sweep", "status", "x", "--storage", "s3://b/x"], "only a mounted folder"),
    (["report", "x", "--storage", "s3://b/x"], "only a mounted folder"),
]


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    (tmp_path / "bad.yaml").write_text("lr: [1, 2\n")
    (tmp_path / "wrong_key.yaml").write_text("no_such_key: 1\n")
    (tmp_path / "wrong_type.yaml").write_text("lr: fast\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return tmp_path


def _run(argv, capsys) -> tuple[int, str, str]:
    try:
        main(argv)
        code = 0
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("argv,message", MALFORMED, ids=[" ".join(a[1:]) for a, _ in MALFORMED])
def test_malformed_input_is_one_line_exit_2_and_writes_nothing(argv, message, workdir, capsys):
    code, out, err = _run(argv, capsys)
    assert code == 2
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert message in err
    assert not (workdir / ".asym").exists()


def test_malformed_input_through_the_installed_command(tmp_path):
    """The same contract from a real process: the `asym` console script in an empty directory."""
    asym = Path(sys.executable).with_name("asym")
    for argv in (["sweep", "grid", "--alpha-pos", "1,a"], ["sweep", "bogus", "--smoke"]):
        proc = subprocess.run([str(asym), *argv], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                              env={k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"})
        assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and proc.stderr.startswith("error: ")
    assert list(tmp_path.iterdir()) == []


def test_dry_run_json_is_the_users_grid(workdir, capsys):
    code, out, err = _run(["sweep", "grid", "--alpha-pos", "0,1,2,3", "--alpha-neg", "0,0.5,1", "--steps", "40",
                           "--seeds", "0,1", "--dry-run", "--json"], capsys)
    assert code == 0, err
    rows = json.loads(out)
    assert len(rows) == 4 * 3 * 2
    for row in rows:
        assert {"name", "estimator", "alpha_pos", "alpha_neg", "seed", "backend", "key"} <= set(row)
        assert row["backend"] == "embedded" and row["steps"] == 40 and row["estimator"] == "asym"
    cells = {(r["alpha_pos"], r["alpha_neg"], r["seed"]) for r in rows}
    assert cells == {(a, b, s) for a in (0, 1, 2, 3) for b in (0, 0.5, 1) for s in (0, 1)}
    assert len({r["name"] for r in rows}) == len(rows) and len({r["key"] for r in rows}) == len(rows)
    assert not (workdir / ".asym").exists()


def test_dry_run_table_names_the_sweep_and_every_trial(workdir, capsys):
    code, out, _ = _run(["sweep", "isolation", "--dry-run", "--smoke"], capsys)
    assert code == 0
    assert "sweep isolation-" in out
    for name in ("reinforce-s0", "pos-only-ap0.5-s0", "neg-only-an0.5-s0", "reinforce-ent0.01-s0"):
        assert name in out


def test_default_sweep_name_is_deterministic_and_tracks_the_plan(workdir, capsys):
    names = []
    for alphas in ("0,1", "0,1", "0,2"):
        code, out, _ = _run(["sweep", "grid", "--alpha-pos", alphas, "--dry-run"], capsys)
        assert code == 0
        names.append(next(w for w in out.split() if w.startswith("grid-")).rstrip(":"))
    assert names[0] == names[1] != names[2]


def test_optuna_dry_run_shows_the_template_and_ranges(workdir, capsys):
    code, out, err = _run(["sweep", "optuna", "--alpha-pos-range", "0,2", "--trials", "5", "--dry-run", "--smoke"], capsys)
    assert code == 0, err
    assert "5 Optuna trial(s)" in out and "[0.0, 2.0]" in out


def test_cluster_argv_is_the_same_plan_without_cluster_options():
    group = typer.main.get_command(app)
    parent = click.Context(group, info_name="sweep")
    command = group.get_command(parent, "grid")
    argv = ["--alpha-pos", "0,1", "--alpha-neg", "0.5", "--steps", "5", "--smoke", "--seeds", "0,1",
            "--scheduler", "asha", "--cpus-per-trial", "2", "--cluster", "cluster/onprem.yaml"]
    ctx = command.make_context("grid", list(argv), parent=parent)
    rebuilt = _argv_without_cluster(ctx)
    assert rebuilt[:2] == ["sweep", "grid"] and "--cluster" not in rebuilt and "--address" not in rebuilt
    again = command.make_context("grid", rebuilt[2:], parent=parent)
    assert {k: v for k, v in again.params.items() if k != "cluster"} == {k: v for k, v in ctx.params.items() if k != "cluster"}


def test_ui_without_a_store_is_a_one_line_error(workdir, capsys):
    code, _, err = _run(["ui", "--port", "5999"], capsys)
    assert code == 2 and err.count("\n") == 1 and "no MLflow store" in err
    assert not (workdir / ".asym").exists()


@pytest.mark.slow
def test_ui_serves_the_local_store_on_loopback(tmp_path):
    """`asym ui` answers on 127.0.0.1 for the store of the working directory (a run made here)."""
    import signal
    import time
    import urllib.request

    from orchestrator import tracking
    from common.net import free_port

    store = tmp_path / ".asym" / "mlflow"
    store.mkdir(parents=True)
    client = tracking.make_client(f"sqlite:///{store / 'mlflow.db'}")
    run = client.create_run(tracking.ensure_experiment(client), run_name="visible")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    proc = subprocess.Popen([sys.executable, "-m", "orchestrator.cli", "ui", "--port", str(port)], cwd=tmp_path,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while not tracking.server_is_up(f"http://127.0.0.1:{port}"):
            assert proc.poll() is None and time.monotonic() < deadline, "asym ui did not come up"
            time.sleep(0.5)
        url = f"http://127.0.0.1:{port}/api/2.0/mlflow/runs/get?run_id={run.info.run_id}"
        with urllib.request.urlopen(url, timeout=10) as response:
            assert json.loads(response.read())["run"]["info"]["run_name"] == "visible"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


def test_a_trial_needing_a_resource_the_cluster_lacks_is_refused_not_left_pending():
    """A verl trial over several nodes holds admission units the head declares; on a cluster without
    them Tune would keep it pending forever. CPUs and GPUs are not checked (an autoscaler adds nodes)."""
    from experiments.parse import parse_set
    from experiments.plan import plan
    from orchestrator.sweep_launch import check_declared_resources, resources_of as _resources_of
    from orchestrator.sweep_state import SweepOptions
    from common.errors import UserError

    (trial,) = plan("grid", backend="verl", models=["cpu-tiny"], alpha_pos=[1.0], alpha_neg=[1.0],
                    axes=(parse_set("nnodes=2"),))
    needs = _resources_of([trial], SweepOptions(study="grid", name="x"))
    assert needs[trial.name] == {"CPU": 1.0, "asym_gpu_slot": 2.0, "asym_verl_job": 1.0}
    with pytest.raises(UserError, match=r"needs 2 asym_gpu_slot, which this Ray cluster declares 0 of.*ray start --head"):
        check_declared_resources(needs, {"CPU": 2.0})
    with pytest.raises(UserError, match="needs 1 asym_verl_job"):
        check_declared_resources(needs, {"CPU": 2.0, "asym_gpu_slot": 8.0})
    check_declared_resources(needs, {"CPU": 0.0, "asym_gpu_slot": 2.0, "asym_verl_job": 1.0})
    check_declared_resources({"t": {"CPU": 64.0, "GPU": 8.0}}, {"CPU": 2.0})  # nodes may come later
