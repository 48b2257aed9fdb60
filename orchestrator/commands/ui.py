"""`asym ui`: serve the MLflow UI for the local store (./.asym/mlflow), on 127.0.0.1 unless --host says otherwise."""

from __future__ import annotations

import ipaddress
import os
import socket
import subprocess
from typing import Annotated, Optional

import typer

BASIC_AUTH_HINT = ("MLflow has no authentication: anyone who can reach this address can read and change every run; "
                   "for a shared server use MLflow's basic-auth app (`mlflow server --app-name basic-auth`, "
                   "https://mlflow.org/docs/latest/self-hosting/security/basic-http-auth/)")


def ui(
    port: Annotated[int, typer.Option("--port", help="Port to listen on.")] = 5000,
    host: Annotated[str, typer.Option("--host", help="Address to listen on; anything but a loopback one exposes the "
                                                     "store, unauthenticated, to the network.")] = "127.0.0.1",
    storage: Annotated[Optional[str], typer.Option("--storage", help="Serve the store of a sweep run with --storage PATH (PATH/mlflow).")] = None,
) -> None:
    """Open the tracked sweeps and trials in the MLflow UI (Ctrl-C stops it)."""

    from common.errors import UserError  # deferred: asym --help
    from common.net import is_loopback  # deferred: asym --help
    from experiments import tracking_names as names  # deferred: asym --help
    from orchestrator import tracking  # deferred: asym --help
    from orchestrator.mlflow_server import reap_orphans, server_command, store_paths  # deferred: asym --help

    if not 0 < port < 65536:
        raise ValueError(f"--port must be in 1..65535, got {port}")
    try:
        family = socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET
    except ValueError:
        if host != "localhost":
            raise ValueError(f"--host must be an IP address such as 127.0.0.1 or 0.0.0.0, got {host!r}") from None
        family = socket.AF_INET
    given = os.environ.get("MLFLOW_TRACKING_URI")
    if given and given.startswith(("http://", "https://")):
        typer.echo(f"runs are tracked on {tracking.redact(given)}: open it in a browser")
        return
    shared = names.check_storage(storage) if storage else None
    store_uri, artifact_root = store_paths(storage=shared)
    if given:
        store_uri = given
    elif not (names.local_store_dir(storage=shared) / "mlflow.db").exists():
        first = f"`asym sweep ... --storage {storage}`" if shared else "`asym sweep ...` or `asym train ...` here"
        raise UserError(f"no MLflow store in {names.local_store_dir(storage=shared)}; run {first} first")
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise UserError(f"cannot listen on {host}:{port} ({exc.strerror}); pick another --port or --host") from None
    if not is_loopback(host):
        typer.echo(f"warning: listening on {host}: {BASIC_AUTH_HINT}", err=True)
    reap_orphans()
    client = tracking.make_client(store_uri)
    experiment_id = tracking.ensure_experiment(client, artifact_root)  # older stores get the UI tags too
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    url = f"http://{shown}:{port}" if ":" not in shown else f"http://[{shown}]:{port}"
    typer.echo(f"MLflow UI for {store_uri} on {url} (Ctrl-C to stop); the trials with their configuration: "
               f"{tracking.trials_view_url(url, experiment_id)}")
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    try:
        subprocess.run(server_command(store_uri, artifact_root, port, host), env=env, check=False)
    except KeyboardInterrupt:
        pass


def register(app: typer.Typer) -> None:
    """Add the command to the root app."""
    app.command("ui")(ui)
