"""Close a sweep: each trial's result from Tune, child runs left RUNNING ended as KILLED / FAILED, and
the ledger's totals on the parent run."""

from __future__ import annotations

import logging

from experiments import tracking_names as names
from orchestrator import tracking
from orchestrator.ledger import log_sweep_totals
from orchestrator.sweep_state import SweepOptions, SweepOutcome
from orchestrator.trial import spec_from_config

def outcome_of(grid, options: SweepOptions, uri: str, parent_run_id: str) -> SweepOutcome:
    outcome = SweepOutcome(name=options.name, parent_run_id=parent_run_id, tracking_uri=uri)
    for result in grid:
        if result.config is None:  # a trial Tune had not started when Ctrl-C stopped it
            continue
        spec = spec_from_config(result.config)
        metrics = result.metrics or {}
        outcome.results.append({
            "name": spec.name, "key": spec.key, "status": "ERROR" if result.error else "DONE",
            "step": metrics.get("step"), "error": str(result.error).strip().splitlines()[-1] if result.error else None,
            **{k: v for k, v in metrics.items() if k.startswith(("train/", "eval/"))},
        })
    return outcome


def reconcile_runs(client, experiment_id: str, sweep: str, outcome: SweepOutcome) -> None:
    """Child runs Tune stopped early (ASHA, Ctrl-C) or whose process died end KILLED / FAILED, never RUNNING."""
    status_by_key = {r["key"]: r["status"] for r in outcome.results}
    runs = tracking.find_runs(client, experiment_id, {names.TAG_KIND: names.KIND_TRIAL, names.TAG_SWEEP: sweep})
    finished = {run.data.tags.get(names.TAG_TRIAL_KEY) for run in runs if run.info.status == "FINISHED"}
    for run in runs:
        key = run.data.tags.get(names.TAG_TRIAL_KEY)
        stopped = run.info.status == "FAILED" and outcome.interrupted  # Tune's stop raised in the trial
        if (run.info.status == "RUNNING" or stopped) and status_by_key.get(key) != "ERROR":
            tracking.finish_run(client, run.info.run_id, "KILLED")
        elif run.info.status == "RUNNING":
            tracking.finish_run(client, run.info.run_id, "FAILED")
    if outcome.interrupted:  # a trial Tune stopped on Ctrl-C has no error, but it is not done
        for result in outcome.results:
            if result["status"] == "DONE" and result["key"] not in finished:
                result["status"] = "KILLED"


def log_costs(client, experiment_id: str, sweep: str, parent_run_id: str) -> None:
    """The ledger's totals onto the parent run (a tracking hiccup here must not fail a finished sweep)."""
    def total() -> None:
        runs = tracking.find_runs(client, experiment_id, {names.TAG_KIND: names.KIND_TRIAL, names.TAG_SWEEP: sweep})
        log_sweep_totals(client, parent_run_id, runs)

    try:
        tracking.with_retries(total, deadline_s=120, what="total the sweep's costs")
    except Exception as exc:  # noqa: BLE001 - reported, the sweep's outcome stands
        logging.getLogger(__name__).warning("could not total the sweep's costs: %s", tracking.redact_text(str(exc)))
