"""Submit a whole sweep to a cluster as one Ray Job: the same `asym sweep` runs on the head.

The job's working directory is this checkout (Ray uploads it, without the virtual environment, git
data and local stores), its entrypoint is `python -m cluster.job_driver ... -- <sweep argv>`, which
runs `asym sweep <argv>` on the head, where Ray Tune spreads the trials over the cluster's nodes.

What travels with the job is listed, never inherited: the tracking URI (a server every node can
reach, checked before submitting) and the experiment name. Credentials never do: the MLflow
token / username / password are named in the entrypoint (`--require-env NAME`) and read from the
head's own environment, so their values appear in no runtime env, job metadata, log or MLflow param.
"""

from __future__ import annotations

import os
import re
import shlex
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cluster.head import REPO_ROOT, dashboard_url
from cluster.tracking_check import require_shared_tracking_uri, secret_names_set
from common.errors import UserError, first_line
from common.ray_jobs import submit_when_ready
from experiments.tracking_names import ASYM_DIR

# Kept out of the uploaded working directory (gitignore patterns, relative to the checkout).
WORKING_DIR_EXCLUDES = [
    ASYM_DIR, ".pytest_cache", ".hypothesis", "mlruns", "**/__pycache__",
    "*.egg-info", "*.pyc", "**/*.ckpt", "**/*.safetensors",
]
# The only variables copied from this shell into the job (none is a secret).
FORWARDED_ENV = ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME")
METADATA_KIND = "asym.kind"
METADATA_ARGV = "asym.argv"


def submit_sweep(argv: list[str], cluster_file: str | None, address: str | None) -> str:
    """Submit `asym sweep <argv>` as a Ray Job to the cluster's head; return the Ray job id.

    `argv` is the sweep's command line after `asym sweep` (a leading "sweep" is accepted too).
    """
    argv = list(argv[1:] if argv and argv[0] == "sweep" else argv)
    if not argv:
        raise UserError("nothing to submit: give the sweep's study and options, e.g. `asym sweep grid ... --cluster FILE`")
    head = dashboard_url(cluster_file, address)
    env = dict(os.environ)
    require_shared_tracking_uri(env, head)
    request = build_job_request(argv, env, head=head)
    client = connect(head)
    try:
        return submit_when_ready(client, **request)
    except Exception as exc:  # noqa: BLE001 - any refusal from the head becomes one line
        raise UserError(f"the Ray head at {head} refused the job: {first_line(exc)}") from None


def build_job_request(argv: list[str], env: Mapping[str, str], head: str | None = None,
                      working_dir: Path = REPO_ROOT) -> dict[str, Any]:
    """The keyword arguments of `JobSubmissionClient.submit_job` (pure: no cluster contacted).

    `head` (the dashboard URL) is handed to the job as ASYM_RAY_JOB_ADDRESS: the verl backend
    submits its multi-node trials as Ray Jobs to the same head.
    """
    entrypoint = ["python", "-m", "cluster.job_driver"]
    for name in secret_names_set(env):
        entrypoint += ["--require-env", name]
    entrypoint += ["--", *argv]
    runtime_env = {
        "working_dir": str(working_dir),
        "excludes": list(WORKING_DIR_EXCLUDES),
        "env_vars": {name: env[name] for name in FORWARDED_ENV if env.get(name)},
    }
    if head:
        runtime_env["env_vars"]["ASYM_RAY_JOB_ADDRESS"] = head
    return {
        "entrypoint": shlex.join(entrypoint),
        "runtime_env": runtime_env,
        "submission_id": _submission_id(argv),
        "metadata": {METADATA_KIND: "sweep", METADATA_ARGV: shlex.join(argv)},
    }


def connect(head: str):
    """A JobSubmissionClient for the head's dashboard; an unreachable head is a one-line error.

    With token authentication (Ray's default when a token exists), the client sends the token from
    ~/.ray/auth_token or $RAY_AUTH_TOKEN in a request header: it is not part of the job.
    """
    from ray.job_submission import JobSubmissionClient  # deferred: ray

    try:
        return JobSubmissionClient(head)
    except Exception as exc:  # noqa: BLE001 - ConnectionError, auth errors, bad versions
        raise UserError(f"cannot reach the Ray head at {head}: {first_line(exc)}") from None


def _submission_id(argv: list[str]) -> str:
    study = re.sub(r"[^a-z0-9-]+", "-", argv[0].lower()).strip("-") or "sweep"
    return f"asym-{study}-{uuid.uuid4().hex[:8]}"

