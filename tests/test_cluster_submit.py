"""A sweep submitted as a Ray Job to a real head on this machine (`ray start --head` on 127.0.0.1 with its
dashboard and token authentication, cluster.local_sim.local_head) with a real `mlflow server`: the
same `asym sweep isolation --smoke` runs on the head, joins the cluster, and its parent run and one
finished child run per trial land in MLflow; `asym sweep logs --follow` and `asym cluster status`
read it back; the MLflow token is passed by name only, so its value is in no runtime env, log or
MLflow param. Every client call runs in a subprocess, as a user's shell would (Ray's auth mode is
per process).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ASYM = str(Path(sys.executable).with_name("asym"))
SECRET = f"tok-{uuid.uuid4().hex}"  # the MLflow token: set here and on the head, never sent
EXPERIMENT = f"asym-cluster-test-{uuid.uuid4().hex[:6]}"


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """(head, tracking URI, client environment)."""
    from cluster.local_sim import local_head
    from orchestrator.mlflow_server import LocalServer

    tmp = tmp_path_factory.mktemp("submit")
    server = LocalServer.start(f"sqlite:///{tmp / 'mlflow.db'}", (tmp / "artifacts").as_uri(), tmp / "mlflow.log")
    try:
        with local_head(num_cpus=2, head_env={"MLFLOW_TRACKING_TOKEN": SECRET}) as head:
            server.wait_ready()
            env = {**os.environ, **head.client_env, "MLFLOW_TRACKING_URI": server.uri, "MLFLOW_TRACKING_TOKEN": SECRET,
                   "MLFLOW_EXPERIMENT_NAME": EXPERIMENT, "COLUMNS": "250"}
            env.pop("RAY_ADDRESS", None)
            yield head, server.uri, env
    finally:
        server.stop()


def run(args: list[str], env: dict, timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=timeout, cwd=Path(__file__).parents[1])


SUBMIT = """
import json, sys
from cluster.submit import submit_sweep
print(submit_sweep(json.loads(sys.argv[2]), None, sys.argv[1]))
"""


def submit(argv: list[str], head, env: dict) -> str:
    """`cluster.submit.submit_sweep` in its own process (as `asym sweep ... --address` calls it)."""
    done = run([sys.executable, "-c", SUBMIT, head.dashboard, json.dumps(argv)], env, 180)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.strip().splitlines()[-1]


JOB_INFO = """
import json, sys
from ray.job_submission import JobSubmissionClient
from ray.util.state import list_actors
head, job = sys.argv[1], sys.argv[2]
info = JobSubmissionClient(head).get_job_info(job)
actors = list_actors(address=head, filters=[("job_id", "=", info.job_id)], detail=True, limit=1000,
                     raise_on_missing_output=False)
print(json.dumps({"status": str(info.status.value), "entrypoint": info.entrypoint, "runtime_env": info.runtime_env,
                  "metadata": info.metadata, "actor_classes": sorted({a.class_name for a in actors})}))
"""


def test_sweep_submitted_to_a_head_runs_there_and_lands_in_mlflow(stack):
    head, uri, env = stack
    name = f"clu-{uuid.uuid4().hex[:6]}"
    argv = ["isolation", "--smoke", "--seeds", "0", "--name", name]
    plan = run([ASYM, "sweep", *argv, "--dry-run", "--json"], env, 120)
    assert plan.returncode == 0, plan.stderr
    n_trials = len(json.loads(plan.stdout))

    submitted = run([ASYM, "sweep", *argv, "--address", head.dashboard], env, 180)  # the user's command
    assert submitted.returncode == 0, submitted.stderr[-3000:]
    job = submitted.stdout.strip().splitlines()[-1]
    assert job.startswith("asym-isolation-")

    logs = run([ASYM, "sweep", "logs", job, "--follow", "--address", head.dashboard], env, 420)
    assert logs.returncode == 0, (logs.stdout[-3000:], logs.stderr[-2000:])
    assert f"sweep {name}" in logs.stdout  # the sweep's own banner, printed on the head
    assert SECRET not in logs.stdout + logs.stderr

    info = run([sys.executable, "-c", JOB_INFO, head.dashboard, job], env, 120)
    assert info.returncode == 0, info.stderr[-2000:]
    details = json.loads(info.stdout.strip().splitlines()[-1])
    assert details["status"] == "SUCCEEDED"
    assert SECRET not in info.stdout
    assert "--require-env MLFLOW_TRACKING_TOKEN" in details["entrypoint"]
    assert set(details["runtime_env"]["env_vars"]) <= {"MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME", "ASYM_RAY_JOB_ADDRESS"}
    assert details["actor_classes"], "the job's trials ran as actors of the head's cluster (not a private Ray)"

    status = run([ASYM, "cluster", "status", "--address", head.dashboard], env, 120)
    assert status.returncode == 0, status.stderr[-2000:]
    assert job in status.stdout and "SUCCEEDED" in status.stdout and "head" in status.stdout

    from mlflow.tracking import MlflowClient

    from experiments import tracking_names as names

    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name(EXPERIMENT)
    assert experiment is not None, "the job wrote to the experiment the submitter named"
    runs = client.search_runs([experiment.experiment_id], filter_string=f"tags.`{names.TAG_SWEEP}` = '{name}'")
    parents = [r for r in runs if r.data.tags.get(names.TAG_KIND) == names.KIND_SWEEP]
    children = [r for r in runs if r.data.tags.get(names.TAG_KIND) == names.KIND_TRIAL]
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    assert len(children) == n_trials
    assert all(r.info.status == "FINISHED" for r in children)
    assert all(r.data.tags.get(names.PARENT_RUN_ID) == parents[0].info.run_id for r in children)
    for r in runs:
        assert SECRET not in json.dumps({"params": r.data.params, "tags": r.data.tags})


def test_sweep_stop_stops_a_running_job(stack):
    """Submitted through `submit_sweep` itself (the function `asym sweep --cluster/--address` calls)."""
    head, _, env = stack
    name = f"clu-stop-{uuid.uuid4().hex[:6]}"
    job = submit(["isolation", "--smoke", "--seeds", "0", "--name", name], head, env)
    stopped = run([ASYM, "sweep", "stop", job, "--address", head.dashboard], env, 120)
    assert stopped.returncode == 0, stopped.stderr[-2000:]
    assert job in stopped.stdout
    logs = run([ASYM, "sweep", "logs", job, "--follow", "--address", head.dashboard], env, 240)
    assert logs.returncode == 1 and "STOPPED" in logs.stderr, (logs.stdout[-2000:], logs.stderr[-2000:])


JOB_STATUS = """
import sys
from ray.job_submission import JobSubmissionClient
print(JobSubmissionClient(sys.argv[1]).get_job_status(sys.argv[2]).value)
"""
RAY_JOB_TRIAL = """
import dataclasses, json, sys
from pathlib import Path

from experiments.parse import parse_set
from experiments.plan import plan
from backends.verl import VerlBackend
from backends.verl.render import RenderPaths

fake, workdir = sys.argv[1], Path(sys.argv[2])
trial = dataclasses.replace(plan("main", backend="verl", models=["qwen3-4b"], axes=(parse_set("nnodes=2"),))[-1], steps=4)
environ = {"MLFLOW_RUN_ID": "0123abcd", "MLFLOW_TRACKING_URI": "sqlite:////tmp/none.db", "PATH": "/usr/bin"}
seen = []
def attempt(*argv):
    backend = VerlBackend(paths=RenderPaths("/data", "/ckpt"), entrypoint=[sys.executable, fake, *argv], poll_s=0.2,
                          environ=environ)
    backend.run(trial, lambda step, metrics: seen.append(step), workdir)
error = None
try:
    attempt("0", "2", "1")  # verl's job dies after step 2 (as on a lost node): the trial's retry follows
except RuntimeError as exc:
    error = str(exc).splitlines()[0]
attempt("2", "4")  # the retry resumes at its checkpointed step 2
logs = {p.name: p.read_text() for p in sorted((workdir / "logs").glob("attempt-*.log"))}
print(json.dumps({"multi_node": trial.settings_dict()["nnodes"], "seen": seen, "error": error, "logs": logs}))
"""


def test_a_multi_node_verl_trial_runs_as_ray_jobs_on_the_head(stack, tmp_path):
    """The Ray Job path of multi-node verl trials (``execution.run_job``) on a real job server: each
    attempt is one Ray Job on the head (verl's training process replaced by the stand-in that logs
    through verl's real file logger, tests/fixtures/verl/fake_verl.py); its metrics stream back
    through the shared metrics file while the job runs, a failed job is a one-line error with the
    job's log fetched from the head, and the retry reports only the steps after its checkpoint."""
    head, _, env = stack
    fake = Path(__file__).parent / "fixtures" / "verl" / "fake_verl.py"
    done = run([sys.executable, "-c", RAY_JOB_TRIAL, str(fake), str(tmp_path)],
               {**env, "ASYM_RAY_JOB_ADDRESS": head.dashboard}, 300)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["multi_node"] == 2
    assert out["seen"] == [0, 1, 2, 3, 4], "every step once across the two jobs"
    assert out["error"].startswith("verl job asym-") and "-a1 ended FAILED" in out["error"], out["error"]
    assert sorted(out["logs"]) == ["attempt-1.log", "attempt-2.log"]
    assert all("could not fetch" not in text for text in out["logs"].values()), out["logs"]
    first = out["error"].split()[2]
    for job, status in ((first, "FAILED"), (first.removesuffix("-a1") + "-a2", "SUCCEEDED")):
        info = run([sys.executable, "-c", JOB_STATUS, head.dashboard, job], env, 120)
        assert info.returncode == 0, info.stderr[-2000:]
        assert info.stdout.strip().splitlines()[-1] == status, job


STOP_EARLIER = """
import sys, time
from ray.job_submission import JobSubmissionClient
from backends.verl.execution import stop_earlier_jobs
client, stem = JobSubmissionClient(sys.argv[1]), sys.argv[2]
client.submit_job(entrypoint="sleep 300", submission_id=stem + "-a1")
while client.get_job_status(stem + "-a1").value != "RUNNING":
    time.sleep(0.2)
stop_earlier_jobs(client, stem + "-a3")  # attempt 2 was never submitted (it died first)
print(client.get_job_status(stem + "-a1").value)
"""


def test_a_retry_stops_the_earlier_attempts_job_left_running(stack):
    """A trial process lost with its node leaves its verl job running; the retry stops it before it
    submits its own (two verl jobs must not share a cluster: admission.JOB_RESOURCE)."""
    head, _, env = stack
    done = run([sys.executable, "-c", STOP_EARLIER, head.dashboard, f"asym-stop-{uuid.uuid4().hex[:6]}"], env, 180)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == "STOPPED"
