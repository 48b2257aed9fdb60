"""The plan of an ``asym probe prop1`` run: one engine config per seed, the methods, optimizers, controls and steps.

Everything a user can get wrong is checked here, before anything runs or is written (one-line
ValueError): an unknown method or optimizer or control, an estimator needing inputs the probe does
not have, ``--at`` outside the reference trajectory, a non-embedded model.

Methods are written ``name`` or ``name:alpha+:alpha-`` (e.g. ``asym:0.9:0.4``); the defaults are the
paper's channel-isolation and flip-test estimators (spec sections 1-3).
"""

from __future__ import annotations

from dataclasses import dataclass

from estimators.registry import get_estimator
from tinyrlvr.config import EngineConfig

DEFAULT_METHODS = "reinforce,grpo,pos-only,neg-only,asym:0.9:0.4,ent-increase,ent-decrease"
DEFAULT_OPTIMIZERS = "sgd,sgd-clip,adamw"
DEFAULT_CONTROLS = "none,center_groups"
# Plain SGD's step [ours]: small enough that the one-step change is about first order on the default
# base (at 1e-3 and at 2.5e-4 the measured gaps per unit step agree within ~20%, development seed 100,
# step 0), large enough to stand well above float32 round-off.
DEFAULT_SGD_LR = 1e-3


@dataclass(frozen=True)
class ProbePlan:
    model: str
    smoke: bool
    configs: tuple  # one tinyrlvr EngineConfig per seed (the reference trajectory's)
    methods: tuple  # tinyrlvr.probe.ProbeMethod, REINFORCE first
    optimizers: tuple[str, ...]
    controls: tuple[str, ...]
    at: tuple[int, ...]
    sgd_lr: float

    @property
    def updates(self) -> int:
        """One-update forks the run applies (the progress bar's total)."""
        return len(self.configs) * len(self.at) * len(self.methods) * len(self.optimizers) * len(self.controls)

    def params(self) -> dict[str, str]:
        return {"model": self.model, "smoke": str(self.smoke), "reference": self.configs[0].estimator,
                "methods": ",".join(m.label for m in self.methods), "optimizers": ",".join(self.optimizers),
                "controls": ",".join(self.controls), "at": ",".join(map(str, self.at)), "sgd_lr": str(self.sgd_lr),
                "adamw_lr": str(self.configs[0].lr), "grad_clip": str(self.configs[0].grad_clip),
                "steps": str(self.configs[0].steps), "warmup_seed": str(self.configs[0].warmup_seed),
                "base_model_key": self.configs[0].base_model_key()}


def split_list(text: str, what: str) -> list[str]:
    items = [item.strip() for item in text.split(",") if item.strip()]
    if not items:
        raise ValueError(f"{what} is empty; give a comma-separated list")
    return items


def parse_method(text: str) -> tuple[str, str, float | None, float | None]:
    """``name`` or ``name:alpha+:alpha-`` -> (label, estimator, alpha+, alpha-)."""

    parts = text.split(":")
    if len(parts) not in (1, 3):
        raise ValueError(f"method '{text}': write name or name:alpha+:alpha- (e.g. asym:0.9:0.4)")
    est = get_estimator(parts[0])
    if len(parts) == 1:
        return est.label, est.name, None, None
    try:
        a_pos, a_neg = float(parts[1]), float(parts[2])
    except ValueError:
        raise ValueError(f"method '{text}': the alphas must be numbers") from None
    return f"{est.label} ({a_pos:g}, {a_neg:g})", est.name, a_pos, a_neg


def plan_probe(*, seeds: list[int], at: list[int], methods: str = DEFAULT_METHODS, reference: str = "reinforce",
               optimizers: str = DEFAULT_OPTIMIZERS, controls: str = DEFAULT_CONTROLS, model: str = "embedded-tiny",
               smoke: bool = False, steps: int | None = None, sgd_lr: float = DEFAULT_SGD_LR,
               threads: int | None = None, settings: dict | None = None) -> ProbePlan:
    """The checked plan; ``steps`` is the reference trajectory's length (default: the preset's)."""
    from experiments.presets import EMBEDDED_MODELS, resolve_preset, smoke_layer  # deferred: omegaconf
    from tinyrlvr.probe import check_choices, resolve_methods  # deferred: numpy, torch

    if model not in EMBEDDED_MODELS:
        raise ValueError(f"model '{model}' is not an embedded preset (the probe runs on the embedded engine); "
                         f"use one of {', '.join(EMBEDDED_MODELS)}")
    if not seeds or any(s < 0 for s in seeds) or len(set(seeds)) != len(seeds):
        raise ValueError(f"--seeds must be distinct integers >= 0, got {seeds}")
    if not sgd_lr > 0:
        raise ValueError(f"--sgd-lr must be > 0, got {sgd_lr}")
    opts, ctrls = split_list(optimizers, "--optimizers"), split_list(controls, "--controls")
    check_choices(opts, ctrls)
    probe_methods = resolve_methods([parse_method(m) for m in split_list(methods, "--methods")])
    preset = resolve_preset(model, [smoke_layer("embedded")] if smoke else [])
    length = steps if steps is not None else preset.steps
    if length < 1:
        raise ValueError(f"--steps must be >= 1, got {length}")
    if not at or min(at) < 0 or max(at) >= length:
        raise ValueError(f"--at steps must be in 0..{length - 1} (the reference trajectory has {length} steps), got "
                         f"{','.join(map(str, at))}")
    base = {**preset.settings_dict(), **(settings or {}), "estimator": reference, "steps": length, "threads": threads}
    configs = tuple(EngineConfig.create(**{**base, "seed": seed}) for seed in seeds)
    return ProbePlan(model, smoke, configs, tuple(probe_methods), tuple(opts), tuple(ctrls), tuple(sorted(set(at))),
                     float(sgd_lr))
