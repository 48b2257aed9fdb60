"""Run a planned Proposition 1 probe (``experiments.probe``) here: Rich progress, MLflow, ``DIR/probe.csv``.

MLflow: one parent run (tag ``asym.kind=probe``, the plan as params) and a child run per seed whose
metrics are ``probe/<optimizer>/<control>/<method>/<column>`` at MLflow step = the probe step; the
CSV (and whatever the caller adds to ``out``) is attached to the parent as artifacts. The CSV is
written to a temporary file and renamed, so it is complete or absent.
"""

from __future__ import annotations

import csv
import math
import os
import tempfile
import time
from pathlib import Path

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from experiments import tracking_names as names
from experiments.probe import ProbePlan
from orchestrator import tracking

KIND_PROBE = "probe"
CSV_NAME = "probe.csv"
COLUMNS = ("seed", "step", "method", "optimizer", "control", "predicted_dh", "predicted_dh_linear", "measured_dh_batch",
           "measured_dh_probe", "predicted_gap_per_eta", "linear_gap_per_eta", "eta", "dh_batch", "dh_probe", "kappa",
           "all_solved_frac", "none_solved_frac", "grad_norm", "prediction_exact", "estimator", "alpha_pos", "alpha_neg")
LOGGED = ("predicted_dh", "predicted_dh_linear", "measured_dh_batch", "measured_dh_probe", "dh_batch", "dh_probe")


def check_out(out: Path) -> Path:
    """``--out DIR``: an existing folder or a new one in an existing folder (nothing is created here)."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file; give a folder")
    if not out.exists() and not out.parent.is_dir():
        raise ValueError(f"--out: folder {out.parent} does not exist")
    return out


def run_plan(plan: ProbePlan, out: Path, show_progress: bool = True) -> tuple[str, list[dict]]:
    """Run every seed; returns (the parent run id, the rows). Writes ``out/probe.csv``."""
    from tinyrlvr.probe import run_probe  # deferred: numpy, torch

    uri = names.default_tracking_uri()
    if "MLFLOW_TRACKING_URI" in os.environ:
        tracking.check_tracking_uri(uri)
    else:
        names.local_store_dir().mkdir(parents=True, exist_ok=True)
    client = tracking.make_client(uri)
    artifact_root = None if os.environ.get("MLFLOW_TRACKING_URI") else (
        names.local_store_dir().resolve() / "artifacts").as_uri()
    experiment_id = tracking.ensure_experiment(client, artifact_root)
    parent = client.create_run(experiment_id, run_name=f"probe-prop1-{plan.model}", tags={names.TAG_KIND: KIND_PROBE})
    parent_id = parent.info.run_id
    _log_params(client, parent_id, plan.params())
    rows: list[dict] = []
    status = "FAILED"
    with _Progress(plan, show_progress) as progress:
        try:
            for cfg in plan.configs:
                child = client.create_run(experiment_id, run_name=f"probe-seed{cfg.seed}",
                                          tags={names.TAG_KIND: KIND_PROBE, names.PARENT_RUN_ID: parent_id})
                _log_params(client, child.info.run_id, {**plan.params(), "seed": str(cfg.seed)})
                seed_rows = run_probe(cfg, plan.at, plan.methods, plan.optimizers, plan.controls, plan.sgd_lr,
                                      on_update=progress.advance, on_step=lambda s, seed=cfg.seed: progress.note(seed, s))
                _log_rows(client, child.info.run_id, seed_rows)
                tracking.finish_run(client, child.info.run_id)
                rows.extend(seed_rows)
            out.mkdir(exist_ok=True)
            write_csv(rows, out / CSV_NAME)
            status = "FINISHED"
        finally:
            tracking.finish_run(client, parent_id, status)
    return parent_id, rows


def attach(parent_id: str, paths: list[Path]) -> None:
    """The CSV, figure and table as the parent run's artifacts."""
    client = tracking.make_client(names.default_tracking_uri())
    for path in paths:
        client.log_artifact(parent_id, str(path))


def write_csv(rows: list[dict], path: Path) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, path)


def _log_params(client, run_id: str, params: dict[str, str]) -> None:
    from mlflow.entities import Param  # deferred: mlflow

    client.log_batch(run_id, params=[Param(k, v) for k, v in params.items()])


def _log_rows(client, run_id: str, rows: list[dict]) -> None:
    from mlflow.entities import Metric  # deferred: mlflow

    now = int(time.time() * 1000)
    metrics = [Metric(f"probe/{r['optimizer']}/{r['control']}/{_safe(r['method'])}/{col}", float(r[col]), now,
                      int(r["step"])) for r in rows for col in LOGGED if not math.isnan(float(r[col]))]
    for start in range(0, len(metrics), tracking.MAX_METRICS_PER_BATCH):
        client.log_batch(run_id, metrics=metrics[start:start + tracking.MAX_METRICS_PER_BATCH])


def _safe(label: str) -> str:
    """An MLflow metric-name segment from a method label ("AsymGRPO (0.9, 0.4)" -> "AsymGRPO_0.9_0.4")."""
    return "_".join(label.replace("(", " ").replace(")", " ").replace(",", " ").split())


class _Progress:
    """A Rich progress bar over the one-update forks (silent when not asked for)."""

    def __init__(self, plan: ProbePlan, show: bool):
        self.plan, self.show = plan, show

    def __enter__(self):
        if self.show:

            self.progress = Progress(TextColumn("probe prop1"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                                     TextColumn("{task.fields[info]}"))
            self.progress.start()
            self.task = self.progress.add_task("probe", total=self.plan.updates, info="")
        return self

    def advance(self) -> None:
        if self.show:
            self.progress.advance(self.task)

    def note(self, seed: int, step: int) -> None:
        if self.show:
            self.progress.update(self.task, info=f"seed {seed}, trajectory step {step}")

    def __exit__(self, *exc) -> None:
        if self.show:
            self.progress.stop()
