"""`asym ui`: serve the MLflow UI on 127.0.0.1 for the local store (./.asym/mlflow)."""

from __future__ import annotations

from typing import Annotated

import typer


def ui(
    port: Annotated[int, typer.Option("--port", help="Port on 127.0.0.1.")] = 5000,
) -> None:
    """Open the tracked sweeps and trials in the MLflow UI (Ctrl-C stops it)."""
    import os
    import socket
    import subprocess

    from experiments import tracking_names as names
    from estimators.errors import UserError
    from orchestrator.mlflow_server import server_command, store_paths

    given = os.environ.get("MLFLOW_TRACKING_URI")
    if given and given.startswith(("http://", "https://")):
        typer.echo(f"runs are tracked on {given}: open it in a browser")
        return
    store_uri, artifact_root = store_paths()
    if given:
        store_uri = given
    elif not (names.local_store_dir() / "mlflow.db").exists():
        raise UserError(f"no MLflow store in {names.local_store_dir()}; run `asym sweep ...` or `asym train ...` here first")
    if not 0 < port < 65536:
        raise ValueError(f"--port must be in 1..65535, got {port}")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        if sock.connect_ex(("127.0.0.1", port)) == 0:
            raise UserError(f"port {port} is in use on 127.0.0.1; pick another with --port")
    typer.echo(f"MLflow UI for {store_uri} on http://127.0.0.1:{port} (Ctrl-C to stop)")
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    try:
        subprocess.run(server_command(store_uri, artifact_root, port), env=env, check=False)
    except KeyboardInterrupt:
        pass


def register(app: typer.Typer) -> None:
    """Add the command to the root app."""
    app.command("ui")(ui)
