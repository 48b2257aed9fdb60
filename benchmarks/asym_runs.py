"""What the sweep benchmarks share: run `asym` as a user would, in its own directory, and read back
from that directory's MLflow store when its trials' first steps were logged."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ASYM = [sys.executable, "-m", "orchestrator.cli"]


def asym_env(tree: Path | None = None) -> dict[str, str]:
    """This environment without a tracking server or Ray cluster to join; ``tree``: run that checkout."""
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "RAY_ADDRESS")}
    if tree is not None:
        env["PYTHONPATH"] = str(tree)
    return env


def run_asym(argv: list[str], cwd: Path, env: dict[str, str] | None = None) -> float:
    """`asym ARGV` in ``cwd``; its wall time (a failure ends the benchmark with its stderr)."""
    cwd.mkdir(parents=True, exist_ok=True)
    started = time.time()
    proc = subprocess.run([*ASYM, *argv], cwd=cwd, env=env or asym_env(), capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"asym {' '.join(argv)} failed in {cwd}:\n{proc.stderr[-3000:]}")
    return time.time() - started


def store_client(cwd: Path):
    """A client on the default store of ``cwd`` (./.asym/mlflow), through asym's store lock."""
    from orchestrator.mlflow_server import store_paths
    from orchestrator.tracking import make_client

    return make_client(store_paths(cwd)[0])


def sweep_runs(client, sweep: str | None = None, kind: str = "trial") -> list:
    """The runs of one kind (trial or sweep), of one sweep when named."""
    from experiments import tracking_names as names

    experiment = client.get_experiment_by_name(names.experiment_name())
    query = f"tags.`{names.TAG_KIND}` = '{kind}'" + (f" and tags.`{names.TAG_SWEEP}` = '{sweep}'" if sweep else "")
    return list(client.search_runs([experiment.experiment_id], filter_string=query))


def first_steps(client, runs) -> tuple[float, float]:
    """Epoch seconds of the earliest step-0 evaluation and step-1 training metric over ``runs``
    (trials that were trained here: reused ones are links to older runs)."""
    from common import metric_names as M
    from experiments import tracking_names as names

    first0 = first1 = float("inf")
    for run in runs:
        if names.TAG_REUSED_FROM in run.data.tags:
            continue
        for m in client.get_metric_history(run.info.run_id, M.EVAL_MEAN_ACCURACY):
            if m.step == 0:
                first0 = min(first0, m.timestamp / 1000)
        for m in client.get_metric_history(run.info.run_id, M.ENTROPY):
            if m.step == 1:
                first1 = min(first1, m.timestamp / 1000)
    return first0, first1


def start_phases(client, sweep: str, t0: float) -> dict[str, float]:
    """Seconds from ``t0`` (the command's launch) to the sweep's parent run, its first trial run, and
    the first step 0 and step 1 its trials logged."""
    runs = sweep_runs(client, sweep)
    (parent,) = sweep_runs(client, sweep, kind="sweep")
    step0, step1 = first_steps(client, runs)
    return {"parent run": parent.info.start_time / 1000 - t0,
            "trial run": min(run.info.start_time for run in runs) / 1000 - t0,
            "step 0": step0 - t0, "step 1": step1 - t0}
