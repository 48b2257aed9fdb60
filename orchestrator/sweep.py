"""Run a planned sweep with Ray Tune, tracked in MLflow; resume an interrupted one.

The driver follows a trial's path, one module per stage:

    plan (``experiments.plan``, already validated; options and state: ``orchestrator.sweep_state``)
    -> open: tracking (``orchestrator.tracking_service``: a local ``mlflow server`` booting unless a
       URI is given), base models made once, trial identities, finished trials looked up and linked
       (``orchestrator.reuse``), the parent run
    -> launch (``orchestrator.sweep_launch``: local Ray in parallel with the server, the cluster's
       checks, the Tuner running ``orchestrator.trial.run_trial``)
    -> watch (``orchestrator.sweep_watch``: Ctrl-C; ``orchestrator.live``: the progress table)
    -> close (``orchestrator.sweep_close``: results, runs left RUNNING ended, the ledger's totals).

Everything lives under ``./.asym``: the Tune experiment in ``sweeps/<name>`` (with
``asym_sweep.json``, what ``resume`` needs), the trials' work directories (engine checkpoints) in
``trials/<name>/<trial key>``, and the default MLflow store in ``mlflow/``. With ``--storage PATH``
(a folder every node mounts) those three live under PATH instead: a trial retried on another node
resumes from its checkpoints there, and `asym sweep resume --storage PATH` works from any node. A
sweep on a multi-node Ray cluster without it is refused (``check_storage_for``).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Sequence

from rich.console import Console

from backends import get_backend
from common.errors import UserError
from experiments.spec import TrialSpec
from orchestrator import reuse, tracking
from orchestrator.identity import stamp
from orchestrator.mlflow_server import store_paths
from orchestrator.sweep_close import log_costs, outcome_of, reconcile_runs
from orchestrator.sweep_launch import (alive_nodes, check_declared_resources, check_storage_for, declared_resources,
                                       init_ray, make_tuner, resources_of)
from orchestrator.sweep_note import SweepNote
from orchestrator.sweep_state import (STATE_FILE, SweepOptions, SweepOutcome, check_name, check_new_sweep, read_state,
                                      resume_command, sweep_dir, write_state)
from orchestrator.sweep_watch import sigint_watch
from orchestrator.tracking_service import TrackingService, preflight, tracking_service


def run_sweep(trials: Sequence[TrialSpec], options: SweepOptions, *, workdir: Path | None = None,
              console=None, planner: tuple[Any, dict[str, Any]] | None = None, rerun: bool = False) -> SweepOutcome:
    """Run a new sweep of ``trials`` (validated by the planner) to completion.

    An Optuna sweep (``options.search``) passes ``planner`` = (study, plan options): every sample
    is planned by ``experiments.plan.plan_sampled`` into its own TrialSpec; ``trials`` is then the
    one template its dry run showed (used for the base models and the parent run's params).
    A trial whose key already FINISHED in the store is linked, not run (``orchestrator.reuse``),
    unless ``rerun``.
    """
    if not trials:
        raise ValueError("the plan has no trials")
    if options.is_optuna and planner is None:
        raise ValueError("an Optuna sweep needs the planner's study and options")
    preflight()
    check_new_sweep(options.name, workdir, options.storage)

    for backend_name in sorted({t.backend for t in trials}):  # the backends' own one-line refusals
        get_backend(backend_name).preflight([t for t in trials if t.backend == backend_name])
    return _execute(trials, options, workdir=workdir, console=console, restore=False, planner=planner, rerun=rerun)


def resume_sweep(name: str, *, workdir: Path | None = None, console=None, storage: str | None = None) -> SweepOutcome:
    """Continue an interrupted sweep from its Tune experiment state (finished trials are not rerun).

    ``storage``: the shared folder the sweep was started on, as this node mounts it (the mount
    point may differ between nodes: the one given here is used, not the one recorded)."""
    from ray import tune  # deferred: ray; Ray loads only once a sweep runs (`asym --help` stays fast)

    check_name(name)
    directory = sweep_dir(name, workdir, storage)
    if not (directory / STATE_FILE).exists():
        known = sorted(p.name for p in directory.parent.glob("*") if (p / STATE_FILE).exists()) if directory.parent.exists() else []
        raise UserError(f"no sweep named '{name}' in {directory.parent}" + (f"; known: {', '.join(known)}" if known else ""))
    if not tune.Tuner.can_restore(str(directory)):
        raise UserError(f"sweep '{name}' has no Tune experiment state to resume in {directory}; start it again "
                        "with `asym sweep ... --name` another name")
    preflight()
    options, trials = read_state(name, workdir, storage)
    options = replace(options, storage=str(storage) if storage else None)
    return _execute(trials, options, workdir=workdir, console=console, restore=True)


@dataclass
class _Opened:
    """What the open stage leaves for launch and close: the store's ids and the trials' split."""

    early: Any  # a client on the store (or the user's server), usable before the local server answers
    experiment_id: str
    parent_run_id: str
    to_run: list[TrialSpec]
    reused: list[dict[str, Any]]  # outcome rows of trials linked from finished runs
    launches: bool  # Tune runs: a trial is left to run, or Optuna samples, or a restore


def _execute(trials: Sequence[TrialSpec], options: SweepOptions, *, workdir: Path | None, console,
             restore: bool, planner=None, rerun: bool = False) -> SweepOutcome:
    """open (tracking server booting | base models, identities, reuse lookup, parent run) -> launch
    (local Ray, only when a trial is left to run) -> watch (Tune) -> close."""

    console = console or Console(stderr=True, soft_wrap=True)
    os.environ.setdefault("TUNE_GLOBAL_CHECKPOINT_S", "2")  # snapshot the experiment state often: resume loses little
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    ray_started = [False]
    with tracking_service(workdir, console, options.storage) as service:
        try:
            trials = _prepare(trials, restore)
            if service.fresh:  # nothing to reuse: Ray starts while the store is made and the server boots
                ray_started[0] = init_ray()
            opened = _open(trials, options, service, workdir, restore=restore, rerun=rerun, ray_started=ray_started)
            _announce(console, trials, options, service, opened)
            if not restore:
                write_state(trials, options, workdir)
            note_client = service.client() if opened.launches else opened.early
            note = SweepNote(note_client, opened.experiment_id, opened.parent_run_id, sweep=options.name,
                                      study=options.study,
                                      planned=[] if options.is_optuna else [t.name for t in trials]).start()
            outcome = _launch_and_watch(opened, options, service, workdir, console, restore, planner)
            outcome.storage = options.storage
            outcome.planned = options.search.trials if options.is_optuna else len(trials)
            outcome.results += opened.reused
            status = _close(service.client() if opened.launches else opened.early, opened, options, outcome)
            note.stop(status)
            return outcome
        finally:
            if ray_started[0]:
                import ray  # deferred: ray

                ray.shutdown()


def _prepare(trials: Sequence[TrialSpec], restore: bool) -> list[TrialSpec]:
    """Each backend makes what its trials need once (base models, data); trials get their identity."""

    for backend_name in sorted({t.backend for t in trials}):
        get_backend(backend_name).prepare([t for t in trials if t.backend == backend_name])
    return list(trials) if restore else stamp(trials)  # a restored sweep's trials carry the identity they started with


def _open(trials: Sequence[TrialSpec], options: SweepOptions, service: TrackingService, workdir: Path | None, *,
          restore: bool, rerun: bool, ray_started: list[bool]) -> _Opened:
    """The experiment, the finished trials to reuse, the cluster's checks (before the parent run: a
    refused sweep leaves none), the parent run and the reused trials' links."""

    early = service.early_client()
    experiment_id = tracking.with_retries(
        lambda: tracking.ensure_experiment(early, _artifact_root(workdir, options.storage)), deadline_s=60,
        what="create the MLflow experiment")
    found = {}
    if not restore and not rerun and not options.is_optuna:
        found = tracking.with_retries(lambda: reuse.find_finished(early, experiment_id, trials),
                                      deadline_s=60, what="look up finished trials")
    to_run = [t for t in trials if t.key not in found]
    launches = bool(to_run) or options.is_optuna or restore
    if launches:
        if not ray_started[0]:
            ray_started[0] = init_ray()  # the server boots meanwhile
        check_storage_for(len(alive_nodes()), options.storage)
        check_declared_resources(resources_of(to_run, options), declared_resources())
    parent_run_id = tracking.with_retries(
        lambda: tracking.open_sweep_run(early, experiment_id, sweep=options.name, study=options.study,
                                        params=_sweep_params(trials, options)),
        deadline_s=60, what="open the sweep's parent run")
    reused = reuse.link_reused(early, experiment_id, trials, found, options.name, parent_run_id)
    return _Opened(early, experiment_id, parent_run_id, to_run, reused, launches)


def _announce(console, trials: Sequence[TrialSpec], options: SweepOptions, service: TrackingService,
              opened: _Opened) -> None:
    count = options.search.trials if options.is_optuna else len(trials)
    console.print(f"sweep [bold]{options.name}[/]: {count} trials"
                  + (f", {len(opened.reused)} reused from finished runs (same key; --rerun runs them again), "
                     f"{len(opened.to_run)} to run" if opened.reused else "")
                  + f"; MLflow {tracking.redact(service.uri)} (parent run {opened.parent_run_id}); "
                  f"resume with `{resume_command(options.name, options.storage)}`", highlight=False)


def _launch_and_watch(opened: _Opened, options: SweepOptions, service: TrackingService, workdir: Path | None,
                      console, restore: bool, planner) -> SweepOutcome:
    """Tune runs the trials left (nothing to launch: an outcome with no rows); Ctrl-C is watched."""
    if not opened.launches:
        return SweepOutcome(name=options.name, parent_run_id=opened.parent_run_id, tracking_uri=service.uri)
    tuner = make_tuner(opened.to_run, options, service.uri, opened.experiment_id, opened.parent_run_id, workdir,
                       console, restore, planner)
    with sigint_watch() as interrupted:
        grid = tuner.fit()
    outcome = outcome_of(grid, options, service.uri, opened.parent_run_id)
    outcome.interrupted = interrupted()
    return outcome


def _close(client, opened: _Opened, options: SweepOptions, outcome: SweepOutcome) -> str:
    """Runs left RUNNING ended, the costs totalled, the parent run finished; its status."""
    # the tracking server may be away for a while when the last trial ends: wait for it
    tracking.with_retries(lambda: reconcile_runs(client, opened.experiment_id, options.name, outcome),
                          deadline_s=180, what="close the trials' runs")
    log_costs(client, opened.experiment_id, options.name, opened.parent_run_id)
    status = "KILLED" if outcome.interrupted else "FAILED" if outcome.failed else "FINISHED"
    tracking.finish_run(client, opened.parent_run_id, status)
    return status


def _sweep_params(trials: Sequence[TrialSpec], options: SweepOptions) -> dict[str, str]:
    params = {"study": options.study, "trials": str(options.search.trials if options.is_optuna else len(trials)),
              "command": tracking.redact(" ".join(["asym", *sys.argv[1:]]))[:500],
              "backend": ",".join(sorted({t.backend for t in trials})),
              "models": ",".join(sorted({t.model for t in trials})),
              "seeds": ",".join(str(s) for s in sorted({t.seed for t in trials})),
              "steps": str(max(t.steps for t in trials)), "scheduler": options.scheduler,
              "max_failures": str(options.max_failures)}
    if options.is_optuna:
        params.update(search="optuna", search_metric=options.search.metric,
                      **{f"range.{r.key}": str([r.low, r.high]) + (" log" if r.log else "") for r in options.search.ranges})
    return params


def _artifact_root(workdir: Path | None, storage: str | None = None) -> str | None:
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return None

    return store_paths(workdir, storage)[1]


