"""The ledger read back: GPU-hours and CPU-hours per configuration, used and projected.

``trial_costs`` reads every child run of a sweep (running, finished, failed) with its latest
``cost/*`` metrics and its progress (last step / planned steps); ``cost_by_configuration`` is the
pure summary that `asym sweep status` prints and `asym report` tabulates. Projection assumes each
unfinished trial keeps its own pace: projected = used / progress (a trial with no step yet
counts as the mean finished trial of its configuration, else as nothing).
"""

from __future__ import annotations

import time

import pandas as pd

from analysis.load import _child_runs, open_sweep
from common import metric_names as M
from experiments import tracking_names as tn

COLUMNS = ("trial", "label", "status", "steps_done", "steps", "gpu_seconds", "cpu_seconds", "wall_seconds", "start_s")


def trial_costs(name: str, tracking_uri: str | None = None) -> pd.DataFrame:
    """One row per trial of sweep ``name``: its status, progress and recorded cost."""
    client, experiment_id, parent = open_sweep(name, tracking_uri or tn.default_tracking_uri())
    rows = []
    for run in _child_runs(client, experiment_id, parent.info.run_id):
        metrics = run.data.metrics
        history = client.get_metric_history(run.info.run_id, M.COST_WALL_SECONDS) if M.COST_WALL_SECONDS in metrics else []
        rows.append({
            "trial": run.data.tags.get(tn.TAG_TRIAL, run.info.run_name),
            "label": run.data.params.get("label", run.info.run_name),
            "status": run.info.status,
            "steps_done": max((m.step for m in history), default=0),
            "steps": int(float(run.data.params.get("steps", 0) or 0)),
            "gpu_seconds": float(metrics.get(M.COST_GPU_SECONDS, 0.0)),
            "cpu_seconds": float(metrics.get(M.COST_CPU_SECONDS, 0.0)),
            "wall_seconds": float(metrics.get(M.COST_WALL_SECONDS, 0.0)),
            "start_s": run.info.start_time / 1000.0,
        })
    frame = pd.DataFrame(rows, columns=list(COLUMNS))
    frame.attrs["planned"] = int(float(parent.data.params.get("trials", len(rows)) or len(rows)))
    frame.attrs["status"] = parent.info.status
    return frame


def cost_by_configuration(trials: pd.DataFrame) -> pd.DataFrame:
    """Per label: trials, finished, GPU-hours and CPU-hours used, GPU-hours projected at the end."""
    if trials.empty:
        return pd.DataFrame(columns=["label", "trials", "finished", "gpu_hours", "cpu_hours", "projected_gpu_hours",
                                     "projected_cpu_hours"])
    frame = trials.copy()
    progress = (frame["steps_done"] / frame["steps"].where(frame["steps"] > 0)).clip(upper=1.0)
    done = frame["status"] == "FINISHED"
    progress = progress.where(~done, 1.0)
    out = []
    for label, rows in frame.groupby("label", sort=False):
        p = progress[rows.index]
        finished = rows[done[rows.index]]
        projected = {}
        for unit in ("gpu", "cpu"):
            used = rows[f"{unit}_seconds"]
            mean_finished = finished[f"{unit}_seconds"].mean() if len(finished) else 0.0
            running = rows["status"] == "RUNNING"
            scaled = used.where(~(running & (p > 0)), used / p)  # a running trial at its own pace
            scaled = scaled.where(~(running & ~(p > 0)), mean_finished)  # not started yet
            projected[unit] = float(scaled.sum()) / 3600.0
        out.append({"label": label, "trials": len(rows), "finished": int(done[rows.index].sum()),
                    "gpu_hours": float(rows["gpu_seconds"].sum()) / 3600.0,
                    "cpu_hours": float(rows["cpu_seconds"].sum()) / 3600.0,
                    "projected_gpu_hours": projected["gpu"], "projected_cpu_hours": projected["cpu"]})
    return pd.DataFrame(out)


def estimated_finish(trials: pd.DataFrame, now: float | None = None) -> float | None:
    """Unix time the sweep should end at its pace so far (None when finished or nothing ran yet)."""
    running = trials[trials["status"] == "RUNNING"]
    if running.empty:
        return None
    now = time.time() if now is None else now
    progress = (running["steps_done"] / running["steps"].where(running["steps"] > 0)).fillna(0.0)
    if not (progress > 0).any():
        return None
    elapsed = now - float(trials["start_s"].min())
    total = max(len(trials), int(trials.attrs.get("planned", len(trials))))
    done_equiv = float((trials["status"] == "FINISHED").sum()) + float(progress.sum())
    return now + elapsed * (total - done_equiv) / done_equiv


def cost_table(runs: pd.DataFrame, metrics: pd.DataFrame) -> pd.DataFrame:
    """Per configuration of a loaded sweep (``analysis.load.SweepData``): trials, GPU-h, CPU-h, in total and per trial."""
    costs = metrics[metrics["metric"].isin([M.COST_GPU_SECONDS, M.COST_CPU_SECONDS])]
    if costs.empty:
        return pd.DataFrame()
    last = costs.sort_values("step").groupby(["run_id", "metric"])["value"].last().unstack("metric")
    last = last.reindex(columns=[M.COST_GPU_SECONDS, M.COST_CPU_SECONDS]).fillna(0.0)
    frame = runs[["run_id", "label"]].merge(last, left_on="run_id", right_index=True, how="left").fillna(0.0)
    out = frame.groupby("label", sort=False).agg(trials=("run_id", "size"), gpu_seconds=(M.COST_GPU_SECONDS, "sum"),
                                                 cpu_seconds=(M.COST_CPU_SECONDS, "sum")).reset_index()
    out["gpu_hours"] = out.pop("gpu_seconds") / 3600.0
    out["cpu_hours"] = out.pop("cpu_seconds") / 3600.0
    out["gpu_hours_per_trial"] = out["gpu_hours"] / out["trials"]
    out["cpu_hours_per_trial"] = out["cpu_hours"] / out["trials"]
    return out
