"""One trial under Ray Tune: a plain function trainable that runs a backend and reports every step.

``run_trial(config, context)`` gets the TrialSpec (as a dict) in its Tune config and the sweep's
runtime facts (tracking URI, parent run, work root) through ``tune.with_parameters``, so a resumed
sweep can hand the same trials a new tracking server. Every step goes to Tune (``tune.report``)
and to the trial's MLflow child run. The work directory is deterministic per trial key, so a retry
resumes from the engine's checkpoints, and the MLflow run is found again by that key, so a retry
continues it without duplicate steps. A trial whose run already FINISHED with every step is not
run again (a resumed sweep whose last state snapshot predates that trial's end).
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

from backends import get_backend
from experiments.plugins import load_plugins
from experiments.spec import TrialSpec
from orchestrator import tracking, trial_run
from orchestrator.ledger import CostMeter

# Test hook: "NAME:STEP" (NAME may be "*") makes that trial's process die at STEP on its first
# attempt only (a marker file in its work directory records the crash), as a killed worker would.
CRASH_HOOK_ENV = "ASYM_TEST_CRASH_AT"


@dataclass(frozen=True)
class SweepContext:
    """What every trial of a sweep shares, besides its own spec."""

    sweep: str
    tracking_uri: str
    experiment_id: str
    parent_run_id: str | None
    work_root: str  # absolute: Tune may change a trial's working directory
    cpus_per_trial: float | None = None  # None: what the backend asks for (``backend.resources``)
    gpus_per_trial: float | None = None


def trial_resources(spec: TrialSpec, cpus: float | None = None, gpus: float | None = None) -> dict[str, float]:
    """The Ray resources one trial reserves: its backend's request, with --cpus/--gpus-per-trial on top."""

    backend = get_backend(spec.backend)
    wanted = dict(backend.resources(spec))
    if cpus is not None:
        wanted["CPU"] = cpus
    if gpus is not None:
        wanted["GPU"] = gpus
    return {key: float(value) for key, value in wanted.items() if value}


def placement(config: Mapping[str, Any], cpus: float | None = None, gpus: float | None = None):
    """Tune's per-trial resource request (``tune.with_resources`` calls it with the trial's config)."""
    from ray.tune import PlacementGroupFactory  # deferred: ray

    return PlacementGroupFactory([trial_resources(spec_from_config(config), cpus, gpus)])


def trial_workdir(work_root: str | Path, sweep: str, trial: TrialSpec) -> Path:
    return Path(work_root) / "trials" / sweep / trial.key


def spec_from_config(config: Mapping[str, Any]) -> TrialSpec:
    """The trial's spec, as the planner made it (a grid cell, or an Optuna sample planned by
    ``orchestrator.search.PlannedSearch``): Tune's config carries the whole TrialSpec."""
    return TrialSpec.from_dict(config["trial"])


class StepReporter:
    """The backend's ``report``: logs each step to MLflow and forwards it (with the latest eval
    metrics carried along, so Tune's searcher and the live table always see them)."""

    def __init__(self, tracker, forward: Callable[[dict[str, float]], None] | None = None,
                 crash_check: Callable[[int], None] | None = None, durable_every: int | None = None,
                 meter: Callable[[], dict[str, float]] | None = None):
        self.tracker, self.forward, self.crash_check = tracker, forward, crash_check
        self.meter = meter  # the ledger's cumulative cost, logged with every step
        # Steps at which every metric so far must be in MLflow before training goes on: the
        # backend's checkpoint cadence, so a retry (which resumes at the last checkpoint) can
        # never skip past steps whose metrics were still in the buffer.
        self.durable_every = durable_every
        self.latest_eval: dict[str, float] = {}
        self.steps_seen = 0
        self.reporting_s = 0.0  # wall time spent in this reporter (tracking + Tune), not training
        self.setup_s = 0.0  # the trainable's time before the backend started (run lookup, resources)

    def __call__(self, step: int, metrics: Mapping[str, float]) -> None:
        started = time.perf_counter()
        if self.crash_check is not None:
            self.crash_check(step)
        clean = {k: float(v) for k, v in metrics.items() if v is not None and math.isfinite(float(v))}
        if self.meter is not None and step > 0:
            clean.update(self.meter())
        self.tracker.log_step(step, clean)
        if self.durable_every and step % self.durable_every == 0:
            self.tracker.buffer.flush(block=True)
        self.latest_eval.update({k: v for k, v in clean.items() if k.startswith("eval/")})
        self.steps_seen += 1
        if self.forward is not None:
            # Tune also gets the time this reporter has taken so far (MLflow + Tune), for the benchmark.
            self.forward({**self.latest_eval, **clean, "step": step, "asym_reporting_s": self.reporting_s,
                          "asym_setup_s": self.setup_s})
        self.reporting_s += time.perf_counter() - started


def run_tracked(trial: TrialSpec, backend, tracker, workdir: Path, reporter: StepReporter) -> None:
    """Run the backend; the MLflow run ends FINISHED, KILLED (stopped) or FAILED (and the error propagates)."""
    workdir.mkdir(parents=True, exist_ok=True)
    tracker.mark_running()
    try:
        backend.run(trial, reporter, workdir)
    except BaseException as exc:
        # Stopped, not failed: Tune stops a trial (ASHA, Ctrl-C on the driver) with sys.exit(0) from
        # tune.report; a Ctrl-C in the terminal reaches the trial processes as KeyboardInterrupt.
        try:
            tracker.close("KILLED" if isinstance(exc, (KeyboardInterrupt, SystemExit)) else "FAILED")
        except Exception:
            pass  # the original error is the one to show
        raise
    tracker.close("FINISHED")


def run_trial(config: dict, context: SweepContext) -> None:
    """The Tune function trainable."""
    started = time.perf_counter()
    from ray import tune  # deferred: ray

    spec = spec_from_config(config)
    load_plugins(spec.plugins)  # a user's estimators, registered in this (fresh) worker process too
    client = tracking.make_client(context.tracking_uri)
    tracker = trial_run.TrialRun.open(client, context.experiment_id, spec, sweep=context.sweep,
                                     parent_run_id=context.parent_run_id)
    if tracker.is_complete(spec.steps):
        tune.report({**tracker.latest_metrics(), "step": tracker.last_step(), "skipped": 1.0})
        return
    backend = get_backend(spec.backend)
    got = trial_resources(spec, context.cpus_per_trial, context.gpus_per_trial)
    backend.configure_runtime(got.get("CPU", 1.0), got.get("GPU", 0.0))
    # A backend that runs its own logger (verl) attaches it to this trial's run.
    os.environ["MLFLOW_TRACKING_URI"] = context.tracking_uri
    os.environ["MLFLOW_RUN_ID"] = tracker.run_id
    workdir = trial_workdir(context.work_root, context.sweep, spec)

    held = got  # what Tune reserved for this trial
    meter = CostMeter(held.get("GPU", 0.0), previous=tracker.latest_metrics())
    reporter = StepReporter(tracker, forward=tune.report, crash_check=_crash_hook(spec, workdir),
                            durable_every=backend.checkpoint_every, meter=meter)
    reporter.setup_s = time.perf_counter() - started
    run_tracked(spec, backend, tracker, workdir, reporter)


def _crash_hook(spec: TrialSpec, workdir: Path) -> Callable[[int], None] | None:
    value = os.environ.get(CRASH_HOOK_ENV)
    if not value:
        return None
    name, _, step = value.rpartition(":")
    if name not in ("*", spec.name):
        return None
    marker = workdir / "crashed-once"

    def check(current: int) -> None:
        if current == int(step) and not marker.exists():
            marker.write_text("the test hook killed this trial once\n")
            os._exit(17)

    return check
