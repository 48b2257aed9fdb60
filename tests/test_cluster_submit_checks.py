"""What `submit_sweep` checks and builds before it contacts a head: the tracking URI must be a server
every node can reach (else one line, nothing submitted), the job request carries no secret value
(credentials go by name), the job driver refuses to start when a named credential is missing on
the head, and head addresses are normalised. No Ray cluster is needed here (see
test_cluster_submit.py for the real submission)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from cluster.head import normalize_address
from cluster.submit import build_job_request, submit_sweep
from cluster.tracking_check import require_shared_tracking_uri
from common.redact import redact
from common.errors import UserError

ROOT = Path(__file__).resolve().parents[1]
HEAD = "http://127.0.0.1:8265"


@pytest.mark.parametrize("uri,expected", [
    (None, "MLFLOW_TRACKING_URI is not set"),
    ("sqlite:////tmp/x/mlflow.db", "is a sqlite store on this machine"),
    ("file:///tmp/mlruns", "is a file store on this machine"),
    ("/tmp/mlruns", "is a local path store on this machine"),
    ("databricks-uc", "local path store"),
    ("http://alice:hunter2@10.0.0.5:5000", "carries credentials"),
])
def test_tracking_uris_the_nodes_cannot_use_are_refused(uri, expected):
    env = {} if uri is None else {"MLFLOW_TRACKING_URI": uri}
    with pytest.raises(UserError) as info:
        require_shared_tracking_uri(env, HEAD)
    message = str(info.value)
    assert expected in message and "\n" not in message
    assert "hunter2" not in message


def test_a_loopback_server_is_refused_for_a_remote_head():
    with pytest.raises(UserError, match="loopback"):
        require_shared_tracking_uri({"MLFLOW_TRACKING_URI": "http://127.0.0.1:5000"}, "http://10.0.0.10:8265")


def test_a_server_that_does_not_answer_is_refused():
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(UserError, match="does not answer"):
        require_shared_tracking_uri({"MLFLOW_TRACKING_URI": f"http://127.0.0.1:{port}"}, HEAD, timeout_s=2)


class _Health(BaseHTTPRequestHandler):
    seen_auth: list = []

    def do_GET(self):  # noqa: N802 - http.server's naming
        _Health.seen_auth.append(self.headers.get("Authorization"))
        self.send_response(200 if self.path == "/health" else 404)
        self.end_headers()
        self.wfile.write(b"OK")

    def log_message(self, *args):
        pass


def test_a_server_answering_health_passes_and_gets_the_token_as_a_header():
    server = HTTPServer(("127.0.0.1", 0), _Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        uri = f"http://127.0.0.1:{server.server_port}"
        assert require_shared_tracking_uri({"MLFLOW_TRACKING_URI": uri, "MLFLOW_TRACKING_TOKEN": "t0k"}, HEAD) == uri
        assert _Health.seen_auth[-1] == "Bearer t0k"
    finally:
        server.shutdown()


def test_an_unreachable_head_is_one_line(monkeypatch):
    server = HTTPServer(("127.0.0.1", 0), _Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{server.server_port}")
        with pytest.raises(UserError) as info:
            submit_sweep(["isolation", "--smoke"], None, "127.0.0.1:9")
        assert str(info.value).startswith("cannot reach the Ray head at http://127.0.0.1:9")
        assert "\n" not in str(info.value)
    finally:
        server.shutdown()


def test_no_cluster_named_is_one_line():
    with pytest.raises(UserError, match="--cluster FILE .* or --address"):
        submit_sweep(["isolation"], None, None)


def test_refusal_happens_before_any_head_is_contacted(monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    # port 9 (discard) has no dashboard: contacting it would be a different error
    with pytest.raises(UserError, match="MLFLOW_TRACKING_URI is not set"):
        submit_sweep(["isolation", "--smoke"], None, "127.0.0.1:9")


SECRETS = {
    "MLFLOW_TRACKING_TOKEN": "tok-1234567890",
    "MLFLOW_TRACKING_PASSWORD": "pw-1234567890",
    "MLFLOW_TRACKING_USERNAME": "user-1234567890",
    "AWS_SECRET_ACCESS_KEY": "aws-1234567890",
    "AWS_ACCESS_KEY_ID": "akid-1234567890",
    "HF_TOKEN": "hf-1234567890",
    "RAY_AUTH_TOKEN": "ray-1234567890",
}


def test_the_job_request_names_credentials_but_carries_no_secret_value():
    env = {**SECRETS, "MLFLOW_TRACKING_URI": "http://10.0.0.5:5000", "MLFLOW_EXPERIMENT_NAME": "exp", "PATH": "/bin"}
    request = build_job_request(["grid", "--alpha-pos", "0,1"], env, head="http://10.0.0.10:8265")
    text = json.dumps(request)
    for value in SECRETS.values():
        assert value not in text
    assert request["entrypoint"] == (
        "python -m cluster.job_driver --require-env MLFLOW_TRACKING_TOKEN --require-env MLFLOW_TRACKING_USERNAME "
        "--require-env MLFLOW_TRACKING_PASSWORD -- grid --alpha-pos 0,1"
    )
    assert request["runtime_env"]["env_vars"] == {
        "MLFLOW_TRACKING_URI": "http://10.0.0.5:5000", "MLFLOW_EXPERIMENT_NAME": "exp",
        "ASYM_RAY_JOB_ADDRESS": "http://10.0.0.10:8265",
    }
    assert request["runtime_env"]["working_dir"] == str(ROOT)
    assert ".asym" in request["runtime_env"]["excludes"]
    assert request["metadata"] == {"asym.kind": "sweep", "asym.argv": "grid --alpha-pos 0,1"}
    assert request["submission_id"].startswith("asym-grid-")


def test_the_job_driver_refuses_when_a_named_credential_is_missing_on_the_head():
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_TOKEN"}
    done = subprocess.run([sys.executable, "-m", "cluster.job_driver", "--require-env", "MLFLOW_TRACKING_TOKEN", "--",
                           "isolation", "--dry-run"], env=env, capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 2
    assert "MLFLOW_TRACKING_TOKEN not set on the cluster head" in done.stderr


def test_the_job_driver_runs_the_same_asym_sweep():
    done = subprocess.run([sys.executable, "-m", "cluster.job_driver", "--", "isolation", "--smoke", "--seeds", "0",
                           "--dry-run", "--json"], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    trials = json.loads(done.stdout)
    assert trials and {t["seed"] for t in trials} == {0}


@pytest.mark.parametrize("given,expected", [
    ("10.0.0.10", "http://10.0.0.10:8265"),
    ("10.0.0.10:9000", "http://10.0.0.10:9000"),
    ("http://head.example:8265/", "http://head.example:8265"),
    ("https://head.example", "https://head.example:8265"),
])
def test_head_addresses_are_normalised(given, expected):
    assert normalize_address(given) == expected


@pytest.mark.parametrize("bad", ["", "ray://10.0.0.10:10001", "http://:8265", "10.0.0.10:port"])
def test_bad_head_addresses_are_one_line_errors(bad):
    with pytest.raises(UserError):
        normalize_address(bad)


def test_redact_hides_the_password():
    assert redact("http://alice:hunter2@10.0.0.5:5000/x") == "http://***@10.0.0.5:5000/x"
    assert redact("http://10.0.0.5:5000") == "http://10.0.0.5:5000"


def test_asym_sweep_with_address_submits_the_whole_command_line(monkeypatch):
    """The seam with `asym sweep`: --cluster/--address are dropped, every other option goes to the head."""
    import cluster.submit
    from orchestrator.cli import main

    seen = {}
    monkeypatch.setattr(cluster.submit, "submit_sweep", lambda argv, cluster_file, address: seen.update(
        argv=argv, cluster_file=cluster_file, address=address) or "job-1")
    main(["sweep", "isolation", "--smoke", "--seeds", "0,1", "--name", "abc", "--address", "http://h:8265"])
    argv = seen["argv"][1:] if seen["argv"][0] == "sweep" else seen["argv"]
    assert argv[0] == "isolation"
    assert "--smoke" in argv and argv[argv.index("--name") + 1] == "abc"
    assert argv[argv.index("--seeds") + 1] in ("0,1", "0, 1")
    assert "--address" not in argv and seen["address"] == "http://h:8265"
