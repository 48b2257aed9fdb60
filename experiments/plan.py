"""The pure planner: a declared study + command-line options -> an ordered list of ``TrialSpec``.

Nothing here starts, writes or imports Ray/MLflow: the same call backs ``--dry-run`` and the real
sweep, so every plan can be printed before it runs. Order is deterministic (seed, then model, then
the study's method order), names are unique and readable ("asym-ap0.9-an0.4-s0"; the model joins
the name when a plan has several), and ``TrialSpec.key`` is stable across planning calls.
"""

from __future__ import annotations

import itertools
from dataclasses import replace
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from estimators.registry import check_alpha, get_estimator
from estimators.schedules import canonical
from experiments import presets
from experiments.naming import (METHOD_KEYS, PARAM_PREFIX, SCHEDULE_PREFIXES, short_key, slug_value, trial_slug,
                                value_text)
from experiments.parse import reject_repeats
from experiments.plugins import load_plugins
from experiments.spec import Axis, Method, Study, TrialSpec
from experiments.studies import get_study

# --- the planner -----------------------------------------------------------------------------


def plan(
    study: str | Study,
    *,
    backend: str = "embedded",
    models: Sequence[str] | None = None,
    seeds: Iterable[int] | None = None,
    steps: int | None = None,
    smoke: bool = False,
    alpha_pos: Sequence[float] | None = None,
    alpha_neg: Sequence[float] | None = None,
    overrides: Mapping[str, Any] | None = None,
    config_file: str | Path | None = None,
    axes: Sequence[Axis] = (),
    sample: Mapping[str, Any] | None = None,
) -> list[TrialSpec]:
    """Expand ``study`` into trials: seeds x backends x models x methods x axis values.

    ``axes`` (e.g. ``--set lr=1e-3,3e-3``) join the study's own, replacing one with the same key;
    ``sample`` is one point an Optuna search drew (key -> value), applied like a one-value axis, so
    a sampled trial gets its own name, label, key and params exactly as a grid trial does.
    ``alpha_pos`` / ``alpha_neg`` are the grid's lists (grid study only; default: spec section 9's
    grid). ``overrides`` are preset keys set from code (e.g. ``{"gpus_per_trial": 1}``), applied
    after ``config_file`` (a user YAML, see ``experiments.presets``). ``smoke`` applies the engine's
    SMOKE_OVERRIDES (embedded) or a two-step job (verl); a method's settings and the axes come
    after it, and an explicit ``steps`` wins over all. Seeds default to the study's, else (0,).
    Raises a one-line ValueError on any bad input; plans nothing partially.
    """
    study = get_study(study) if isinstance(study, str) else study
    load_plugins(study.plugins)
    seeds = _check_seeds(seeds if seeds is not None else (study.seeds or (0,)))
    _check_steps(steps)
    methods = study_methods(study, alpha_pos=alpha_pos, alpha_neg=alpha_neg)
    if smoke:  # a smoke run checks the path with the table's rows; the study's sweeps are for real runs
        methods = tuple(m for m in methods if m.label not in study.full_only)
    backends, models, swept = _split_axes(study, axes, sample, backend, models)
    user_config = presets.load_user_config(config_file) if config_file is not None else None
    layers = _Layers(study, user_config, str(config_file), overrides, smoke, steps)

    trials: list[TrialSpec] = []
    for b in backends:
        presets.check_backend(b)
        chosen = _check_models(study, b, models)
        _check_other_sections(user_config, chosen, str(config_file))
        for seed, model, method, values in itertools.product(
                seeds, chosen, methods, itertools.product(*(axis.values for axis in swept))):
            trials.append(_plan_one(study, b, model, method, seed, dict(zip((a.key for a in swept), values)), swept,
                                    layers, with_model=len(chosen) > 1 or len(backends) > 1))
    _check_unique_names(study, trials)
    return trials


def _check_steps(steps: int | None) -> None:
    if steps is not None and (isinstance(steps, bool) or not isinstance(steps, int) or steps < 1):
        raise ValueError(f"--steps must be an integer >= 1, got {steps!r}")


def _split_axes(study: Study, axes: Sequence[Axis], sample: Mapping[str, Any] | None, backend: str,
                models: Sequence[str] | None) -> tuple[list[str], Sequence[str] | None, list[Axis]]:
    """(backends, models, the swept axes): the study's axes with ``axes`` and a sampled point merged
    in; a ``backend`` or ``model`` axis chooses those instead of multiplying trials like the others."""
    all_axes = merge_axes(study.axes, axes)
    if sample:
        all_axes = merge_axes(all_axes, [Axis(key, (value,), "search") for key, value in sample.items()])
    by_key = {axis.key: axis for axis in all_axes}
    if "seed" in by_key:
        raise ValueError(f"{by_key['seed'].source or 'axes'}: sweep seeds with `seeds:` / --seeds, not an axis")
    backends = [str(b) for b in by_key.pop("backend").values] if "backend" in by_key else [backend]
    if "model" in by_key:
        if models:
            raise ValueError("pass models with --model or a 'model' axis, not both")
        models = [str(m) for m in by_key.pop("model").values]
    return backends, models, list(by_key.values())


def _check_other_sections(user_config: Mapping[str, Any] | None, chosen: Sequence[str], origin: str) -> None:
    """A --config file's sections for models this plan does not run are checked all the same."""
    for model, section in (user_config or {}).items():
        if model in presets.ALL_MODELS and model not in chosen:
            presets.resolve_preset(model, [(f"{origin} [{model}]", section if isinstance(section, Mapping) else ())])


class _Layers:
    """The preset layers of a trial, lowest first, resolved once per (backend, model, method settings,
    swept preset values): study steps, --config, overrides, smoke, the method's settings, the axes, --steps."""

    def __init__(self, study: Study, user_config, origin: str, overrides, smoke: bool, steps: int | None):
        self.study, self.user_config, self.origin = study, user_config, origin
        self.overrides, self.smoke, self.steps = overrides, smoke, steps
        self._resolved: dict[tuple, presets.Preset] = {}

    def preset(self, backend: str, model: str, method: Method, preset_values: Mapping[str, Any], where: str) -> presets.Preset:
        cache_key = (backend, model, method.settings, tuple(sorted(preset_values.items(), key=lambda kv: kv[0])))
        if cache_key not in self._resolved:
            layers: list[presets.Layer] = []
            if self.study.default_steps is not None:
                layers.append((f"study {self.study.name}", {"steps": self.study.default_steps}))
            layers += presets.user_layers(self.user_config, model, self.origin)
            if self.overrides:
                layers.append(("overrides", dict(self.overrides)))
            if self.smoke:
                layers.append(presets.smoke_layer(backend))
            if method.settings:
                layers.append((f"method '{method.label}' settings", dict(method.settings)))
            if preset_values:
                layers.append((where or "axes", preset_values))
            if self.steps is not None:
                layers.append(("--steps", {"steps": self.steps}))
            self._resolved[cache_key] = presets.resolve_preset(model, layers)
        return self._resolved[cache_key]


def _plan_one(study: Study, backend: str, model: str, method: Method, seed: int, assignment: dict[str, Any],
              swept: Sequence[Axis], layers: _Layers, *, with_model: bool) -> TrialSpec:
    """One trial: the method with its swept fields, on its preset; an error names the axis values."""
    where = ", ".join(f"{axis.source or 'axis'} {axis.key}={value_text(assignment[axis.key])}" for axis in swept)
    try:
        trial_method, preset_values, est_params = _apply(method, assignment)
        preset = layers.preset(backend, model, method, preset_values, where)
        return _trial(study, trial_method, preset, seed, est_params, assignment, with_model=with_model)
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}" if where and not str(exc).startswith(where) else str(exc)) from None


def _check_unique_names(study: Study, trials: Sequence[TrialSpec]) -> None:
    seen: dict[str, TrialSpec] = {}
    for trial in trials:
        if trial.name in seen:
            raise ValueError(f"study '{study.name}' plans two trials named '{trial.name}' "
                             f"('{seen[trial.name].label}' and '{trial.label}'); make their settings differ")
        seen[trial.name] = trial


def plan_sampled(study: Study, options: Mapping[str, Any], sample: Mapping[str, Any]) -> TrialSpec:
    """The one trial a search's sample stands for: ``plan(study, **options, sample=sample)``.

    A search plans one model and one seed per sample (several would be one sample's repeats, which
    the searcher cannot tell apart)."""
    trials = plan(study, **options, sample=sample)
    if len(trials) != 1:
        raise ValueError(f"a search plans one trial per sample, but this one plans {len(trials)}: pass one "
                         "--model and one --seeds value, and give the study one method and no axes")
    return trials[0]


def merge_axes(base: Sequence[Axis], extra: Sequence[Axis]) -> tuple[Axis, ...]:
    """``base`` with each axis of ``extra`` added, or replacing the one of the same key."""
    merged = {axis.key: axis for axis in base}
    for axis in extra:
        merged[axis.key] = axis
    return tuple(merged.values())


# Method fields an axis (or --set) may set, each part of a trial's name (``trial_slug``); "params.<name>" sets
# an estimator parameter; "alpha_pos.<name>" / "alpha_neg.<name>" a schedule setting; anything else is a preset key.


def _apply(method: Method, assignment: Mapping[str, Any]) -> tuple[Method, dict[str, Any], dict[str, Any]]:
    """(the method with its swept fields set, the swept preset values, the estimator parameters)."""
    fields = {k: v for k, v in assignment.items() if k in METHOD_KEYS}
    if "entropy_coeff" in fields:
        fields["use_preset_entropy_coeff"] = False  # a swept coefficient replaces the preset's
    params = {**dict(method.params), **{k[len(PARAM_PREFIX):]: v for k, v in assignment.items()
                                        if k.startswith(PARAM_PREFIX)}}
    schedule = {k: v for k, v in assignment.items() if k.startswith(SCHEDULE_PREFIXES)}
    if schedule:
        fields["schedule"] = tuple(sorted({**dict(method.schedule), **schedule}.items()))
    preset_values = {k: v for k, v in assignment.items() if k not in METHOD_KEYS and not k.startswith(PARAM_PREFIX)
                     and not k.startswith(SCHEDULE_PREFIXES)}
    return (replace(method, **fields) if fields else method), preset_values, params


def study_methods(study: Study, *, alpha_pos: Sequence[float] | None = None,
                  alpha_neg: Sequence[float] | None = None) -> tuple[Method, ...]:
    """The study's methods, then one method per (alpha_pos, alpha_neg) cell of its alpha grid."""
    grid = study.alpha_grid
    if grid is None:
        if alpha_pos is not None or alpha_neg is not None:
            raise ValueError(f"study '{study.name}' has fixed methods; --alpha-pos/--alpha-neg apply to 'grid'")
        return study.methods
    grid_pos = _check_alphas(alpha_pos, grid.alpha_pos, "--alpha-pos")
    grid_neg = _check_alphas(alpha_neg, grid.alpha_neg, "--alpha-neg")
    return study.methods + tuple(grid.method(ap, an) for ap, an in itertools.product(grid_pos, grid_neg))


def default_models(study: Study, backend: str) -> tuple[str, ...]:
    """The models a study runs when none are named: those of its models this backend runs (the
    paper's backbones on verl; its embedded models, e.g. a calibrated base, on embedded), else the
    backend's first model."""
    declared = (*study.embedded_models, *study.models) if backend == "embedded" else study.models
    own = tuple(m for m in declared if m in presets.MODELS_BY_BACKEND.get(backend, ()))
    return own or presets.MODELS_BY_BACKEND.get(backend, presets.EMBEDDED_MODELS)[:1]


# --- internals -------------------------------------------------------------------------------


def _trial(study: Study, method: Method, preset: presets.Preset, seed: int, params: Mapping[str, Any],
           assignment: Mapping[str, Any], *, with_model: bool) -> TrialSpec:
    estimator = get_estimator(method.estimator)
    alpha_pos, alpha_neg = estimator.resolve_alphas(method.alpha_pos, method.alpha_neg)
    estimator_params = estimator.resolve_params(params)
    if method.schedule:  # checked (one-line error); a fixed one becomes the plain trial (same key, same name)

        schedule, alpha_pos, alpha_neg = canonical(method.schedule, method.estimator, alpha_pos, alpha_neg, preset.steps)
        method = replace(method, schedule=schedule)
    if method.use_preset_entropy_coeff:
        entropy_coeff = preset.entropy_coeff
    else:
        entropy_coeff = float(method.entropy_coeff or 0.0)
    clip_high = preset.clip if method.clip_high is None else float(method.clip_high)
    if clip_high < preset.clip:
        raise ValueError(f"method '{method.label}': clip_high {clip_high:g} is below the preset's clip {preset.clip:g}")
    extra = [f"{short_key(k)}{slug_value(v)}" for k, v in assignment.items()
             if k not in METHOD_KEYS and not k.startswith(SCHEDULE_PREFIXES)]  # trial_slug names a schedule
    name = "-".join([trial_slug(method, alpha_pos, alpha_neg, entropy_coeff, preset.clip, clip_high), *extra,
                     *([preset.model] if with_model else []), f"s{seed}"])
    label = " ".join([method.label, *(f"{k}={value_text(v)}" for k, v in assignment.items())])
    return TrialSpec(
        study=study.name, name=name, label=label, estimator=method.estimator,
        alpha_pos=alpha_pos, alpha_neg=alpha_neg, seed=seed, backend=preset.backend, model=preset.model,
        steps=preset.steps, entropy_coeff=entropy_coeff, clip_low=preset.clip, clip_high=clip_high,
        loss_agg=method.loss_agg, policy_loss=method.policy_loss, settings=preset.settings,
        estimator_params=estimator_params, schedule=method.schedule, axes=tuple(sorted(assignment.items())),
        plugins=tuple(study.plugins),
    )


def _check_seeds(seeds: Iterable[int]) -> list[int]:
    out: list[int] = []
    for seed in seeds:
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ValueError(f"seeds must be integers >= 0, got {seed!r}")
        out.append(seed)
    reject_repeats(out, lambda v: f"seed {v}")
    if not out:
        raise ValueError("at least one seed is needed (e.g. --seeds 0)")
    return out


def _check_alphas(values: Sequence[float] | None, default: Sequence[float], name: str) -> list[float]:
    if values is None:
        return [float(v) for v in default]
    checked = [check_alpha(name, value) for value in values]
    reject_repeats(checked, lambda v: f"{name}: {v:g}")
    if not checked:
        raise ValueError(f"{name} needs at least one value")
    return checked


def _check_models(study: Study, backend: str, models: Sequence[str] | None) -> list[str]:
    chosen = list(models) if models else list(default_models(study, backend))
    for model in chosen:
        presets.check_model(model, backend)
    reject_repeats(chosen, lambda m: f"model '{m}'")
    return chosen


