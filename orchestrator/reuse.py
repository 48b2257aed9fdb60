"""Trial reuse by content: a trial whose key already FINISHED in the tracking store is not run again.

The key (``TrialSpec.key``) hashes every setting that changes a trial's result, the engine's version
and the base model's content hash (``orchestrator.identity``), so two trials with one key compute
the same thing. ``find_finished`` looks the planned keys up among FINISHED trial runs of every
sweep (a FAILED or KILLED run is never reused: its trial runs again); ``link`` gives the new sweep a
link run for each reused trial (layout: ``experiments.tracking_names``), so MLflow shows the trial
under the new parent and ``asym report`` reads the origin's histories. ``--rerun`` skips the lookup.
"""

from __future__ import annotations

import time
from typing import Any, Iterable, Mapping, Sequence

from common.metric_names import COST_METRICS
from experiments import tracking_names as names
from experiments.spec import TrialSpec
from orchestrator import tracking
from orchestrator.tracking import find_runs

MAX_TAG_CHARS = 5000  # MLflow's limit on a tag value is 8000 (sqlite); run ids are 32 chars


def find_finished(client, experiment_id: str, trials: Sequence[TrialSpec]) -> dict[str, Any]:
    """trial key -> the FINISHED run that computed it (the oldest origin), for the keys that have one.

    One query per key (MLflow's search has no IN over tags); each hits the key's tag index."""
    found: dict[str, Any] = {}
    for key in sorted({t.key for t in trials}):
        filter_string = (f"tags.`{names.TAG_TRIAL_KEY}` = '{key}' and tags.`{names.TAG_KIND}` = "
                         f"'{names.KIND_TRIAL}' and attributes.status = 'FINISHED'")
        runs = client.search_runs([experiment_id], filter_string=filter_string, max_results=200,
                                  order_by=["attributes.start_time ASC"])
        origins = [r for r in runs if names.TAG_REUSED_FROM not in r.data.tags]
        if origins:
            found[key] = origins[0]
    return found


def link(client, experiment_id: str, trial: TrialSpec, origin, *, sweep: str, parent_run_id: str) -> str:
    """A FINISHED child run of the new sweep standing for ``origin`` (no training, no histories copied)."""
    from mlflow.entities import Metric, Param  # deferred: mlflow

    origin_id = origin.info.run_id
    existing = [r for r in _runs_of(client, experiment_id, sweep, trial.key)]
    if existing:  # a resumed driver linked it already
        return existing[0].info.run_id
    tags = {names.TAG_KIND: names.KIND_TRIAL, names.TAG_TRIAL_KEY: trial.key, names.TAG_SWEEP: sweep,
            names.TAG_STUDY: trial.study, names.TAG_TRIAL: trial.name, names.PARENT_RUN_ID: parent_run_id,
            names.TAG_REUSED_FROM: origin_id,
            "mlflow.note.content": f"Reused: this trial finished in run {origin_id} of sweep "
                                   f"'{origin.data.tags.get(names.TAG_SWEEP, '?')}' (same key {trial.key}); "
                                   "its per-step histories live there."}
    run = client.create_run(experiment_id, run_name=trial.name, tags=tags)
    now_ms = int(time.time() * 1000)
    params = [Param(k, v[:6000]) for k, v in trial.params().items()]

    # The origin's latest values (so MLflow's tables show them), minus its cost: reuse costs nothing here.
    metrics = [Metric(k, float(v), now_ms, trial.steps) for k, v in origin.data.metrics.items()
               if k not in COST_METRICS]
    for i in range(0, max(len(params), len(metrics)), 100):
        client.log_batch(run.info.run_id, params=params[i:i + 100], metrics=metrics[i:i + 100])
    client.set_terminated(run.info.run_id, "FINISHED")
    client.set_tag(origin_id, f"{names.TAG_REUSED_IN}.{sweep}", parent_run_id)
    return run.info.run_id


def list_on_parent(client, parent_run_id: str, origin_ids: Iterable[str]) -> None:
    """The parent run's TAG_REUSED_RUNS (continued in .1, .2, ... past MAX_TAG_CHARS)."""
    for i, chunk in enumerate(_tag_chunks(sorted(origin_ids))):
        client.set_tag(parent_run_id, names.TAG_REUSED_RUNS + (f".{i}" if i else ""), chunk)


def reused_runs(tags: Mapping[str, str]) -> list[str]:
    """The origin run ids a parent run lists (``list_on_parent``)."""
    parts = [tags[k] for k in sorted(tags, key=_chunk_index) if k == names.TAG_REUSED_RUNS
             or k.startswith(names.TAG_REUSED_RUNS + ".")]
    return [r for part in parts for r in part.split(",") if r]


def _chunk_index(key: str) -> int:
    tail = key.rpartition(".")[2]
    return int(tail) if tail.isdigit() else 0


def _tag_chunks(ids: list[str]) -> Iterable[str]:
    chunk: list[str] = []
    for run_id in ids:
        if chunk and len(",".join(chunk + [run_id])) > MAX_TAG_CHARS:
            yield ",".join(chunk)
            chunk = []
        chunk.append(run_id)
    if chunk:
        yield ",".join(chunk)


def _runs_of(client, experiment_id: str, sweep: str, key: str) -> list:
    return find_runs(client, experiment_id, {names.TAG_KIND: names.KIND_TRIAL, names.TAG_SWEEP: sweep,
                                             names.TAG_TRIAL_KEY: key})


def link_reused(client, experiment_id: str, trials: Sequence[TrialSpec], found: dict, sweep: str,
                 parent_run_id: str) -> list[dict[str, Any]]:
    """Link each reused trial into the new sweep; its outcome rows (status DONE, reused)."""
    rows = []
    for trial in trials:
        origin = found.get(trial.key)
        if origin is None:
            continue
        tracking.with_retries(lambda: link(client, experiment_id, trial, origin, sweep=sweep,
                                                 parent_run_id=parent_run_id),
                              deadline_s=60, what=f"link the finished run of {trial.name}")
        metrics = origin.data.metrics
        rows.append({"name": trial.name, "key": trial.key, "status": "DONE", "reused": origin.info.run_id,
                     "step": trial.steps, "error": None,
                     **{k: v for k, v in metrics.items() if k.startswith(("train/", "eval/"))}})
    if rows:
        tracking.with_retries(lambda: list_on_parent(client, parent_run_id, [r["reused"] for r in rows]),
                              deadline_s=60, what="list the reused runs on the parent run")
    return rows
