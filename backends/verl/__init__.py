"""The verl backend: each trial is a verl 0.9.1 PPO job on GPUs, rendered, launched and watched here.

Modules: ``render`` (TrialSpec -> Hydra overrides, pure), ``entry`` (``python -m ...entry``: verl's
main with our registrations), ``trainer`` (the one adapter for verl's trainer internals),
``diagnostics`` (the paper's metrics from a verl batch), ``metrics`` (verl keys -> shared names),
``execution`` (subprocess / Ray Job, metric streaming), ``admission`` (GPU admission, watchdog),
``data`` (``asym data prepare``), ``verifier`` (math-verify reward).

Contract with the orchestrator (``VerlBackend.run(trial, report, workdir)``):
- the orchestrator creates the trial's MLflow run and sets ``MLFLOW_RUN_ID`` and
  ``MLFLOW_TRACKING_URI`` in the trial process's environment; ``run`` reads them from
  ``os.environ`` and hands them to verl, whose MLflow logger attaches to that run and logs verl's
  own keys (``actor/*``, ``critic/*``, ``val-core/*``, our ``asym/*`` diagnostics, timings) and the
  flattened verl config as params;
- ``report(step, metrics)`` receives only the shared names (``train/*``, ``eval/*``); logging them to
  MLflow is the orchestrator's job, so no key is written twice;
- Tune reserves the resources of ``admission.trial_resources(trial)`` (GPUs on one node, or
  admission units for a multi-node Ray Job); ``configure_runtime(cpus, gpus)`` receives what the
  trial got and ``run`` refuses a single-node trial with fewer GPUs than its preset needs;
  ``prepare(trials)`` checks the data files before the sweep starts; ``checkpoint_every`` is 1 (every
  reported step is flushed to MLflow; verl's ``save_freq`` is the preset's ``save_every``); ``workdir`` is deterministic per trial key and must be
  on shared storage for multi-node trials (the job writes its metrics file there).
- Paths: ``$ASYM_DATA_DIR`` (from ``asym data prepare``) and ``$ASYM_CHECKPOINT_DIR``
  (``render.default_paths``) must name the same folders on every GPU node.
"""

from __future__ import annotations

import os
from importlib.metadata import version
from pathlib import Path
from typing import Mapping, Sequence

from backends.verl.admission import DEFAULT_PENDING_TIMEOUT_S, gpus_per_trial, trial_resources
from backends.verl.cpu.assets import engine_config, ensure_assets
from backends.verl.cpu.settings import cpu_env, rollout_only_env, trial_cpus
from backends.verl.models import attention_override, check_gpus, check_model_source
from backends.verl.render import (ENTRYPOINT, TRAIN_FILE, RenderPaths, default_paths, is_cpu, is_multi_node,
                                  render_overrides, uses_embedded_task, val_n)
from common.errors import UserError
from experiments.presets.schema import CPU_ROLLOUT_NAME
from experiments.spec import TrialSpec


class VerlBackend:
    name = "verl"
    # The orchestrator makes metrics durable every this many steps. Every step on verl: a retried
    # attempt skips the steps its predecessors' metrics files hold, so those must be in MLflow; the
    # flush runs in the trial process's metrics stream, beside (not inside) verl's training loop.
    checkpoint_every = 1
    # `asym doctor` (orchestrator/doctor.py): the checks each mode needs; flash-attn is optional (sdpa)
    doctor_needs = {
        "verl-cpu": ("python", "torch", "verl", "verl CPU stack", "verl pins"),
        "verl": ("python", "torch CUDA build", "GPUs", "NVIDIA driver", "vllm", "verl", "verl pins", "preset models"),
    }

    def __init__(self, paths: RenderPaths | None = None, entrypoint: Sequence[str] | None = None,
                 poll_s: float = 2.0, pending_timeout_s: float | None = None,
                 environ: Mapping[str, str] | None = None):
        self.paths = paths
        self.entrypoint = list(entrypoint) if entrypoint else None
        self.poll_s = poll_s
        self.pending_timeout_s = pending_timeout_s or DEFAULT_PENDING_TIMEOUT_S
        self.environ = environ
        self.reserved_gpus: float | None = None  # set by configure_runtime (the trial's Tune resources)

    def configure_runtime(self, cpus: float, gpus: float) -> None:
        self.reserved_gpus = gpus

    def prepare(self, trials) -> None:
        """Before any trial starts: the data files every trial reads exist (on shared storage);
        CPU trials get the exported model and task files made here, once."""
        trials = list(trials)
        if any(uses_embedded_task(t) for t in trials):

            ensure_assets(engine_config())
        trials = [t for t in trials if not uses_embedded_task(t)]
        if not trials:
            return
        paths = self.paths or default_paths()
        needed = {TRAIN_FILE} | {f"{name}.parquet" for t in trials for name in val_n(t)}
        missing = sorted(name for name in needed if not (Path(paths.data_dir) / name).exists())
        if missing:
            raise UserError(f"{paths.data_dir} lacks {', '.join(missing)}; run `asym data prepare --out "
                            f"{paths.data_dir}` (or set ASYM_DATA_DIR to where the files are)")

    def preflight(self, trials) -> None:
        """Before anything is written or started: each GPU trial's base model can be read or fetched
        (a local path exists; offline, the HF cache has it) and a one-node trial on a local Ray fits
        this machine's GPUs. One-line UserError otherwise."""

        for trial in trials:
            if uses_embedded_task(trial):
                continue  # made on first use from the embedded base model
            check_model_source(str(trial.settings_dict()["hf_path"]), trial.model)
            if not is_cpu(trial) and not is_multi_node(trial):
                check_gpus(gpus_per_trial(trial), trial.name)

    def identity(self, trial: TrialSpec) -> dict[str, str]:
        """verl's version and the model's path (with its revision when the preset pins one): the
        weights live on the Hub or shared storage, so their name stands in for their hash."""

        settings = trial.settings_dict()
        model = str(settings.get("hf_path", trial.model))
        if settings.get("revision"):
            model += f"@{settings['revision']}"
        return {"engine": f"verl-{version('verl')}", "base_model": model}

    def resources(self, trial: TrialSpec) -> dict[str, float]:
        if is_cpu(trial) and not is_multi_node(trial):  # a multi-node CPU trial is admitted as a GPU one

            return {"CPU": trial_cpus()}

        return trial_resources(trial)

    def run(self, trial: TrialSpec, report, workdir: Path) -> None:
        from backends.verl.execution import local_entrypoint, run_trial  # deferred: numpy, torch

        multi_node = is_multi_node(trial)
        extra_env = None
        if uses_embedded_task(trial):

            ensure_assets(engine_config())
        if is_cpu(trial):

            extra_env = cpu_env()
        elif trial.settings_dict().get("rollout_name") == CPU_ROLLOUT_NAME:  # on GPUs, our rollout only

            extra_env = rollout_only_env()
        if not is_cpu(trial) and not multi_node and self.reserved_gpus is not None and self.reserved_gpus < gpus_per_trial(trial):
            raise UserError(f"verl trial '{trial.name}' needs {gpus_per_trial(trial)} GPUs on one node but its Tune "
                            f"trial reserved {self.reserved_gpus:g}; pass --gpus-per-trial {gpus_per_trial(trial)}")
        entrypoint = self.entrypoint or (list(ENTRYPOINT) if multi_node else local_entrypoint())
        paths = self.paths or default_paths()
        if self.paths is None and not os.environ.get("ASYM_CHECKPOINT_DIR"):
            # checkpoints in the trial's own (deterministic) folder, where a retry or `asym sweep
            # resume` finds them: under --storage on a cluster (every node mounts it), else ./.asym
            # (Tune's working dir, which default_paths would use, changes per session)
            paths = RenderPaths(paths.data_dir, str(Path(workdir) / "checkpoints"))
        overrides = render_overrides(trial, paths)
        if not is_cpu(trial):  # flash-attention 2 where this node has it, else sdpa; the log says which

            extra, line = attention_override(trial.settings_dict())
            overrides += extra
            print(line, flush=True)
        run_trial(trial, report, Path(workdir), overrides=overrides,
                  entrypoint=entrypoint, multi_node=multi_node, poll_s=self.poll_s,
                  pending_timeout_s=self.pending_timeout_s, environ=self.environ, extra_env=extra_env)


__all__ = ["VerlBackend"]
