"""Model presets (the paper's three backbones and the embedded model) held in OmegaConf.

A preset is resolved in layers, each merged onto a typed schema (``schema.py``) so that a wrong key
or type anywhere fails with one line naming the key and where it came from:

    preset file (or the engine's defaults) < study default steps < user YAML (--config)
    < programmatic overrides < smoke settings < explicit --steps

A user YAML maps keys to values for every planned model; a top-level key that is a model name maps
to a section for that model only::

    lr: 1.0e-6            # every model
    qwen3-4b:
      train_batch_size: 64
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from common.numbers import finite_nonnegative
from common.typed_yaml import read_yaml
from experiments.presets.machine import gpus_per_node_default
from experiments.presets.schema import (BENCHMARKS, CPU_ROLLOUT_NAME, DEFAULT_VAL_N, TRIAL_KEYS, VerlPreset,
                                        embedded_schema)
from experiments.spec import TrialSpec
from tinyrlvr import config as engine_config

VERL_DEFAULT_MODEL = "qwen3-4b"  # "We use Qwen3-4B as the primary backbone" [v2, App H]
# The verl models are the preset files of this folder (one owner): the default first, then by name.
_VERL_FILES = sorted(p.name[: -len(".yaml")] for p in resources.files(__name__).iterdir() if p.name.endswith(".yaml"))
VERL_MODELS = (VERL_DEFAULT_MODEL, *(m for m in _VERL_FILES if m != VERL_DEFAULT_MODEL))
EMBEDDED_MODELS = ("embedded-carry", "embedded-tiny", "embedded-kappa-neg")  # the first is the embedded default
# embedded-carry (the default since issue 24) is the paper's regime with headroom: the same model
# and tiers 1-4, taught systematic errors (tinyrlvr.difficulty): from embedded-tiny's base, 400 more
# warm-up steps on demonstrations that forget the i-th carry of a sum with probability 0.35 / 0.75 /
# 0.95 (3rd and later). Prompts with many carries have a wrong answer as the base's mode (kappa > 0),
# and the hard split (held-out prompts with >= 3 carries) starts near 0 at T = 0.4. The base still
# holds the addition it learnt first, and RL at the engine's lr 1e-4 restores it within ~10 steps
# (hard split 0.006 -> 0.96 on a design candidate, drops 0.3 / 0.7 / 0.95); at lr 1e-5 it climbs over
# ~50 steps instead, so the RL lr is 1e-5 here (chosen for headroom, not for any method's result).
# embedded-tiny is the earlier default (one random wrong digit per noisy demonstration; ~99%
# held-out accuracy at T = 0.4).
# Embedded variants: engine settings layered on the engine's defaults [ours]. embedded-kappa-neg is
# kappa < 0, the regime where Proposition 1 says the two channels swap roles (issue 11; nobody has
# shown it): a task the model genuinely cannot do yet. Only the hard tiers 3 and 4 (same model shape),
# clean demonstrations weighted 1:2, stopped at step 470, just as carrying starts to be learnt: about
# 8% of answers right, the right ones the confident ones (c+ > c-), and RL does not lift them within
# 50 steps, so kappa stays < 0. (A base taught to be noisy, 60-75% wrong demonstrations from the
# default base, gave kappa-hat < 0 at step 0 only: RL removed the noise within a few steps.)
EMBEDDED_VARIANTS: dict[str, dict[str, Any]] = {
    "embedded-carry": {"warmup_errors": "carry", "warmup_carry_drop": [0.35, 0.75, 0.95], "warmup_relearn_steps": 400,
                       "lr": 1.0e-5},
    "embedded-tiny": {},
    "embedded-kappa-neg": {"tiers": [3, 4], "warmup_steps": 470, "warmup_corrupt_frac": [0.0, 0.0],
                           "warmup_tier_weights": [1.0, 2.0]},
}

# Trial-level defaults of the embedded model [NF] ours: 100 steps and clip 0.2 as in the engine
# feasibility probe (shared/engine-notes.md); the bonus coefficient is ours.
EMBEDDED_TRIAL_DEFAULTS = {"steps": 100, "clip": 0.2, "entropy_coeff": 0.01}
# Smoke runs [ours]: the engine's SMOKE_OVERRIDES shrink the model and batch; 10 steps give two
# evaluations at its eval_every of 5. On verl two steps are enough to see the whole path.
EMBEDDED_SMOKE_STEPS = 10
VERL_SMOKE_OVERRIDES = {"steps": 2}

Layer = tuple[str, Mapping[str, Any]]  # (where it came from, values)
# verl keys added with the CPU mode: left out of a trial's settings at their defaults, so GPU trials
# keep their keys (resume, golden files) and settings stay what they were before these keys existed
QUIET_DEFAULTS = {"device": "cuda", "rollout_name": "vllm", "attn_implementation": None, "use_kl_loss": False,
                  "task": "math", "logp_gain_every": 1, "save_every": 50}


@dataclass(frozen=True)
class Preset:
    """A resolved preset: the trial-level values and the backend settings (hashable pairs)."""

    model: str
    backend: str
    steps: int
    clip: float
    entropy_coeff: float
    settings: tuple[tuple[str, Any], ...]

    def settings_dict(self) -> dict[str, Any]:
        return dict(self.settings)


def backend_of(model: str) -> str:
    for backend, models in MODELS_BY_BACKEND.items():
        if model in models:
            return backend
    raise ValueError(f"unknown model '{model}'; known: {', '.join(ALL_MODELS)}")


def check_backend(backend: str) -> None:
    """The one "unknown backend" error (the planner's, the backend registry's)."""
    if backend not in MODELS_BY_BACKEND:
        raise ValueError(f"unknown backend '{backend}'; known: {', '.join(MODELS_BY_BACKEND)}")


def check_model(model: str, backend: str) -> None:
    """Reject a model the backend cannot run (embedded -> embedded-tiny; verl -> the Qwen presets)."""
    check_backend(backend)
    if model not in MODELS_BY_BACKEND[backend]:
        backend_of(model)  # unknown model altogether: that error first
        raise ValueError(f"model '{model}' does not run on the {backend} backend; "
                         f"use one of: {', '.join(MODELS_BY_BACKEND[backend])}")


def load_user_config(path: str | Path) -> dict[str, Any]:
    """Read a user YAML (``--config FILE``) into a plain dict; one-line ValueError if unusable."""
    path = Path(path)
    cfg, _ = read_yaml(path, "config file", ValueError)
    if cfg is None or (OmegaConf.is_dict(cfg) and len(cfg) == 0):
        return {}
    if not OmegaConf.is_dict(cfg):
        raise ValueError(f"config file {path} must be a mapping of preset keys to values")
    try:
        data = OmegaConf.to_container(cfg, resolve=True)
    except OmegaConfBaseException as exc:
        raise ValueError(f"config file {path}: {_one_line(exc)}") from None
    return data  # type: ignore[return-value]


def user_layers(user_config: Mapping[str, Any] | None, model: str, origin: str) -> list[Layer]:
    """The parts of a user config that apply to ``model``: the shared keys, then its own section."""
    if not user_config:
        return []
    shared = {k: v for k, v in user_config.items() if k not in ALL_MODELS}
    layers: list[Layer] = [(origin, shared)] if shared else []
    own = user_config.get(model)
    if own is not None:
        if not isinstance(own, Mapping):
            raise ValueError(f"{origin}: section '{model}' must be a mapping of preset keys to values")
        layers.append((f"{origin} [{model}]", own))
    return layers


def resolve_preset(model: str, layers: Iterable[Layer] = ()) -> Preset:
    """Merge ``layers`` onto the model's preset through its typed schema, then check the values."""
    layers = list(layers)
    backend = backend_of(model)
    schema, base = FAMILIES[backend].schema_and_base(model)
    cfg = OmegaConf.structured(schema)
    for origin, values in [(f"preset {model}", base), *layers]:
        cfg = _merge(cfg, values, origin, model)
    try:
        values = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)
    except OmegaConfBaseException as exc:
        raise ValueError(f"preset {model}: {_one_line(exc)}") from None
    explicit = {key for _, layer in layers for key in layer}
    family = FAMILIES[backend]
    _check_trial_values(model, values)
    family.check(model, values, explicit)
    settings = {k: _frozen(v) for k, v in values.items() if k not in TRIAL_KEYS
                and not (k in family.quiet_defaults and v == family.quiet_defaults[k])}
    return Preset(model=model, backend=backend, steps=int(values["steps"]), clip=float(values["clip"]),
                  entropy_coeff=float(values["entropy_coeff"]), settings=tuple(sorted(settings.items())))


def smoke_layer(backend: str) -> Layer:
    """The settings of a smoke run: the engine's SMOKE_OVERRIDES, or a two-step verl job."""
    check_backend(backend)
    return ("smoke settings", dict(FAMILIES[backend].smoke()))


def preset_keys(model: str) -> tuple[str, ...]:
    """Every key a user YAML may set for ``model``."""
    schema, _ = FAMILIES[backend_of(model)].schema_and_base(model)
    return tuple(f.name for f in dataclasses.fields(schema))


# --- the two preset families -----------------------------------------------------------------


def _embedded_schema_and_base(model: str) -> tuple[type, dict[str, Any]]:
    trial_fields = {f.name for f in dataclasses.fields(TrialSpec)}
    # settings never repeat a TrialSpec field: the backend passes those from the trial itself
    engine_defaults = {k: v for k, v in engine_config.DEFAULT_SETTINGS.items()
                       if k not in trial_fields and k not in TRIAL_KEYS}
    return embedded_schema(engine_defaults, EMBEDDED_TRIAL_DEFAULTS), dict(EMBEDDED_VARIANTS[model])


def _verl_schema_and_base(model: str) -> tuple[type, dict[str, Any]]:
    text = resources.files(__name__).joinpath(f"{model}.yaml").read_text()
    return VerlPreset, OmegaConf.to_container(OmegaConf.create(text))  # type: ignore[return-value]


# --- internals -------------------------------------------------------------------------------


def _merge(cfg, values: Mapping[str, Any], origin: str, model: str):
    if not isinstance(values, Mapping):
        raise ValueError(f"{origin}: expected a mapping of preset keys to values")
    try:
        return OmegaConf.merge(cfg, OmegaConf.create(dict(values)))
    except OmegaConfBaseException as exc:
        key = getattr(exc, "full_key", None)
        if type(exc).__name__ == "ConfigKeyError" and key and "." not in str(key):
            raise ValueError(f"{origin}: unknown key '{key}' for model '{model}'; "
                             f"known: {', '.join(preset_keys(model))}") from None
        where = f"key '{key}': " if key else ""
        raise ValueError(f"{origin}: {where}{_one_line(exc)}") from None


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _frozen(value: Any) -> Any:
    """Lists become tuples and mappings sorted (key, value) pairs, so a TrialSpec stays hashable."""
    if isinstance(value, Mapping):
        return tuple(sorted((k, _frozen(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return tuple(_frozen(v) for v in value)
    return value


def _check_trial_values(model: str, v: Mapping[str, Any]) -> None:
    if v["steps"] < 1:
        raise ValueError(f"preset {model}: steps must be >= 1, got {v['steps']}")
    if not (math.isfinite(v["clip"]) and 0 < v["clip"] <= 1):  # 1: Clip-Cov's recipe (tinyrlvr.policy_losses)
        raise ValueError(f"preset {model}: clip must be in (0, 1], got {v['clip']}")
    finite_nonnegative(f"preset {model}: entropy_coeff", v["entropy_coeff"])


def _check_engine(model: str, values: Mapping[str, Any], explicit: set[str]) -> None:
    """The engine's own range checks (d_model % n_heads, tiers vs max_new_tokens, ...) at plan time."""
    settings = {k: v for k, v in values.items() if k not in TRIAL_KEYS}
    try:
        engine_config.EngineConfig.create(estimator="grpo", steps=values["steps"], clip_low=values["clip"],
                                          clip_high=values["clip"], entropy_coeff=values["entropy_coeff"], **settings)
    except ValueError as exc:
        raise ValueError(f"preset {model}: {_one_line(exc)}") from None


def _check_verl(model: str, v: dict[str, Any], explicit: set[str]) -> None:
    """Reject settings verl would refuse (or silently misuse) before anything starts."""
    if v["n_gpus_per_node"] is None:  # one node with --gpus-per-trial: those; else this machine's
        one_node = v["nnodes"] == 1 and v["gpus_per_trial"] is not None
        v["n_gpus_per_node"] = v["gpus_per_trial"] if one_node else gpus_per_node_default()
    for key in ("train_batch_size", "ppo_mini_batch_size", "max_response_length", "max_prompt_length",
                "ppo_epochs", "eval_every", "n_gpus_per_node", "nnodes", "save_every"):
        if v[key] < 1:
            raise ValueError(f"preset {model}: {key} must be >= 1, got {v[key]}")
    if v["logp_gain_every"] < 0:
        raise ValueError(f"preset {model}: logp_gain_every must be >= 0 (0: no log-prob-gain pass), got {v['logp_gain_every']}")
    if v["rollout_n"] < 2:
        raise ValueError(f"preset {model}: rollout_n must be >= 2 (group-relative advantages need a group), "
                         f"got {v['rollout_n']}")
    if v["ppo_mini_batch_size"] > v["train_batch_size"] or v["train_batch_size"] % v["ppo_mini_batch_size"]:
        raise ValueError(f"preset {model}: train_batch_size ({v['train_batch_size']}) must be a multiple of "
                         f"ppo_mini_batch_size ({v['ppo_mini_batch_size']})")
    if not (math.isfinite(v["lr"]) and v["lr"] > 0):
        raise ValueError(f"preset {model}: lr must be a finite number > 0, got {v['lr']}")
    for key in ("eval_temperature", "rollout_temperature"):
        finite_nonnegative(f"preset {model}: {key}", v[key])
    if not (0 < v["eval_top_p"] <= 1):
        raise ValueError(f"preset {model}: eval_top_p must be in (0, 1], got {v['eval_top_p']}")
    if v["device"] not in ("cuda", "cpu"):
        raise ValueError(f"preset {model}: device must be cuda or cpu, got {v['device']}")
    if v["task"] not in ("math", "addition"):
        raise ValueError(f"preset {model}: task must be math or addition, got {v['task']}")
    _check_verl_cpu(model, v)
    if v["task"] == "math":  # a partial val_n updates the paper's Avg@n table
        v["val_n"] = {**DEFAULT_VAL_N, **(v["val_n"] or {})}
    elif not v["val_n"]:
        raise ValueError(f"preset {model}: task {v['task']} needs its own val_n (tier1, tier2, ...)")
    for bench, n in v["val_n"].items():
        if v["task"] == "addition":
            if not (bench.startswith("tier") and bench[4:].isdigit()):
                raise ValueError(f"preset {model}: val_n has '{bench}'; the addition task's benchmarks are tier1, tier2, ...")
        elif bench not in BENCHMARKS:
            raise ValueError(f"preset {model}: val_n has unknown benchmark '{bench}'; known: {', '.join(BENCHMARKS)}")
        if n < 1:
            raise ValueError(f"preset {model}: val_n.{bench} must be >= 1, got {n}")
    total = v["n_gpus_per_node"] * v["nnodes"]
    if v["gpus_per_trial"] is None:
        v["gpus_per_trial"] = total
    elif v["gpus_per_trial"] != total:
        if v["nnodes"] == 1 and "n_gpus_per_node" not in explicit:
            v["n_gpus_per_node"] = v["gpus_per_trial"]  # one node: the trial's GPUs are the node's
        else:
            raise ValueError(f"preset {model}: gpus_per_trial ({v['gpus_per_trial']}) must equal "
                             f"n_gpus_per_node * nnodes ({total})")
    if v["gpus_per_trial"] < 1:
        raise ValueError(f"preset {model}: gpus_per_trial must be >= 1, got {v['gpus_per_trial']}")


GPU_ROLLOUTS = ("vllm", "sglang", "trtllm")


def _check_verl_cpu(model: str, v: Mapping[str, Any]) -> None:
    """A CPU preset (verl's CPU mode) with a setting that needs a GPU on verl 0.9.1 is refused here:
    GPU rollout servers (vLLM, SGLang, TensorRT-LLM), flash attention (CUDA kernels; verl's default
    when none is set), KL to a reference model (verl offloads it with ``CPUOffloadPolicy(pin_memory=True)``:
    pinned memory needs CUDA)."""
    if v["device"] != "cpu":  # our rollout serves the small embedded-task model from the CPU (gpu_check.sh)
        if v["rollout_name"] == CPU_ROLLOUT_NAME and v["task"] != "addition":
            raise ValueError(f"preset {model}: rollout_name {CPU_ROLLOUT_NAME} serves the embedded task's small model "
                             f"only (task addition); use rollout_name vllm")
        return
    if v["rollout_name"] != CPU_ROLLOUT_NAME:
        raise ValueError(f"preset {model}: device cpu cannot use rollout_name {v['rollout_name']} (a GPU server); "
                         f"use rollout_name {CPU_ROLLOUT_NAME}")
    attention = v["attn_implementation"]
    if attention is None or str(attention).startswith("flash"):
        raise ValueError(f"preset {model}: device cpu cannot use attn_implementation "
                         f"{attention or 'flash_attention_2 (verl default)'} (CUDA kernels); use sdpa or eager")
    if v["use_kl_loss"]:
        raise ValueError(f"preset {model}: device cpu cannot use use_kl_loss (verl's reference model is offloaded "
                         f"to pinned memory, which needs CUDA); set use_kl_loss false")
    if v["n_gpus_per_node"] != 1:
        raise ValueError(f"preset {model}: device cpu runs one training process per node; set n_gpus_per_node 1 "
                         f"(nnodes > 1 spreads a trial over several nodes of a Ray cluster)")
    if v["task"] != "addition":
        raise ValueError(f"preset {model}: device cpu runs the embedded task; set task addition")


@dataclass(frozen=True)
class PresetFamily:
    """What one backend's presets share (one owner for each backend's models, schema, checks, smoke)."""

    models: tuple[str, ...]
    schema_and_base: Callable[[str], tuple[type, dict[str, Any]]]
    check: Callable[[str, dict[str, Any], set[str]], None]  # may fill derived values in place
    smoke: Callable[[], Mapping[str, Any]]
    quiet_defaults: Mapping[str, Any] = field(default_factory=dict)  # left out of settings at these values


FAMILIES: dict[str, PresetFamily] = {
    "embedded": PresetFamily(EMBEDDED_MODELS, _embedded_schema_and_base, _check_engine,
                             lambda: {"steps": EMBEDDED_SMOKE_STEPS, **engine_config.SMOKE_OVERRIDES}),
    "verl": PresetFamily(VERL_MODELS, _verl_schema_and_base, _check_verl, lambda: VERL_SMOKE_OVERRIDES,
                         QUIET_DEFAULTS),
}
MODELS_BY_BACKEND = {backend: family.models for backend, family in FAMILIES.items()}
ALL_MODELS = tuple(model for family in FAMILIES.values() for model in family.models)
