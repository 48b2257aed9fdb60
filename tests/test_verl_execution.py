"""``VerlBackend.run`` end to end on the CPU, with verl's trainer replaced by a script that logs
through verl's real ``Tracking`` file logger (tests/fixtures/verl/fake_verl.py).

Checked: the environment handed to verl (MLflow run, runtime env vars, file logger path), one
metrics file per attempt, metrics streamed and mapped to the shared names, a retried attempt that
resumes at a checkpointed step reports only the steps after it, and loud failures when verl exits
non-zero, logs nothing, or stops early.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import pytest

pytest.importorskip("verl")

from common import metric_names as names  # noqa: E402
from experiments.plan import plan  # noqa: E402
from backends.verl import VerlBackend  # noqa: E402
from backends.verl.execution import trial_env, verl_runtime_env_vars  # noqa: E402
from backends.verl.render import RenderPaths  # noqa: E402
from common.errors import UserError  # noqa: E402

FAKE = Path(__file__).parent / "fixtures" / "verl" / "fake_verl.py"
ENV = {"MLFLOW_RUN_ID": "0123abcd", "MLFLOW_TRACKING_URI": "sqlite:////tmp/none.db", "PATH": "/usr/bin"}


@pytest.fixture()
def trial():
    return dataclasses.replace(plan("main", backend="verl", models=["qwen3-4b"])[-1], steps=4)


def backend(*argv: str) -> VerlBackend:
    return VerlBackend(paths=RenderPaths("/data", "/ckpt"), entrypoint=[sys.executable, *argv], poll_s=0.2,
                       environ=ENV)


def test_environment_handed_to_verl(tmp_path):
    env = trial_env(tmp_path / "m.jsonl", ENV)
    assert env["MLFLOW_RUN_ID"] == "0123abcd" and env["MLFLOW_TRACKING_URI"].startswith("sqlite")
    assert env["NCCL_CUMEM_ENABLE"] == "0" and env["VERL_FILE_LOGGER_PATH"].endswith("m.jsonl")
    from verl.trainer.constants_ppo import PPO_RAY_RUNTIME_ENV

    assert set(PPO_RAY_RUNTIME_ENV["env_vars"]) <= set(verl_runtime_env_vars())
    with pytest.raises(UserError, match="MLFLOW_RUN_ID"):
        trial_env(tmp_path / "m.jsonl", {"MLFLOW_TRACKING_URI": "x"})


def test_streams_mapped_metrics_and_a_retry_reports_only_new_steps(tmp_path, trial):
    seen: list[tuple[int, dict]] = []
    report = lambda step, metrics: seen.append((step, dict(metrics)))  # noqa: E731
    # attempt 1 dies after step 2 (verl exits non-zero), having logged steps 0..2
    with pytest.raises(RuntimeError, match="exited with code 1"):
        backend(str(FAKE), "0", "2", "1").run(trial, report, tmp_path)
    assert [s for s, _ in seen] == [0, 1, 2]
    assert seen[0][1] == {names.eval_accuracy("math500"): 0.5, names.eval_accuracy("aime24"): 0.1,
                          names.EVAL_MEAN_ACCURACY: pytest.approx(0.3)}
    assert seen[1][1] == {names.KAPPA: 0.01, names.ENTROPY: 0.5, names.CLIP_FRAC: 0.02}
    with (tmp_path / "metrics" / "attempt-1.jsonl").open("ab") as fp:
        fp.write(b'{"step": 3, "data": {"asym/ka')  # the dying process's half-written line
    # attempt 2 resumes from the step-2 checkpoint: verl validates at step 2 again, then 3..4
    backend(str(FAKE), "2", "4").run(trial, report, tmp_path)
    assert [s for s, _ in seen] == [0, 1, 2, 3, 4]
    assert sorted(p.name for p in (tmp_path / "metrics").iterdir()) == ["attempt-1.jsonl", "attempt-2.jsonl"]


def test_fails_loudly_without_metrics_or_when_verl_stops_early(tmp_path, trial):
    with pytest.raises(RuntimeError, match="logged no metrics"):
        backend("-c", "pass").run(trial, lambda *a: None, tmp_path / "silent")
    with pytest.raises(RuntimeError, match="stopped at step 2 of 4"):
        backend(str(FAKE), "0", "2").run(trial, lambda *a: None, tmp_path / "short")


def test_backend_guards_gpus_and_data_before_running(tmp_path, trial):
    b = backend(str(FAKE), "0", "4")
    b.configure_runtime(1.0, 0.0)
    with pytest.raises(UserError, match="needs 4 GPUs.*--gpus-per-trial 4"):
        b.run(trial, lambda *a: None, tmp_path)
    b = VerlBackend(paths=RenderPaths(str(tmp_path / "data"), "/ckpt"))
    with pytest.raises(UserError, match="lacks aime24.parquet.*math_train.parquet.*asym data prepare"):
        b.prepare([trial])
    from backends.verl.data import prepare

    prepare(tmp_path / "data", Path(__file__).parent / "fixtures" / "math")
    b.prepare([trial])  # all six files are there


def test_an_attempt_that_logged_nothing_keeps_its_number_and_verl_is_told_what_was_logged(tmp_path, trial):
    """Ray Job submission ids are used once: attempt 2 is numbered 2 even when attempt 1 died before
    verl logged a line; verl gets the last step earlier attempts logged (LOGGED_THROUGH_ENV)."""
    from backends.verl.execution import LOGGED_THROUGH_ENV, next_attempt

    with pytest.raises(RuntimeError, match="logged no metrics"):
        backend("-c", "pass").run(trial, lambda *a: None, tmp_path)
    assert next_attempt(tmp_path)[0] == 2
    probe = f"import os; open({str(tmp_path / 'seen')!r}, 'w').write(os.environ['{LOGGED_THROUGH_ENV}'])"
    with pytest.raises(RuntimeError):
        backend("-c", probe).run(trial, lambda *a: None, tmp_path)
    assert (tmp_path / "seen").read_text() == "-1"
    with pytest.raises(RuntimeError):
        backend(str(FAKE), "0", "2", "1").run(trial, lambda *a: None, tmp_path)
    with pytest.raises(RuntimeError):
        backend("-c", probe).run(trial, lambda *a: None, tmp_path)
    assert (tmp_path / "seen").read_text() == "2"
    assert sorted(p.name for p in (tmp_path / "metrics").iterdir()) == [f"attempt-{k}.jsonl" for k in range(1, 6)]


def test_verls_loggers_never_see_a_step_an_earlier_attempt_logged(tmp_path, monkeypatch):
    """A resumed verl run re-validates at its checkpoint's step and re-runs the steps after it;
    ``trainer.LoggedOnce`` drops those before verl's own ``Tracking`` (here with its file backend)."""
    from verl.utils.tracking import Tracking

    from backends.verl.trainer import LoggedOnce, logged_through_step

    metrics = tmp_path / "attempt-2.jsonl"
    monkeypatch.setenv("VERL_FILE_LOGGER_PATH", str(metrics))
    logger = LoggedOnce(Tracking(project_name="asym", experiment_name="t", default_backend=["file"]),
                        logged_through_step({"ASYM_VERL_LOGGED_THROUGH_STEP": "2"}))
    logger.log(data={"val-core/x": 1.0}, step=2)  # the re-validation at the checkpoint's step
    for step in (3, 4):
        logger.log(data={"actor/pg_loss": 0.1 * step}, step=step)
    logger.finish()  # verl's other calls reach its Tracking
    assert [json.loads(line)["step"] for line in metrics.read_text().splitlines()] == [3, 4]
    assert logged_through_step({}) == -1


def test_a_job_server_that_does_not_answer_is_one_line_naming_where_its_address_came_from(monkeypatch):
    import socket

    from backends.verl.execution import job_client

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("ASYM_RAY_JOB_ADDRESS", f"http://127.0.0.1:{port}")
    with pytest.raises(RuntimeError) as err:
        job_client()  # Ray's real JobSubmissionClient, refused
    message = str(err.value)
    assert "\n" not in message and f"no Ray Job server at http://127.0.0.1:{port} (from $ASYM_RAY_JOB_ADDRESS)" in message
    assert "asym sweep --cluster FILE" in message, message
