"""Launch a sweep's trials: a local Ray (or the cluster the driver was submitted to), the checks a
cluster must pass before anything starts, and the Tuner (grid or Optuna) that runs ``run_trial``.

Tune does all the scheduling: trial resources (``tune.with_resources``), the concurrency limit,
``FailureConfig`` retries, the ASHA scheduler, Optuna search and experiment restore.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Mapping

from common.errors import UserError
from common.metric_names import EVAL_MEAN_ACCURACY
from experiments.tracking_names import storage_root
from orchestrator.packing import cap_pending_trials, longest_first, trial_size
from orchestrator.sweep_state import SweepOptions, sweep_dir
from orchestrator.trial import SweepContext, placement, run_trial, spec_from_config, trial_resources

OPTUNA_METRIC = EVAL_MEAN_ACCURACY  # ASHA's metric (a search names its own)


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


def init_ray() -> bool:
    """Start a local Ray (all of this machine's CPUs) unless this process runs inside a cluster job."""
    import ray  # deferred: ray

    if ray.is_initialized():
        return False
    kwargs = dict(include_dashboard=False, log_to_driver=False, logging_level="ERROR", configure_logging=True)
    if os.environ.get("RAY_ADDRESS"):  # the driver was submitted as a Ray Job: join that cluster
        ray.init(**kwargs)
    else:
        ray.init(address="local", num_cpus=os.cpu_count() or 1, **kwargs)
    return True


def make_tuner(trials, options: SweepOptions, uri: str, experiment_id: str, parent_run_id: str,
           workdir: Path | None, console, restore: bool, planner=None):
    from ray import tune  # deferred: ray

    from orchestrator.live import LiveTable  # deferred: ray (loads only once a sweep runs)

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
    from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback  # deferred: ray

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
        from ray.tune.schedulers import ASHAScheduler  # deferred: ray

        max_t = max(t.steps for t in trials)
        scheduler = ASHAScheduler(time_attr="step", max_t=max_t, grace_period=max(1, max_t // 10), reduction_factor=3)
        metric, mode = OPTUNA_METRIC, "max"
    tune_config = tune.TuneConfig(
        metric=metric, mode=mode, scheduler=scheduler, num_samples=1,
        max_concurrent_trials=options.max_concurrent, trial_name_creator=_trial_name,
        trial_dirname_creator=_trial_dirname,
        reuse_actors=True,  # trials of one shape run in one warm worker, one after another (no restart)
    )

    alive = alive_nodes()
    gpu_nodes = [node for node in alive if node["Resources"].get("GPU")]
    cap_pending_trials(len(gpu_nodes or alive))  # so Ray places the trials' placement groups in LPT order
    packed = longest_first(trials, lambda t: trial_size(trial_resources(t, options.cpus_per_trial, options.gpus_per_trial), t.steps))
    param_space = {"trial": tune.grid_search([t.to_dict() for t in packed])}
    return tune.Tuner(trainable, param_space=param_space, tune_config=tune_config, run_config=run_config)


def _optuna_tuner(trainable, options: SweepOptions, planner, run_config):
    import optuna  # deferred: optuna
    from ray import tune  # deferred: ray
    from ray.tune.search.optuna import OptunaSearch  # deferred: ray

    from orchestrator.search import PlannedSearch, tune_space  # deferred: ray; Optuna and Ray load only for a search

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
    return spec_from_config(trial.config).name


def _trial_dirname(trial) -> str:
    return f"{_trial_name(trial)}_{trial.trial_id}"


def resources_of(trials, options: SweepOptions) -> dict[str, dict[str, float]]:
    return {t.name: trial_resources(t, options.cpus_per_trial, options.gpus_per_trial) for t in trials}


def declared_resources() -> dict[str, float]:
    import ray  # deferred: ray

    return dict(ray.cluster_resources())


def alive_nodes() -> list[dict]:
    import ray  # deferred: ray

    return [node for node in ray.nodes() if node["Alive"]]
