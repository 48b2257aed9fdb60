"""orchestrator.tracking against real MLflow stores: run identity by trial key, no duplicate steps,
and batched logging that survives a real `mlflow server` stopped and restarted mid-logging."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from experiments.spec import TrialSpec
from orchestrator import tracking, trial_run
from orchestrator.sweep_note import SweepNote
from experiments import tracking_names as names
from common.errors import UserError
from common.net import free_port
from orchestrator.mlflow_server import LocalServer

REPO = Path(__file__).resolve().parents[1]


def _trial(name: str = "asym-ap1-an0.5-s0", seed: int = 0) -> TrialSpec:
    return TrialSpec(study="grid", name=name, label="AsymGRPO (1, 0.5)", estimator="asym", alpha_pos=1.0,
                     alpha_neg=0.5, seed=seed, steps=20, settings=(("lr", 1e-4), ("tiers", (1, 2))))


@pytest.fixture(scope="module")
def sqlite_client(tmp_path_factory):
    """One sqlite store for the module (creating its schema costs seconds); tests use distinct sweeps."""
    root = tmp_path_factory.mktemp("store")
    client = tracking.make_client(f"sqlite:///{root / 'mlflow.db'}")
    return client, tracking.ensure_experiment(client, (root / "artifacts").as_uri())


def _steps(client, run_id: str, key: str) -> list[int]:
    return sorted(m.step for m in client.get_metric_history(run_id, key))


def test_trial_run_is_found_again_by_key_and_never_logs_a_step_twice(sqlite_client):
    client, exp = sqlite_client
    parent = tracking.open_sweep_run(client, exp, sweep="s1", study="grid", params={"trials": 1})
    trial = _trial()
    first = trial_run.TrialRun.open(client, exp, trial, sweep="s1", parent_run_id=parent)
    for step in range(0, 6):
        first.log_step(step, {"train/entropy": 1.0 + step, "eval/mean_accuracy": 0.1 * step})
    first.buffer.flush()
    # the process dies here (no close): a retry re-opens the run and re-reports steps 3..8
    again = trial_run.TrialRun.open(client, exp, trial, sweep="s1", parent_run_id=parent)
    assert again.run_id == first.run_id
    assert again.last_step() == 5
    for step in range(3, 9):
        again.log_step(step, {"train/entropy": 100.0 + step, "eval/mean_accuracy": 0.5})
    again.close("FINISHED")

    run = client.get_run(first.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.tags[names.PARENT_RUN_ID] == parent
    assert run.data.tags[names.TAG_TRIAL_KEY] == trial.key
    assert run.data.params["alpha_pos"] == "1.0" and run.data.params["cfg.lr"] == "0.0001"
    assert _steps(client, first.run_id, "train/entropy") == list(range(9))
    values = {m.step: m.value for m in client.get_metric_history(first.run_id, "train/entropy")}
    assert values[5] == 6.0 and values[6] == 106.0  # kept the first attempt's logged steps
    # the same trial in another sweep is another run; the sweep's parent is found again
    other = trial_run.TrialRun.open(client, exp, trial, sweep="s2", parent_run_id=None)
    assert other.run_id != first.run_id
    assert tracking.open_sweep_run(client, exp, sweep="s1", study="grid") == parent
    assert again.is_complete(8) is False  # status seen at open was RUNNING
    assert trial_run.TrialRun.open(client, exp, trial, sweep="s1", parent_run_id=parent).is_complete(8)


def test_standalone_runs_are_tagged_and_never_reused(sqlite_client):
    client, exp = sqlite_client
    a = trial_run.TrialRun.open(client, exp, _trial(), sweep=None, parent_run_id=None)
    b = trial_run.TrialRun.open(client, exp, _trial(), sweep=None, parent_run_id=None)
    assert a.run_id != b.run_id
    tags = client.get_run(a.run_id).data.tags
    assert tags[names.TAG_KIND] == tracking.KIND_STANDALONE and names.PARENT_RUN_ID not in tags


def test_metric_buffer_batches_and_skips_nan(sqlite_client, monkeypatch):
    client, exp = sqlite_client
    run = trial_run.TrialRun.open(client, exp, _trial(), sweep="batching", parent_run_id=None, flush_every_s=3600)
    calls = []
    real = client.log_batch
    monkeypatch.setattr(client, "log_batch",
                        lambda *a, **k: (calls.append(len(k.get("metrics", ()))), real(*a, **k))[1])
    for step in range(1, 1001):
        run.log_step(step, {"a": step, "b": float("nan")})
    assert calls == []  # nothing sent before the interval
    run.buffer.flush()
    assert calls == [tracking.MAX_METRICS_PER_BATCH, 1000 - tracking.MAX_METRICS_PER_BATCH]
    assert _steps(client, run.run_id, "a") == list(range(1, 1001))
    assert client.get_metric_history(run.run_id, "b") == []


def test_a_down_http_server_is_a_one_line_user_error():
    uri = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(UserError, match="not reachable") as err:
        tracking.check_tracking_uri(uri)
    assert "\n" not in str(err.value)


def test_down_tracking_server_at_start_exits_2_before_anything_is_written(tmp_path):
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{free_port()}"}
    for argv in (["sweep", "isolation", "--smoke", "--steps", "2"], ["train", "--estimator", "grpo", "--steps", "2"]):
        proc = subprocess.run([sys.executable, "-m", "orchestrator.cli", *argv], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 2, proc.stderr
        assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("error: MLflow tracking server")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_logging_survives_a_server_restart_on_the_same_port(tmp_path):
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    artifacts = (tmp_path / "artifacts").as_uri()
    port = free_port()
    server = LocalServer.start(store, artifacts, tmp_path / "server.log", port=port)
    try:
        server.wait_ready()
        client = tracking.make_client(server.uri)
        exp = tracking.ensure_experiment(client, artifacts)
        run = trial_run.TrialRun.open(client, exp, _trial(), sweep="s", parent_run_id=None,
                                     flush_every_s=0.0, deadline_s=120)
        for step in range(0, 10):
            run.log_step(step, {"train/entropy": float(step), "train/reward_mean": step / 10})
        assert run.buffer.pending == []  # flushed as it went
        server.stop()
        assert not tracking.server_is_up(server.uri)
        started = time.monotonic()
        for step in range(10, 30):  # the server is down: steps are buffered, training is not blocked
            run.log_step(step, {"train/entropy": float(step), "train/reward_mean": step / 10})
        assert time.monotonic() - started < 15
        assert len(run.buffer.pending) == 40 and run.buffer.failures >= 1
        server = LocalServer.start(store, artifacts, tmp_path / "server.log", port=port)
        run.close("FINISHED")  # blocks: retries with backoff until the restarted server answers
        assert run.buffer.pending == []
        for key in ("train/entropy", "train/reward_mean"):
            assert _steps(client, run.run_id, key) == list(range(30))
        assert client.get_run(run.run_id).info.status == "FINISHED"
    finally:
        server.stop()


def test_flush_gives_up_loudly_after_the_deadline(tmp_path):
    client = tracking.make_client(f"http://127.0.0.1:{free_port()}")
    buffer = trial_run.MetricBuffer(client, "0" * 32, deadline_s=1.0)
    buffer.add(1, {"x": 1.0})
    with pytest.raises(tracking.TrackingError, match="did not accept 1 metrics"):
        buffer.flush(block=True)
    assert len(buffer.pending) == 1  # nothing dropped


# --- the UI a user opens, and secrets ------------------------------------------------------------


def test_redact_hides_user_and_password_only():
    assert tracking.redact("https://alice:pw@mlflow.example.org:8443/x?y=1") == "https://***@mlflow.example.org:8443/x?y=1"
    assert tracking.redact("http://token@10.0.0.1:5000") == "http://***@10.0.0.1:5000"
    for plain in ("http://127.0.0.1:5000", "sqlite:////tmp/a.db", "databricks"):
        assert tracking.redact(plain) == plain


def test_experiment_opens_on_training_runs_with_the_trials_view(sqlite_client):
    import json

    client, exp = sqlite_client
    tags = client.get_experiment(exp).tags
    assert tags[names.EXPERIMENT_KIND] == "custom_model_development"
    view = json.loads(tags[names.SHARED_VIEW_PREFIX + names.TRIALS_VIEW])
    assert {f"params.`{p}`" for p in ("label", "estimator", "alpha_pos", "alpha_neg", "seed", "model")} <= set(view["selectedColumns"])
    assert view["groupBy"]["groupByKeys"] == [{"mode": "tag", "groupByData": names.TAG_SWEEP}]
    client.set_experiment_tag(exp, names.EXPERIMENT_KIND, "genai_development")  # an older store, or a user's edit
    assert tracking.ensure_experiment(client) == exp
    assert client.get_experiment(exp).tags[names.EXPERIMENT_KIND] == "custom_model_development"
    url = tracking.trials_view_url("http://u:p@127.0.0.1:5000/", exp)
    assert url == f"http://127.0.0.1:5000/#/experiments/{exp}/runs?viewStateShareKey=asym-trials&workflowType=machine_learning"


def test_sweep_note_lists_every_trial_and_follows_their_status(sqlite_client):
    client, exp = sqlite_client
    parent = tracking.open_sweep_run(client, exp, sweep="noted", study="grid",
                                     params={"command": "asym sweep grid --smoke"})
    a, b = _trial("asym-ap1-an0.5-s0", seed=0), _trial("asym-ap1-an0.5-s1", seed=1)
    note = SweepNote(client, exp, parent, sweep="noted", study="grid", planned=[a.name, b.name], every_s=3600)
    assert note.update()
    text = client.get_run(parent).data.tags[names.NOTE]
    assert "study `grid`, 2 trials (2 pending)" in text and "Command: `asym sweep grid --smoke`" in text
    run = trial_run.TrialRun.open(client, exp, a, sweep="noted", parent_run_id=parent)
    assert client.get_run(run.run_id).info.run_name == "AsymGRPO (1, 0.5) s0"
    run.log_step(20, {"eval/mean_accuracy": 0.625})
    run.close("FINISHED")
    note.stop("FINISHED")
    text = client.get_run(parent).data.tags[names.NOTE]
    assert "(1 finished, 1 pending); sweep finished" in text
    assert "| AsymGRPO (1, 0.5) s0 | FINISHED | 0.625 |" in text and f"| {b.name} | PENDING | - |" in text


def test_servers_listen_on_loopback_unless_asked():
    from common.net import is_loopback
    from orchestrator.mlflow_server import server_command

    command = server_command("sqlite:////tmp/x.db", "file:///tmp/a", 5000)
    assert command[command.index("--host") + 1] == "127.0.0.1"
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("10.1.2.3")


def test_ui_on_a_non_loopback_host_warns_that_mlflow_has_no_authentication(tmp_path):
    import signal

    store = tmp_path / ".asym" / "mlflow"
    store.mkdir(parents=True)
    tracking.ensure_experiment(tracking.make_client(f"sqlite:///{store / 'mlflow.db'}"))
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    proc = subprocess.Popen([sys.executable, "-m", "orchestrator.cli", "ui", "--host", "0.0.0.0", "--port", str(free_port())],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        warning = proc.stderr.readline()
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    assert warning.startswith("warning: listening on 0.0.0.0: MLflow has no authentication")
    assert "mlflow server --app-name basic-auth" in warning
