"""The embedded backend: runs the CPU engine (``tinyrlvr``) in the trial's own process.

A trial's settings (the embedded preset after overrides) go straight into ``EngineConfig.create``;
the engine checkpoints into ``workdir`` and resumes from it, so a retried trial continues. Under a
sweep each trial gets torch threads equal to its CPU share (engine-notes, "Under a sweep"), and the
base model is made once by the driver (``prepare``) before any trial starts.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

from rich.console import Console

from backends.base import Reporter
from experiments.spec import TrialSpec
from tinyrlvr import ENGINE_VERSION
from tinyrlvr.base_model_files import base_model_path, cached_content_hash
from tinyrlvr.config import EngineConfig

CHECKPOINT_EVERY = 10  # steps between engine checkpoints (a retry repeats at most this many)


class EmbeddedBackend:
    name = "embedded"
    checkpoint_every = CHECKPOINT_EVERY
    doctor_needs = {"embedded": ("python", "torch")}  # `asym doctor`'s checks (orchestrator/doctor.py)

    def __init__(self, threads: int | None = None, device: str | None = None):
        self.threads = threads  # None: all cores of this machine
        self.device = device  # None: cuda when this trial was given a GPU, else cpu

    def preflight(self, trials) -> None:
        """Nothing to check before a sweep: the engine and its base models are local."""

    def resources(self, trial: TrialSpec) -> dict[str, float]:
        """One CPU per trial by default: trials run side by side, one torch thread each."""
        return {"CPU": 1.0}

    def configure_runtime(self, cpus: float, gpus: float) -> None:
        """Called by the Tune trainable with the trial's resources."""
        self.threads = max(1, int(cpus))
        if gpus > 0:
            self.device = "cuda"

    def engine_config(self, trial: TrialSpec):
        return EngineConfig.create(
            estimator=trial.estimator, alpha_pos=trial.alpha_pos, alpha_neg=trial.alpha_neg,
            estimator_params=trial.estimator_params, alpha_schedule=trial.schedule, seed=trial.seed,
            steps=trial.steps, entropy_coeff=trial.entropy_coeff, clip_low=trial.clip_low,
            clip_high=trial.clip_high, loss_agg=trial.loss_agg, policy_loss=trial.policy_loss, **trial.settings_dict(),
            device=self._device(), threads=self.threads or os.cpu_count() or 1,
        )

    def prepare(self, trials: Iterable[TrialSpec]) -> None:
        """Make (or load) every base model the trials need, once, before the sweep starts."""

        console = Console(stderr=True)
        seen: set[str] = set()
        for trial in trials:
            cfg = self.engine_config(trial)
            if cfg.base_model_key() in seen:
                continue
            seen.add(cfg.base_model_key())
            path = base_model_path(cfg)
            if path.exists():
                continue
            # The first run on a machine warms the base model up (minutes): say so, or it looks hung.
            from tinyrlvr.base_model import get_base_model  # deferred: numpy, torch

            console.print(f"making the embedded base model once (supervised warm-up, ~2-3 min on 2 cores; cached at {path})")
            with console.status("warming up the base model..."):
                get_base_model(cfg)
            console.print("base model ready")

    def identity(self, trial: TrialSpec) -> dict[str, str]:
        """The engine's version and the base model's content hash (its weights, not its file)."""

        cfg = self.engine_config(trial)
        return {"engine": ENGINE_VERSION, "base_model": cached_content_hash(base_model_path(cfg), cfg.cache_dir)}

    def run(self, trial: TrialSpec, report: Reporter, workdir: Path) -> None:
        from tinyrlvr.trainer import train  # deferred: numpy, torch

        cfg = self.engine_config(trial)
        train(cfg, report, checkpoint_dir=Path(workdir) / "checkpoints", checkpoint_every=self.checkpoint_every)

    def _device(self) -> str:
        if self.device:
            return self.device
        return "cpu"
