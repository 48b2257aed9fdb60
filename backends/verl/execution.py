"""Running one verl trial: a subprocess with a private Ray (one node) or a Ray Job (several nodes).

The trial process itself is a CPU stub scheduled by Tune with the resources of
``admission.trial_resources``. Per attempt it:

1. renders the overrides (``render.py``) and numbers the attempt (``<workdir>/metrics/attempt-<k>.jsonl``);
2. starts verl through our entry point with the environment of ``trial_env`` (verl's runtime env
   variables, ``MLFLOW_RUN_ID`` / ``MLFLOW_TRACKING_URI`` handed over by the orchestrator, verl's file
   logger pointed at this attempt's JSONL, our estimator plugin module);
3. streams that JSONL back through ``report`` as verl writes it (``metrics.map_metrics``), and fails
   loudly when verl exits non-zero or logged nothing. verl resumes from the last checkpoint
   (``trainer.resume_mode=auto``, a deterministic checkpoint folder) and re-runs the steps after it;
   steps an earlier attempt logged are dropped twice over: inside verl, before its loggers
   (``LOGGED_THROUGH_ENV``, read by ``trainer.LoggedOnce``: verl's own MLflow keys), and here.

A multi-node attempt is a Ray Job; before submitting it, earlier attempts' jobs still running (a
trial process lost with its node leaves its job behind) are stopped.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

from backends.verl.admission import PlacementGroupWatchdog, owned_by_job
from backends.verl.job_watch import NodeLossWatchdog, dead_actors_of
from backends.verl.metrics import map_metrics
from common.errors import UserError, first_line
from common.ray_jobs import submit_when_ready
from experiments.plugins import MODULES_ENV, import_roots
from experiments.spec import TrialSpec

PROJECT_ROOT = Path(__file__).resolve().parents[3]
ESTIMATOR_PLUGIN = "backends.verl.adapter"
NCCL_ENV = {"NCCL_CUMEM_ENABLE": "0"}  # verl/plugin/platform/platform_cuda.py; vLLM weight sync needs it
# The last step earlier attempts logged: our trainer drops verl's own log calls up to it
# (trainer.LoggedOnce), so a resumed attempt's re-validation and re-run steps reach MLflow once.
LOGGED_THROUGH_ENV = "ASYM_VERL_LOGGED_THROUGH_STEP"

Reporter = Callable[[int, Mapping[str, float]], None]


def verl_runtime_env_vars() -> dict[str, str]:
    """verl's own runtime env (``verl/trainer/constants_ppo.py``) plus ``NCCL_CUMEM_ENABLE=0``.

    verl adds them only when it calls ``ray.init`` itself; we set them always (a Ray Job's driver
    joins an existing cluster, where verl skips them).
    """
    from verl.trainer.constants_ppo import PPO_RAY_RUNTIME_ENV  # deferred: verl

    return {**{k: str(v) for k, v in PPO_RAY_RUNTIME_ENV["env_vars"].items()}, **NCCL_ENV}


def handed_over_tracking(environ: Mapping[str, str]) -> dict[str, str]:
    """The trial's MLflow run, created by the orchestrator; verl's MLflow logger attaches to it."""
    missing = [k for k in ("MLFLOW_RUN_ID", "MLFLOW_TRACKING_URI") if not environ.get(k)]
    if missing:

        raise UserError(f"the verl backend needs {' and '.join(missing)} (the orchestrator sets them per trial); "
                        f"run trials through `asym sweep`")
    return {k: environ[k] for k in ("MLFLOW_RUN_ID", "MLFLOW_TRACKING_URI")}


def trial_env(metrics_file: Path, environ: Mapping[str, str], plugins: Sequence[str] = ()) -> dict[str, str]:
    """The variables a verl attempt gets on top of the inherited environment (``plugins``: the
    modules of a user's estimators, imported by our verl adapter in every verl process)."""

    roots = import_roots(plugins) if plugins else []
    python_path = os.pathsep.join(p for p in (str(PROJECT_ROOT), *roots, environ.get("PYTHONPATH", "")) if p)
    extra = {MODULES_ENV: ",".join(plugins)} if plugins else {}
    return {
        **extra,
        **verl_runtime_env_vars(),
        **handed_over_tracking(environ),
        "VERL_FILE_LOGGER_PATH": str(metrics_file),  # verl.utils.tracking.FileLogger
        "VERL_USE_EXTERNAL_MODULES": ESTIMATOR_PLUGIN,  # imported on every `import verl`
        "PYTHONPATH": python_path,
        "PYTHONUNBUFFERED": "1",
    }


# --- attempts and the metrics stream ---------------------------------------------------------


def attempt_files(workdir: Path) -> list[Path]:
    return sorted((workdir / "metrics").glob("attempt-*.jsonl"), key=lambda p: int(p.stem.split("-")[1]))


def next_attempt(workdir: Path) -> tuple[int, Path]:
    """(k, path) of the next attempt's JSONL, made empty now: an attempt that dies before verl logs
    anything still takes its number (a Ray Job's submission id is used once). Earlier files stay."""
    (workdir / "metrics").mkdir(parents=True, exist_ok=True)
    k = len(attempt_files(workdir)) + 1
    path = workdir / "metrics" / f"attempt-{k}.jsonl"
    path.touch()
    return k, path


def reported_steps(workdir: Path) -> int:
    """The last step earlier attempts logged (-1: none); their steps were reported already."""
    last = -1
    for path in attempt_files(workdir):
        tail = JsonlTail(path)
        for step, _ in tail.read_new(final=True):
            last = max(last, step)
    return last


class JsonlTail:
    """Reads the complete lines verl's ``FileLogger`` appended since the last call."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._offset = 0

    def read_new(self, final: bool = False) -> Iterator[tuple[int, dict[str, Any]]]:
        if not self.path.exists():
            return
        with self.path.open("rb") as fp:
            fp.seek(self._offset)
            chunk = fp.read()
        end = len(chunk) if final else chunk.rfind(b"\n") + 1
        self._offset += end
        lines = chunk[:end].splitlines()
        for i, line in enumerate(lines):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                if final and i == len(lines) - 1:
                    return  # a line cut short when the attempt died
                raise
            yield int(record["step"]), dict(record.get("data") or {})


class MetricsStream:
    """Maps and reports records in order; remembers what was reported."""

    def __init__(self, report: Reporter, skip_through_step: int):
        self.report = report
        self.skip_through_step = skip_through_step
        self.records = 0  # records seen in this attempt
        self.reported = 0  # report() calls made
        self.last_step = skip_through_step

    def feed(self, records: Iterator[tuple[int, dict[str, Any]]]) -> None:
        for step, data in records:
            self.records += 1
            if step <= self.skip_through_step:
                continue  # logged by an earlier attempt (verl re-validates at the resumed step)
            mapped = map_metrics(data)
            if mapped:
                self.report(step, mapped)
                self.reported += 1
                self.last_step = max(self.last_step, step)


def _tail_of(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


# --- the two ways to run an attempt -----------------------------------------------------------


def run_local(command: Sequence[str], env: Mapping[str, str], workdir: Path, log_file: Path, tail: JsonlTail,
              stream: MetricsStream, poll_s: float) -> None:
    """verl as a subprocess that starts its own Ray on this node's reserved GPUs."""
    with log_file.open("ab") as log:
        process = subprocess.Popen(list(command), cwd=workdir, env={**os.environ, **env},
                                   stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            while process.poll() is None:
                stream.feed(tail.read_new())
                time.sleep(poll_s)
        except BaseException:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
            raise
    stream.feed(tail.read_new(final=True))
    if process.returncode != 0:
        raise RuntimeError(f"verl exited with code {process.returncode}; last lines of {log_file}:\n{_tail_of(log_file)}")


def job_server_address() -> tuple[str, str]:
    """The Ray Job server the trial submits to, and where that address came from:
    ``$ASYM_RAY_JOB_ADDRESS`` (set by ``asym sweep --cluster/--address``), else the dashboard of the
    cluster this process is connected to (a Tune trial on the sweep's cluster), else Ray's default
    on this machine."""
    if os.environ.get("ASYM_RAY_JOB_ADDRESS"):
        return os.environ["ASYM_RAY_JOB_ADDRESS"], "$ASYM_RAY_JOB_ADDRESS"
    why = "not connected to a Ray cluster"
    try:
        import ray  # deferred: ray
        from ray.dashboard.utils import ray_address_to_api_server_url  # deferred: ray

        if ray.is_initialized():  # the cluster's GCS knows where its dashboard listens
            return ray_address_to_api_server_url(ray.get_runtime_context().gcs_address), "the cluster's dashboard"
    except Exception as exc:  # no dashboard registered: fall back to the default, and say why
        why = f"the cluster's dashboard address is unknown ({first_line(exc)})"
    return "http://127.0.0.1:8265", f"Ray's default, as {why}"


def job_client():
    """A ``JobSubmissionClient`` on ``job_server_address()``; a server that does not answer is a
    one-line error naming the address, where it came from and how to set it."""
    from ray.job_submission import JobSubmissionClient  # deferred: ray

    address, source = job_server_address()
    try:
        return JobSubmissionClient(address)
    except ConnectionError as exc:
        raise RuntimeError(f"no Ray Job server at {address} (from {source}) for a verl trial over several nodes: "
                           f"{first_line(exc)}; start the head with its dashboard, or set "
                           "ASYM_RAY_JOB_ADDRESS (`asym sweep --cluster FILE` sets it)") from None


def stop_earlier_jobs(client, submission_id: str, timeout_s: float = 120.0) -> None:
    """Stop this trial's earlier attempts that still run (``<id>-a1 .. -a<k-1>``): a trial process
    lost with its node leaves its job behind, and two verl jobs must not share the cluster (their
    TransferQueue controllers collide, admission.JOB_RESOURCE)."""
    stem, _, k = submission_id.rpartition("-a")
    running = []
    for j in range(1, int(k)):
        try:
            status = client.get_job_status(f"{stem}-a{j}")
        except RuntimeError:  # never submitted (the attempt died first)
            continue
        if not status.is_terminal():
            client.stop_job(f"{stem}-a{j}")
            running.append(f"{stem}-a{j}")
    deadline = time.monotonic() + timeout_s
    while running and time.monotonic() < deadline:
        running = [job for job in running if not client.get_job_status(job).is_terminal()]
        time.sleep(1.0)
    if running:
        raise RuntimeError(f"earlier attempts {', '.join(running)} of this trial did not stop in {timeout_s:.0f} s")


def run_job(client, command: Sequence[str], env: Mapping[str, str], submission_id: str, log_file: Path,
            tail: JsonlTail, stream: MetricsStream, poll_s: float, pending_timeout_s: float) -> None:
    """verl as one Ray Job on the shared cluster (multi-node trials; ``client``: a JobSubmissionClient);
    its metrics file must be on storage both the job's driver and this trial process see."""
    from ray.job_submission import JobStatus  # deferred: ray

    submit_when_ready(client, entrypoint=shlex.join(command), submission_id=submission_id,
                      runtime_env={"env_vars": dict(env)}, entrypoint_num_cpus=1)
    watchdogs = []  # once the job's driver runs: its placement groups, and its actors lost with a node
    try:
        while True:
            status = client.get_job_status(submission_id)
            stream.feed(tail.read_new())
            if status in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.STOPPED):
                break
            if not watchdogs:
                driver = client.get_job_info(submission_id).driver_info
                if driver is not None and driver.id:
                    watchdogs = [PlacementGroupWatchdog(pending_timeout_s, owner=owned_by_job(driver.id)),
                                 NodeLossWatchdog(submission_id, dead_actors_of(client.get_address(), driver.id))]
            for watchdog in watchdogs:
                watchdog.check()
            time.sleep(poll_s)
    except BaseException:
        client.stop_job(submission_id)
        raise
    finally:
        try:
            log_file.write_text(client.get_job_logs(submission_id))
        except Exception as exc:  # the job's own error matters more than its log
            log_file.write_text(f"(could not fetch the job's logs: {exc})\n")
    stream.feed(tail.read_new(final=True))
    if status != JobStatus.SUCCEEDED:
        raise RuntimeError(f"verl job {submission_id} ended {status}; last lines of {log_file}:\n{_tail_of(log_file)}")


def run_trial(trial: TrialSpec, report: Reporter, workdir: Path, *, overrides: Sequence[str],
              entrypoint: Sequence[str], multi_node: bool, poll_s: float = 2.0,
              pending_timeout_s: float = 900.0, environ: Mapping[str, str] | None = None,
              extra_env: Mapping[str, str] | None = None) -> MetricsStream:
    """One attempt of ``trial``: run verl, stream its metrics, raise on failure or silence.
    ``extra_env`` goes on top of ``trial_env`` (the CPU mode's switches, ``cpu.settings.cpu_env``)."""
    workdir = Path(workdir)
    attempt, metrics_file = next_attempt(workdir)
    submission_id, jobs = f"asym-{trial.key}-a{attempt}", None
    if multi_node:  # first: a job left running would log more steps while this attempt starts
        jobs = job_client()
        stop_earlier_jobs(jobs, submission_id)
    skip = reported_steps(workdir)
    log_file = workdir / "logs" / f"attempt-{attempt}.log"
    log_file.parent.mkdir(parents=True, exist_ok=True)
    env = {**trial_env(metrics_file, os.environ if environ is None else environ, trial.plugins), **(extra_env or {}),
           LOGGED_THROUGH_ENV: str(skip)}
    command = [*entrypoint, *overrides]
    tail, stream = JsonlTail(metrics_file), MetricsStream(report, skip)
    if multi_node:
        run_job(jobs, command, env, submission_id, log_file, tail, stream, poll_s, pending_timeout_s)
    else:
        run_local(command, env, workdir, log_file, tail, stream, poll_s)
    if stream.records == 0:
        raise RuntimeError(f"verl finished but logged no metrics to {metrics_file}; "
                           f"check trainer.logger includes 'file' and the log {log_file}")
    if stream.last_step < trial.steps:
        raise RuntimeError(f"verl stopped at step {stream.last_step} of {trial.steps}; log: {log_file}")
    return stream


def local_entrypoint() -> list[str]:
    """Our entry point with this interpreter (the dry run shows ``python -m ...``)."""
    return [sys.executable, "-m", "backends.verl.entry"]
