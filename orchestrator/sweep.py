"""Run a planned sweep with Ray Tune, tracked in MLflow; resume an interrupted one.

Tune does all the scheduling: trial resources (``tune.with_resources``), the concurrency limit,
``FailureConfig`` retries, the ASHA scheduler, Optuna search, and experiment restore
(``Tuner.restore``). This module only wires those objects together:

    plan (already validated) -> tracking service (local ``mlflow server`` booting unless a URI is
    given) -> base models made once -> trial identities -> finished trials looked up and linked,
    not rerun -> local Ray (in parallel with the server) -> parent run -> Tuner(run_trial) -> final statuses

Everything lives under ``./.asym``: the Tune experiment in ``sweeps/<name>`` (with
``asym_sweep.json``, what ``resume`` needs), the trials' work directories (engine checkpoints) in
``trials/<name>/<trial key>``, and the default MLflow store in ``mlflow/``. With ``--storage PATH``
(a folder every node mounts) those three live under PATH instead: a trial retried on another node
resumes from its checkpoints there, and `asym sweep resume --storage PATH` works from any node. A
sweep on a multi-node Ray cluster without it is refused (``check_storage_for``).
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import signal
import sys
import threading
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

from experiments.spec import Search, SearchRange, TrialSpec
from orchestrator import tracking
from common.metric_names import EVAL_MEAN_ACCURACY
from experiments import tracking_names as names
from experiments.tracking_names import asym_root, storage_root
from common.errors import UserError

STATE_FILE = "asym_sweep.json"
SCHEDULERS = ("fifo", "asha")
OPTUNA_METRIC = EVAL_MEAN_ACCURACY  # ASHA's metric (a search names its own)


@dataclass(frozen=True)
class SweepOptions:
    """How a sweep runs (not what it runs: that is the trials)."""

    name: str
    study: str
    max_concurrent: int | None = None  # None: as many as the resources allow
    cpus_per_trial: float | None = None  # None: the backend's request (embedded: 1 CPU; verl: its preset's GPUs)
    gpus_per_trial: float | None = None
    scheduler: str = "fifo"
    max_failures: int = 2  # retries of a failed trial (FailureConfig)
    # An Optuna search (``asym sweep optuna``, a study file's ``search:``): its ranges and trials.
    search: Search | None = None
    storage: str | None = None  # a folder every node mounts (absolute); None: ./.asym on this machine

    def __post_init__(self) -> None:
        if self.scheduler not in SCHEDULERS:
            raise ValueError(f"--scheduler must be one of {', '.join(SCHEDULERS)}, got {self.scheduler!r}")
        if self.max_concurrent is not None and self.max_concurrent < 1:
            raise ValueError(f"--max-concurrent must be >= 1, got {self.max_concurrent}")
        if self.cpus_per_trial is not None and not self.cpus_per_trial > 0:
            raise ValueError(f"--cpus-per-trial must be > 0, got {self.cpus_per_trial}")
        if self.gpus_per_trial is not None and self.gpus_per_trial < 0:
            raise ValueError(f"--gpus-per-trial must be >= 0, got {self.gpus_per_trial}")
        if self.max_failures < 0:
            raise ValueError(f"--max-failures must be >= 0, got {self.max_failures}")
        check_name(self.name)

    @property
    def is_optuna(self) -> bool:
        return self.search is not None

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> "SweepOptions":
        """The options ``asdict`` wrote into the sweep's state file."""
        raw = dict(raw)
        if raw.get("search") is not None:
            search = dict(raw["search"])
            search["ranges"] = tuple(SearchRange(**r) for r in search["ranges"])
            raw["search"] = Search(**search)
        return cls(**raw)


@dataclass
class SweepOutcome:
    name: str
    parent_run_id: str
    tracking_uri: str
    results: list[dict[str, Any]] = field(default_factory=list)  # one per trial: name, status, metrics
    interrupted: bool = False  # Ctrl-C (SIGINT): Tune saved its state and stopped the trials
    planned: int = 0  # trials the sweep runs in all (Tune creates them lazily)
    storage: str | None = None  # the shared folder it runs on (--storage)

    @property
    def failed(self) -> list[str]:
        return [r["name"] for r in self.results if r["status"] == "ERROR"]


# --- names and places ----------------------------------------------------------------------------


def check_name(name: str) -> str:
    if not name or not all(c.isalnum() or c in "-_." for c in name) or name.startswith("."):
        raise ValueError(f"sweep name {name!r} may only use letters, digits, '-', '_' and '.'")
    return name


def default_name(study: str, trials: Sequence[TrialSpec], extra: str = "") -> str:
    """``<study>-<hash of the plan>``: the same command gives the same name, so it can be resumed."""
    blob = json.dumps(sorted(t.key for t in trials) + [extra])
    return f"{study}-{hashlib.sha1(blob.encode()).hexdigest()[:6]}"


def sweep_dir(name: str, workdir: Path | None = None, storage: str | None = None) -> Path:
    return storage_root(storage, workdir) / "sweeps" / name


def resume_command(name: str, storage: str | None = None) -> str:
    """What a user types to continue the sweep (shown in the banner and in errors)."""
    return f"asym sweep resume {name}" + (f" --storage {storage}" if storage else "")


def check_new_sweep(name: str, workdir: Path | None = None, storage: str | None = None) -> None:
    if sweep_dir(name, workdir, storage).exists():
        raise UserError(f"sweep '{name}' already exists in {sweep_dir(name, workdir, storage)}; continue it with "
                        f"`{resume_command(name, storage)}`, or choose another --name")


def check_storage_for(nodes: int, storage: str | None) -> None:
    """A sweep spread over several nodes needs a storage folder they all mount: without it a trial
    retried on another node starts from step 0 and the sweep's state dies with the driver's node."""
    if nodes > 1 and not storage:
        raise UserError(f"this Ray cluster has {nodes} nodes: pass --storage PATH (a folder every node mounts, "
                        "or `metadata: {storage: PATH}` in the cluster file) so retried trials resume from their "
                        "checkpoints and the sweep can be resumed from any node")


STANDARD_RESOURCES = ("CPU", "GPU", "memory", "object_store_memory")


def check_declared_resources(needs: Mapping[str, Mapping[str, float]], declared: Mapping[str, float]) -> None:
    """A trial asking for a custom resource the cluster does not declare (e.g. the admission units of
    a verl trial over several nodes, ``backends/verl/admission.py``) would wait forever: refuse it.
    Only custom resources are checked: CPUs and GPUs may still come with nodes an autoscaler adds."""
    for trial, resources in needs.items():
        for key, amount in resources.items():
            if key not in STANDARD_RESOURCES and declared.get(key, 0.0) < amount:
                raise UserError(f"trial '{trial}' needs {amount:g} {key}, which this Ray cluster declares "
                                f"{declared.get(key, 0.0):g} of; start its head with ray start --head "
                                f"--resources='{{\"asym_gpu_slot\": <GPUs>, \"asym_verl_job\": 1}}' (as cluster/*.yaml do)")


# --- the tracking service ------------------------------------------------------------------------


class TrackingService:
    """Where trials log, and a client the driver can use before any server answers.

    $MLFLOW_TRACKING_URI over http is used as is (checked before: ``preflight``). A sqlite store (the
    default ./.asym/mlflow one, or a sqlite URI given) is served by a local ``mlflow server`` for the
    sweep's length, so concurrent trials never write the sqlite file themselves. The server's boot
    (seconds) is off the critical path: the driver reads and writes the store directly (reuse
    lookup, parent run, links) while it boots and while Ray starts, and trials, which retry their
    first call, reach it later. On a fresh store the driver creates the schema first and starts the
    server after it, so the two never migrate one file at once.
    """

    def __init__(self, workdir: Path | None = None, console=None, storage: str | None = None):
        from common.net import free_port
        from orchestrator.mlflow_server import reap_orphans, run_dir, store_paths

        reap_orphans(run_dir(workdir))  # servers of drivers killed earlier on this store
        self.workdir = workdir
        self.console = console
        self.server = None
        given = os.environ.get("MLFLOW_TRACKING_URI")
        self.http = given if given and not given.startswith("sqlite:") else None
        self.store_uri, self.artifact_root = store_paths(workdir, storage)
        if given and not self.http:
            self.store_uri = given
        self.port = free_port()
        self.uri = self.http or f"http://127.0.0.1:{self.port}"
        self._early = None
        self._thread = None
        self._error: BaseException | None = None

    @property
    def _db(self) -> Path:
        return Path(self.store_uri.removeprefix("sqlite:///"))

    @property
    def fresh(self) -> bool:
        """A local store with no database yet (nothing in it to reuse)."""
        return self.http is None and not self._db.exists()

    def start(self) -> "TrackingService":
        """Boot the server now when the store exists; on a fresh store, create the schema and then
        boot the server in a thread (while the driver starts Ray)."""
        if self.http is None and self._db.exists():
            self._start_server()
        elif self.http is None:
            import threading

            self._thread = threading.Thread(target=self._make_store, name="asym-store", daemon=True)
            self._thread.start()
        return self

    def _make_store(self) -> None:
        try:
            from orchestrator.mlflow_server import prepare_store

            self._db.parent.mkdir(parents=True, exist_ok=True)
            prepare_store(self.store_uri, self.artifact_root)  # the schema, under the store's lock
            client = tracking.make_client(self.store_uri)
            self._early = client
            self._start_server()
        except BaseException as exc:  # re-raised by early_client, in the driver's thread
            self._error = exc

    def _start_server(self) -> None:
        from orchestrator.mlflow_server import LocalServer, run_dir

        self.server = LocalServer.start(self.store_uri, self.artifact_root,
                                        asym_root(self.workdir) / "logs" / "mlflow-server.log", port=self.port,
                                        pid_dir=run_dir(self.workdir))
        if self.console is not None:
            console = self.console
            self.server.supervise(lambda n: console.print(
                f"[sweep] the local mlflow server died; restarted it on the same port ({n} restart(s))",
                highlight=False, markup=False))

    def early_client(self):
        """A client for the driver's work before Tune starts: the store itself, or the given server."""
        if self._thread is not None:
            self._thread.join()
            self._thread = None
            if self._error is not None:
                raise self._error
        if self._early is None:
            if self.http:
                self._early = tracking.make_client(self.http)
            else:
                from orchestrator.mlflow_server import prepare_store

                self._db.parent.mkdir(parents=True, exist_ok=True)
                prepare_store(self.store_uri, self.artifact_root)  # the schema, under the store's lock
                self._early = tracking.make_client(self.store_uri)
                if self.server is None:
                    self._start_server()
        return self._early

    def client(self):
        """A client over the server, for the driver once trials are running (waits for it)."""
        if self.server is not None:
            self.server.wait_ready()
        return tracking.make_client(self.uri)

    def stop(self) -> None:
        if self._thread is not None:
            self._thread.join()
        if self.server is not None:
            self.server.stop()


@contextmanager
def tracking_service(workdir: Path | None = None, console=None, storage: str | None = None) -> Iterator[TrackingService]:
    service = TrackingService(workdir, console, storage).start()
    try:
        yield service
    finally:
        service.stop()


def preflight() -> None:
    """Checks that must fail before anything is written (one-line errors)."""
    given = os.environ.get("MLFLOW_TRACKING_URI")
    if given:
        tracking.check_tracking_uri(given)


# --- running ---------------------------------------------------------------------------------------


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
    return _execute(trials, options, workdir=workdir, console=console, restore=False, planner=planner, rerun=rerun)


def _write_state(trials: Sequence[TrialSpec], options: SweepOptions, workdir: Path | None) -> None:
    """What `resume` needs besides Tune's own state; written just before Tune starts, so a sweep
    that failed to start (no base model, no data) leaves its name free."""
    directory = sweep_dir(options.name, workdir, options.storage)
    directory.mkdir(parents=True, exist_ok=True)
    state = {"options": asdict(options), "trials": [t.to_dict() for t in trials]}
    tmp = directory / f"{STATE_FILE}.tmp"
    tmp.write_text(json.dumps(state, indent=1, default=list))
    os.replace(tmp, directory / STATE_FILE)


def resume_sweep(name: str, *, workdir: Path | None = None, console=None, storage: str | None = None) -> SweepOutcome:
    """Continue an interrupted sweep from its Tune experiment state (finished trials are not rerun).

    ``storage``: the shared folder the sweep was started on, as this node mounts it (the mount
    point may differ between nodes: the one given here is used, not the one recorded)."""
    from dataclasses import replace

    from ray import tune

    check_name(name)
    directory = sweep_dir(name, workdir, storage)
    state_path = directory / STATE_FILE
    if not state_path.exists():
        known = sorted(p.name for p in directory.parent.glob("*") if (p / STATE_FILE).exists()) if directory.parent.exists() else []
        raise UserError(f"no sweep named '{name}' in {directory.parent}" + (f"; known: {', '.join(known)}" if known else ""))
    if not tune.Tuner.can_restore(str(directory)):
        raise UserError(f"sweep '{name}' has no Tune experiment state to resume in {directory}; start it again "
                        "with `asym sweep ... --name` another name")
    preflight()
    state = json.loads(state_path.read_text())
    options = replace(SweepOptions.from_dict(state["options"]), storage=str(storage) if storage else None)
    trials = [TrialSpec.from_dict(_retuple(d)) for d in state["trials"]]
    return _execute(trials, options, workdir=workdir, console=console, restore=True)


def _execute(trials: Sequence[TrialSpec], options: SweepOptions, *, workdir: Path | None, console,
             restore: bool, planner=None, rerun: bool = False) -> SweepOutcome:
    """plan -> tracking server booting | base models -> identities -> reuse lookup (the store
    itself) -> local Ray (only when a trial is left to run) -> parent run, links -> Tune."""
    from rich.console import Console

    from orchestrator import reuse
    from backends import get_backend
    from orchestrator.identity import stamp

    console = console or Console(stderr=True, soft_wrap=True)
    os.environ.setdefault("TUNE_GLOBAL_CHECKPOINT_S", "2")  # snapshot the experiment state often: resume loses little
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    started_ray = False
    with tracking_service(workdir, console, options.storage) as service:
        try:
            for backend_name in sorted({t.backend for t in trials}):
                get_backend(backend_name).prepare([t for t in trials if t.backend == backend_name])
            if not restore:
                trials = stamp(trials)  # a restored sweep's trials carry the identity they started with
            if service.fresh:  # nothing to reuse: Ray starts while the store is made and the server boots
                started_ray = _init_ray()
            early = service.early_client()
            experiment_id = tracking.with_retries(
                lambda: tracking.ensure_experiment(early, _artifact_root(workdir, options.storage)), deadline_s=60,
                what="create the MLflow experiment")
            found = {}
            if not restore and not rerun and not options.is_optuna:
                found = tracking.with_retries(lambda: reuse.find_finished(early, experiment_id, trials),
                                              deadline_s=60, what="look up finished trials")
            to_run = [t for t in trials if t.key not in found]
            if (to_run or options.is_optuna or restore) and not started_ray:
                started_ray = _init_ray()  # the server boots meanwhile
            if to_run or options.is_optuna or restore:  # before the parent run: a refused sweep leaves none
                check_storage_for(len(_alive_nodes()), options.storage)
                check_declared_resources(_resources_of(to_run, options), _declared_resources())
            parent_run_id = tracking.with_retries(
                lambda: tracking.open_sweep_run(early, experiment_id, sweep=options.name, study=options.study,
                                                params=_sweep_params(trials, options)),
                deadline_s=60, what="open the sweep's parent run")
            reused = _link_reused(early, experiment_id, trials, found, options.name, parent_run_id)
            count = options.search.trials if options.is_optuna else len(trials)
            console.print(f"sweep [bold]{options.name}[/]: {count} trials"
                          + (f", {len(reused)} reused from finished runs (same key; --rerun runs them again), "
                             f"{len(to_run)} to run" if found else "")
                          + f"; MLflow {tracking.redact(service.uri)} (parent run {parent_run_id}); "
                          f"resume with `{resume_command(options.name, options.storage)}`", highlight=False)
            if not restore:
                _write_state(trials, options, workdir)
            note_client = service.client() if to_run or options.is_optuna or restore else early
            note = tracking.SweepNote(note_client, experiment_id, parent_run_id, sweep=options.name, study=options.study,
                                      planned=[] if options.is_optuna else [t.name for t in trials]).start()
            outcome = SweepOutcome(name=options.name, parent_run_id=parent_run_id, tracking_uri=service.uri)
            interrupted = lambda: False  # noqa: E731
            if to_run or options.is_optuna or restore:
                tuner = _tuner(to_run, options, service.uri, experiment_id, parent_run_id, workdir, console,
                               restore, planner)
                with _sigint_watch() as interrupted:
                    grid = tuner.fit()
                outcome = _outcome(grid, options, service.uri, parent_run_id)
            outcome.interrupted = interrupted()
            outcome.storage = options.storage
            outcome.planned = options.search.trials if options.is_optuna else len(trials)
            outcome.results += reused
            client = service.client() if to_run or options.is_optuna or restore else early
            # the tracking server may be away for a while when the last trial ends: wait for it
            tracking.with_retries(lambda: _reconcile_runs(client, experiment_id, options.name, outcome),
                                  deadline_s=180, what="close the trials' runs")
            _log_costs(client, experiment_id, options.name, parent_run_id)
            status = "KILLED" if outcome.interrupted else "FAILED" if outcome.failed else "FINISHED"
            tracking.finish_run(client, parent_run_id, status)
            note.stop(status)
            return outcome
        finally:
            if started_ray:
                import ray

                ray.shutdown()


@contextmanager
def _sigint_watch() -> Iterator[Any]:
    """Yield a callable telling whether Ctrl-C stopped ``Tuner.fit``.

    On the first SIGINT Tune saves its state, stops the trials and returns normally, after putting
    back the handler it found; so the one installed here (a second Ctrl-C: KeyboardInterrupt) is
    current again after ``fit`` exactly when it was interrupted.
    """
    if threading.current_thread() is not threading.main_thread() or os.environ.get("TUNE_DISABLE_SIGINT_HANDLER"):
        yield lambda: False
        return

    def second_sigint(signum, frame):
        raise KeyboardInterrupt

    previous = signal.getsignal(signal.SIGINT)
    signal.signal(signal.SIGINT, second_sigint)
    state = {"interrupted": False}
    try:
        yield lambda: state["interrupted"]
    finally:
        state["interrupted"] = signal.getsignal(signal.SIGINT) is second_sigint
        signal.signal(signal.SIGINT, previous)


def _link_reused(client, experiment_id: str, trials: Sequence[TrialSpec], found: dict, sweep: str,
                 parent_run_id: str) -> list[dict[str, Any]]:
    """Link each reused trial into the new sweep; its outcome rows (status DONE, reused)."""
    from orchestrator import reuse

    rows = []
    for trial in trials:
        origin = found.get(trial.key)
        if origin is None:
            continue
        tracking.with_retries(lambda: reuse.link(client, experiment_id, trial, origin, sweep=sweep,
                                                 parent_run_id=parent_run_id),
                              deadline_s=60, what=f"link the finished run of {trial.name}")
        metrics = origin.data.metrics
        rows.append({"name": trial.name, "key": trial.key, "status": "DONE", "reused": origin.info.run_id,
                     "step": trial.steps, "error": None,
                     **{k: v for k, v in metrics.items() if k.startswith(("train/", "eval/"))}})
    if rows:
        tracking.with_retries(lambda: reuse.list_on_parent(client, parent_run_id, [r["reused"] for r in rows]),
                              deadline_s=60, what="list the reused runs on the parent run")
    return rows


def _init_ray() -> bool:
    """Start a local Ray (all of this machine's CPUs) unless this process runs inside a cluster job."""
    import ray

    if ray.is_initialized():
        return False
    kwargs = dict(include_dashboard=False, log_to_driver=False, logging_level="ERROR", configure_logging=True)
    if os.environ.get("RAY_ADDRESS"):  # the driver was submitted as a Ray Job: join that cluster
        ray.init(**kwargs)
    else:
        ray.init(address="local", num_cpus=os.cpu_count() or 1, **kwargs)
    return True


def _tuner(trials, options: SweepOptions, uri: str, experiment_id: str, parent_run_id: str,
           workdir: Path | None, console, restore: bool, planner=None):
    from ray import tune

    from orchestrator.live import LiveTable
    from orchestrator.trial import SweepContext, placement, run_trial

    context = SweepContext(sweep=options.name, tracking_uri=uri, experiment_id=experiment_id,
                           parent_run_id=parent_run_id, work_root=str(storage_root(options.storage, workdir)),
                           cpus_per_trial=options.cpus_per_trial, gpus_per_trial=options.gpus_per_trial)
    resources = functools.partial(placement, cpus=options.cpus_per_trial, gpus=options.gpus_per_trial)
    trainable = tune.with_resources(tune.with_parameters(run_trial, context=context), resources)
    directory = sweep_dir(options.name, workdir, options.storage)
    # Tune's default loggers, less TensorBoard's: its TBXLoggerCallback imports tensorboardX and so
    # torch into the driver (a second before the first trial starts); MLflow is where metrics go.
    # A restored Tuner adds the defaults again unless this is set, so it is set for both.
    os.environ["TUNE_DISABLE_AUTO_CALLBACK_LOGGERS"] = "1"
    if restore:
        return tune.Tuner.restore(str(directory), trainable=trainable, resume_unfinished=True,
                                  resume_errored=True, restart_errored=False)
    live = LiveTable(title=f"sweep {options.name}", total_steps={t.name: t.steps for t in trials}, console=console)
    from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback

    run_config = tune.RunConfig(
        name=options.name, storage_path=str(directory.parent), verbose=0,
        callbacks=[live, JsonLoggerCallback(), CSVLoggerCallback()],
        failure_config=tune.FailureConfig(max_failures=options.max_failures),
    )
    if options.is_optuna:
        return _optuna_tuner(trainable, options, planner, run_config)
    scheduler = None
    metric = mode = None
    if options.scheduler == "asha":
        from ray.tune.schedulers import ASHAScheduler

        max_t = max(t.steps for t in trials)
        scheduler = ASHAScheduler(time_attr="step", max_t=max_t, grace_period=max(1, max_t // 10), reduction_factor=3)
        metric, mode = OPTUNA_METRIC, "max"
    tune_config = tune.TuneConfig(
        metric=metric, mode=mode, scheduler=scheduler, num_samples=1,
        max_concurrent_trials=options.max_concurrent, trial_name_creator=_trial_name,
        trial_dirname_creator=_trial_dirname,
        reuse_actors=True,  # trials of one shape run in one warm worker, one after another (no restart)
    )

    from orchestrator.packing import cap_pending_trials, longest_first, trial_size
    from orchestrator.trial import trial_resources

    alive = _alive_nodes()
    gpu_nodes = [node for node in alive if node["Resources"].get("GPU")]
    cap_pending_trials(len(gpu_nodes or alive))  # so Ray places the trials' placement groups in LPT order
    packed = longest_first(trials, lambda t: trial_size(trial_resources(t, options.cpus_per_trial, options.gpus_per_trial), t.steps))
    param_space = {"trial": tune.grid_search([t.to_dict() for t in packed])}
    return tune.Tuner(trainable, param_space=param_space, tune_config=tune_config, run_config=run_config)


def _optuna_tuner(trainable, options: SweepOptions, planner, run_config):
    import optuna
    from ray import tune
    from ray.tune.search.optuna import OptunaSearch

    from orchestrator.search import PlannedSearch, tune_space

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    search = options.search
    space, keys = tune_space(search.ranges)
    inner = OptunaSearch(space=space, metric=search.metric, mode=search.mode,
                         sampler=optuna.samplers.TPESampler(seed=search.seed))
    study, plan_options = planner
    searcher = PlannedSearch(inner, study, plan_options, keys)
    tune_config = tune.TuneConfig(search_alg=searcher, num_samples=search.trials,
                                  max_concurrent_trials=options.max_concurrent,
                                  trial_name_creator=_trial_name, trial_dirname_creator=_trial_dirname,
                                  reuse_actors=True)
    return tune.Tuner(trainable, tune_config=tune_config, run_config=run_config)


def _trial_name(trial) -> str:
    from orchestrator.trial import spec_from_config

    return spec_from_config(trial.config).name


def _trial_dirname(trial) -> str:
    return f"{_trial_name(trial)}_{trial.trial_id}"


def _outcome(grid, options: SweepOptions, uri: str, parent_run_id: str) -> SweepOutcome:
    from orchestrator.trial import spec_from_config

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


def _reconcile_runs(client, experiment_id: str, sweep: str, outcome: SweepOutcome) -> None:
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


def _log_costs(client, experiment_id: str, sweep: str, parent_run_id: str) -> None:
    """The ledger's totals onto the parent run (a tracking hiccup here must not fail a finished sweep)."""
    from orchestrator.ledger import log_sweep_totals

    def total() -> None:
        runs = tracking.find_runs(client, experiment_id, {names.TAG_KIND: names.KIND_TRIAL, names.TAG_SWEEP: sweep})
        log_sweep_totals(client, parent_run_id, runs)

    try:
        tracking.with_retries(total, deadline_s=120, what="total the sweep's costs")
    except Exception as exc:  # noqa: BLE001 - reported, the sweep's outcome stands
        logging.getLogger(__name__).warning("could not total the sweep's costs: %s", tracking.redact_text(str(exc)))


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


def _resources_of(trials, options: SweepOptions) -> dict[str, dict[str, float]]:
    from orchestrator.trial import trial_resources

    return {t.name: trial_resources(t, options.cpus_per_trial, options.gpus_per_trial) for t in trials}


def _declared_resources() -> dict[str, float]:
    import ray

    return dict(ray.cluster_resources())


def _alive_nodes() -> list[dict]:
    import ray

    return [node for node in ray.nodes() if node["Alive"]]


def _artifact_root(workdir: Path | None, storage: str | None = None) -> str | None:
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return None
    from orchestrator.mlflow_server import store_paths

    return store_paths(workdir, storage)[1]


def _retuple(d: dict[str, Any]) -> dict[str, Any]:
    """JSON turned the settings' tuples into lists; TrialSpec keys hash them as tuples."""
    d = dict(d)
    d["settings"] = {k: _tuple(v) for k, v in (d.get("settings") or {}).items()}
    return d


def _tuple(value: Any) -> Any:
    return tuple(_tuple(v) for v in value) if isinstance(value, list) else value
