"""Before a sweep goes to a cluster: the MLflow tracking URI must be a server every node can reach.

Trials run on many machines and all write to the sweep's MLflow runs, so a file or sqlite store
(on this machine's disk) cannot work, and neither can a loopback server when the head is elsewhere.
Credentials never travel with the job: a URI carrying a password is refused, and the token /
username / password variables are passed by name (the head must have them; see `submit.py`).
"""

from __future__ import annotations

import os
import socket
import urllib.error
import urllib.request
from collections.abc import Mapping
from urllib.parse import urlparse

from common.errors import UserError
from common.net import is_loopback
from common.redact import redact

# Variables the MLflow client reads for authentication: the job needs them, by name, on the nodes.
MLFLOW_SECRET_ENV = ("MLFLOW_TRACKING_TOKEN", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")
_SERVER_HINT = "start one with `mlflow server --host 0.0.0.0 --port 5000 ...` and export MLFLOW_TRACKING_URI=http://HOST:5000"


def require_shared_tracking_uri(env: Mapping[str, str], head_url: str, timeout_s: float = 5.0) -> str:
    """Return $MLFLOW_TRACKING_URI if every node can use it, else raise a one-line UserError."""
    uri = (env.get("MLFLOW_TRACKING_URI") or "").strip()
    if not uri:
        raise UserError(
            "MLFLOW_TRACKING_URI is not set: a cluster sweep needs an MLflow server every node can reach; " + _SERVER_HINT
        )
    parsed = urlparse(uri)
    if parsed.scheme not in ("http", "https"):
        kind = parsed.scheme or "local path"
        raise UserError(
            f"MLFLOW_TRACKING_URI={redact(uri)} is a {kind} store on this machine, which the cluster's "
            f"nodes cannot write to; {_SERVER_HINT}"
        )
    if parsed.username or parsed.password:
        raise UserError(
            f"MLFLOW_TRACKING_URI={redact(uri)} carries credentials, which would travel with the job in clear "
            "text: remove them and set MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD (or MLFLOW_TRACKING_TOKEN) "
            "here and on the cluster's nodes"
        )
    if is_loopback(parsed.hostname) and not is_loopback(urlparse(head_url).hostname):
        raise UserError(
            f"MLFLOW_TRACKING_URI={uri} points at this machine's loopback, which the cluster's nodes cannot reach: "
            "use an address of the server on the cluster's network"
        )
    _probe(uri, env, timeout_s)
    return uri


def _probe(uri: str, env: Mapping[str, str], timeout_s: float) -> None:
    """GET <uri>/health, the MLflow server's liveness endpoint (no credentials needed)."""
    url = uri.rstrip("/") + "/health"
    request = urllib.request.Request(url, method="GET")
    token = env.get("MLFLOW_TRACKING_TOKEN")
    if token:  # servers behind an auth proxy may guard /health too
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            if response.status != 200:
                raise UserError(f"the MLflow server at {uri} answered {response.status} on /health")
    except urllib.error.HTTPError as exc:
        raise UserError(f"the MLflow server at {uri} answered {exc.code} on /health: is it an MLflow server?") from None
    except (urllib.error.URLError, socket.timeout, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise UserError(f"the MLflow server at {uri} does not answer ({reason}): start it or fix MLFLOW_TRACKING_URI") from None


def secret_names_set(env: Mapping[str, str] = os.environ) -> list[str]:
    """The MLflow credential variables set here: the job will require them, by name, on the head."""
    return [name for name in MLFLOW_SECRET_ENV if env.get(name)]
