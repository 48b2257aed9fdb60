"""The pure planner: a declared study + command-line options -> an ordered list of ``TrialSpec``.

Nothing here starts, writes or imports Ray/MLflow: the same call backs ``--dry-run`` and the real
sweep, so every plan can be printed before it runs. Order is deterministic (seed, then model, then
the study's method order), names are unique and readable ("asym-ap0.9-an0.4-s0"; the model joins
the name when a plan has several), and ``TrialSpec.key`` is stable across planning calls.
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

from estimators.plugins import load_plugins
from experiments import presets
from experiments.spec import Axis, Method, Study, TrialSpec
from experiments.studies import get_study
from experiments.studies.grid import DEFAULT_ALPHA_NEG, DEFAULT_ALPHA_POS, grid_method

ExtraFields = Callable[[TrialSpec], Mapping[str, Any]]


# --- command-line parsing (one-line ValueErrors) ---------------------------------------------


def _comma_items(text: str, name: str, example: str) -> list[str]:
    """Split a comma list, rejecting an empty list or empty items with a one-line error."""
    items = [part.strip() for part in str(text).split(",")]
    if not str(text).strip() or any(not item for item in items):
        raise ValueError(f"{name} needs comma-separated {example}; got {text!r}")
    return items


def _reject_repeats(values: Sequence[Any], describe: Callable[[Any], str]) -> None:
    """One-line error naming the first value that appears twice (``describe`` words it)."""
    for i, value in enumerate(values):
        if value in values[:i]:
            raise ValueError(f"{describe(value)} is listed twice")


def parse_float_list(text: str, *, name: str, nonnegative: bool = True) -> list[float]:
    """"0,0.5,1" -> [0.0, 0.5, 1.0]; rejects empty items, non-numbers, non-finite, negatives, repeats."""
    values: list[float] = []
    for item in _comma_items(text, name, "numbers like 0,0.5,1"):
        try:
            value = float(item)
        except ValueError:
            raise ValueError(f"{name}: {item!r} is not a number (got {text!r})") from None
        if not math.isfinite(value):
            raise ValueError(f"{name}: values must be finite, got {item!r}")
        if nonnegative and value < 0:
            raise ValueError(f"{name}: values must be >= 0, got {item!r}")
        values.append(value)
    _reject_repeats(values, lambda v: f"{name}: {v:g}")
    return values


def parse_seeds(text: str, *, name: str = "--seeds") -> list[int]:
    """"0,1,2" -> [0, 1, 2]; rejects empty items, non-integers, negatives and repeats."""
    seeds: list[int] = []
    for item in _comma_items(text, name, "integers like 0,1,2"):
        try:
            seed = int(item)
        except ValueError:
            raise ValueError(f"{name}: {item!r} is not an integer (got {text!r})") from None
        if seed < 0:
            raise ValueError(f"{name}: seeds must be >= 0, got {item!r}")
        seeds.append(seed)
    _reject_repeats(seeds, lambda v: f"{name}: seed {v}")
    return seeds


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
    if steps is not None and (isinstance(steps, bool) or not isinstance(steps, int) or steps < 1):
        raise ValueError(f"--steps must be an integer >= 1, got {steps!r}")
    methods = study_methods(study, alpha_pos=alpha_pos, alpha_neg=alpha_neg)
    if smoke:  # a smoke run checks the path with the table's rows; the study's sweeps are for real runs
        methods = tuple(m for m in methods if m.label not in study.full_only)
    all_axes = merge_axes(study.axes, axes)
    if sample:
        all_axes = merge_axes(all_axes, [Axis(key, (value,), "search") for key, value in sample.items()])
    by_key = {axis.key: axis for axis in all_axes}
    for key in ("seed",):
        if key in by_key:
            raise ValueError(f"{by_key[key].source or 'axes'}: sweep seeds with `seeds:` / --seeds, not an axis")
    backends = [str(b) for b in by_key.pop("backend").values] if "backend" in by_key else [backend]
    if "model" in by_key:
        if models:
            raise ValueError("pass models with --model or a 'model' axis, not both")
        models = [str(m) for m in by_key.pop("model").values]
    swept = list(by_key.values())
    user_config = presets.load_user_config(config_file) if config_file is not None else None
    origin = str(config_file)

    trials: list[TrialSpec] = []
    resolved: dict[tuple, presets.Preset] = {}
    for b in backends:
        if b not in presets.MODELS_BY_BACKEND:
            raise ValueError(f"unknown backend '{b}'; known: {', '.join(presets.MODELS_BY_BACKEND)}")
        chosen = _check_models(study, b, models)
        for model, section in (user_config or {}).items():
            if model in presets.ALL_MODELS and model not in chosen:  # check sections this plan does not use
                presets.resolve_preset(model, [(f"{origin} [{model}]", section if isinstance(section, Mapping) else ())])
        for seed, model, method, values in itertools.product(
                seeds, chosen, methods, itertools.product(*(axis.values for axis in swept))):
            assignment = dict(zip((axis.key for axis in swept), values))
            where = ", ".join(f"{axis.source or 'axis'} {axis.key}={_text(v)}" for axis, v in zip(swept, values))
            try:
                trial_method, preset_values, est_params = _apply(method, assignment)
                cache_key = (b, model, method.settings, tuple(sorted(preset_values.items(), key=lambda kv: kv[0])))
                if cache_key not in resolved:
                    layers: list[presets.Layer] = []
                    if study.default_steps is not None:
                        layers.append((f"study {study.name}", {"steps": study.default_steps}))
                    layers += presets.user_layers(user_config, model, origin)
                    if overrides:
                        layers.append(("overrides", dict(overrides)))
                    if smoke:
                        layers.append(presets.smoke_layer(b))
                    if method.settings:
                        layers.append((f"method '{method.label}' settings", dict(method.settings)))
                    if preset_values:
                        layers.append((where or "axes", preset_values))
                    if steps is not None:
                        layers.append(("--steps", {"steps": steps}))
                    resolved[cache_key] = presets.resolve_preset(model, layers)
                trials.append(_trial(study, trial_method, resolved[cache_key], seed, est_params, assignment,
                                     with_model=len(chosen) > 1 or len(backends) > 1))
            except ValueError as exc:
                raise ValueError(f"{where}: {exc}" if where and not str(exc).startswith(where) else str(exc)) from None
    seen: dict[str, TrialSpec] = {}
    for trial in trials:
        if trial.name in seen:
            raise ValueError(f"study '{study.name}' plans two trials named '{trial.name}' "
                             f"('{seen[trial.name].label}' and '{trial.label}'); make their settings differ")
        seen[trial.name] = trial
    return trials


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


def parse_set(text: str) -> Axis:
    """``--set key=v1,v2`` -> an Axis; values parse as YAML scalars (numbers, true/false, strings)."""
    import yaml

    key, sep, values = str(text).partition("=")
    key = key.strip()
    if not sep or not key:
        raise ValueError(f"--set needs key=value[,value...], e.g. --set lr=1e-3,3e-3; got {text!r}")
    items = _comma_items(values, f"--set {key}", "values like 1e-3,3e-3")
    parsed = []
    for item in items:
        value = yaml.safe_load(item)
        if isinstance(value, str) and _looks_numeric(value):
            value = float(value)  # YAML 1.1 reads "1e-3" as a string
        parsed.append(value)
    _reject_repeats(parsed, lambda v: f"--set {key}: {v}")
    return Axis(key, tuple(parsed), "--set")


def _looks_numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


# Method fields an axis may set; "params.<name>" sets an estimator parameter; "alpha_pos.<name>" /
# "alpha_neg.<name>" a schedule setting (estimators.schedules); anything else is a preset key.
METHOD_KEYS = ("estimator", "alpha_pos", "alpha_neg", "entropy_coeff", "clip_high", "loss_agg")
PARAM_PREFIX = "params."
SCHEDULE_PREFIXES = ("alpha_pos.", "alpha_neg.")


def _apply(method: Method, assignment: Mapping[str, Any]) -> tuple[Method, dict[str, Any], dict[str, Any]]:
    """(the method with its swept fields set, the swept preset values, the estimator parameters)."""
    from dataclasses import replace

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
    """The study's methods; for the grid, one AsymGRPO per (alpha_pos, alpha_neg) cell."""
    if not study.takes_alpha_grid:
        if alpha_pos is not None or alpha_neg is not None:
            raise ValueError(f"study '{study.name}' has fixed methods; --alpha-pos/--alpha-neg apply to 'grid'")
        return study.methods
    grid_pos = _check_alphas(alpha_pos, DEFAULT_ALPHA_POS, "--alpha-pos")
    grid_neg = _check_alphas(alpha_neg, DEFAULT_ALPHA_NEG, "--alpha-neg")
    return tuple(grid_method(ap, an) for ap, an in itertools.product(grid_pos, grid_neg))


def default_models(study: Study, backend: str) -> tuple[str, ...]:
    """The models a study runs when none are named: those of its models this backend runs (the
    paper's backbones on verl; its embedded models, e.g. a calibrated base, on embedded), else the
    backend's first model."""
    declared = (*study.embedded_models, *study.models) if backend == "embedded" else study.models
    own = tuple(m for m in declared if m in presets.MODELS_BY_BACKEND.get(backend, ()))
    return own or presets.MODELS_BY_BACKEND.get(backend, presets.EMBEDDED_MODELS)[:1]


# --- printing plans (--dry-run) --------------------------------------------------------------


def trials_json(trials: Sequence[TrialSpec], extra: ExtraFields | None = None) -> list[dict[str, Any]]:
    """JSON-ready dicts: every TrialSpec field (settings as a mapping) plus ``key``; ``extra(trial)``
    adds backend fields (the verl renderer adds ``entrypoint`` and ``overrides``)."""
    out = []
    for trial in trials:
        row = trial.to_dict()
        row["settings"] = _thawed(row["settings"])
        row["key"] = trial.key
        if extra is not None:
            row.update(extra(trial))
        out.append(row)
    return out


def trials_table(trials: Sequence[TrialSpec], title: str | None = None):
    """A Rich table of the plan, one row per trial, in run order.

    The name carries the estimator, the alphas that vary and the model (when a plan has several);
    the JSON form (``trials_json``) has every field, the key included.
    """
    from rich import box
    from rich.markup import escape
    from rich.table import Table

    models = sorted({t.model for t in trials})
    backends = sorted({t.backend for t in trials})
    caption = f"backend {', '.join(backends)}; model {', '.join(models)}" if trials else "no trials"
    table = Table(title=escape(title) if title else None, caption=caption, box=box.SIMPLE_HEAD)
    table.add_column("#", justify="right")
    table.add_column("name", no_wrap=True)
    table.add_column("alpha+", justify="right")
    table.add_column("alpha-", justify="right")
    table.add_column("seed", justify="right")
    table.add_column("steps", justify="right")
    table.add_column("other settings", overflow="fold")
    for i, t in enumerate(trials, 1):
        other = []
        if t.entropy_coeff:
            other.append(f"entropy {t.entropy_coeff:g}")
        other.append(f"clip {t.clip_low:g}" + (f"/{t.clip_high:g}" if t.clip_high != t.clip_low else ""))
        if t.loss_agg != "token-mean":
            other.append(t.loss_agg)
        if t.policy_loss != "vanilla":
            other.append(f"loss {t.policy_loss}")
        other += [f"{k}={_text(v)}" for k, v in t.axes if k not in SLUG_KEYS]
        other += [f"{k}={_text(v)}" for k, v in t.estimator_params if f"{PARAM_PREFIX}{k}" not in dict(t.axes)]
        other += [f"{k}={_text(v)}" for k, v in t.schedule if k not in dict(t.axes)]
        table.add_row(str(i), t.name, f"{t.alpha_pos:g}", f"{t.alpha_neg:g}", str(t.seed), str(t.steps),
                      ", ".join(other))
    return table


# --- internals -------------------------------------------------------------------------------


def _trial(study: Study, method: Method, preset: presets.Preset, seed: int, params: Mapping[str, Any],
           assignment: Mapping[str, Any], *, with_model: bool) -> TrialSpec:
    from estimators.registry import get_estimator

    estimator = get_estimator(method.estimator)
    alpha_pos, alpha_neg = estimator.resolve_alphas(method.alpha_pos, method.alpha_neg)
    estimator_params = estimator.resolve_params(params)
    if method.schedule:  # checked (one-line error); a fixed one becomes the plain trial (same key, same name)
        from dataclasses import replace

        from estimators.schedules import canonical

        schedule, alpha_pos, alpha_neg = canonical(method.schedule, method.estimator, alpha_pos, alpha_neg, preset.steps)
        method = replace(method, schedule=schedule)
    if method.use_preset_entropy_coeff:
        entropy_coeff = preset.entropy_coeff
    else:
        entropy_coeff = float(method.entropy_coeff or 0.0)
    clip_high = preset.clip if method.clip_high is None else float(method.clip_high)
    if clip_high < preset.clip:
        raise ValueError(f"method '{method.label}': clip_high {clip_high:g} is below the preset's clip {preset.clip:g}")
    extra = [f"{_short(k)}{_slug_value(v)}" for k, v in assignment.items()
             if k not in SLUG_KEYS and not k.startswith(SCHEDULE_PREFIXES)]  # trial_slug names a schedule
    name = "-".join([trial_slug(method, alpha_pos, alpha_neg, entropy_coeff, preset.clip, clip_high), *extra,
                     *([preset.model] if with_model else []), f"s{seed}"])
    label = " ".join([method.label, *(f"{k}={_text(v)}" for k, v in assignment.items())])
    return TrialSpec(
        study=study.name, name=name, label=label, estimator=method.estimator,
        alpha_pos=alpha_pos, alpha_neg=alpha_neg, seed=seed, backend=preset.backend, model=preset.model,
        steps=preset.steps, entropy_coeff=entropy_coeff, clip_low=preset.clip, clip_high=clip_high,
        loss_agg=method.loss_agg, policy_loss=method.policy_loss, settings=preset.settings,
        estimator_params=estimator_params, schedule=method.schedule, axes=tuple(sorted(assignment.items())),
        plugins=tuple(study.plugins),
    )


SLUG_KEYS = ("estimator", "alpha_pos", "alpha_neg", "entropy_coeff", "clip_high", "loss_agg")  # trial_slug has them


def _short(key: str) -> str:
    return key[len(PARAM_PREFIX):] if key.startswith(PARAM_PREFIX) else key


def _slug_value(value: Any) -> str:
    return _num(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else str(value)


def _text(value: Any) -> str:
    """A value as labels show it: floats to 4 significant digits (enough to tell samples apart)."""
    if isinstance(value, float):
        return format(value, ".4g")
    return str(value)


def trial_slug(method: Method, alpha_pos: float, alpha_neg: float, entropy_coeff: float,
               clip_low: float, clip_high: float) -> str:
    """A readable name from the values that set the trial apart: "asym-ap0.9-an0.4", "grpo-ch0.28"."""
    from estimators.registry import get_estimator

    tunable = get_estimator(method.estimator).tunable
    parts = [method.estimator]
    if "alpha_pos" in tunable:
        parts.append(f"ap{_num(alpha_pos)}")
    if "alpha_neg" in tunable:
        parts.append(f"an{_num(alpha_neg)}")
    if entropy_coeff:
        parts.append(f"ent{_num(entropy_coeff)}")
    if clip_high != clip_low:
        parts.append(f"ch{_num(clip_high)}")
    if method.loss_agg != "token-mean" and method.estimator != "dr-grpo":
        parts.append(method.loss_agg)
    if method.policy_loss != "vanilla":
        parts.append(method.policy_loss.replace("_", "-"))
    if method.schedule:
        from estimators.schedules import slug

        parts.append(slug(method.schedule))
    return "-".join(parts)


def _num(value: float) -> str:
    return format(float(value), ".12g")


def _check_seeds(seeds: Iterable[int]) -> list[int]:
    out: list[int] = []
    for seed in seeds:
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ValueError(f"seeds must be integers >= 0, got {seed!r}")
        out.append(seed)
    _reject_repeats(out, lambda v: f"seed {v}")
    if not out:
        raise ValueError("at least one seed is needed (e.g. --seeds 0)")
    return out


def _check_alphas(values: Sequence[float] | None, default: Sequence[float], name: str) -> list[float]:
    if values is None:
        return [float(v) for v in default]
    from estimators.registry import check_alpha

    checked = [check_alpha(name, value) for value in values]
    _reject_repeats(checked, lambda v: f"{name}: {v:g}")
    if not checked:
        raise ValueError(f"{name} needs at least one value")
    return checked


def _check_models(study: Study, backend: str, models: Sequence[str] | None) -> list[str]:
    chosen = list(models) if models else list(default_models(study, backend))
    for model in chosen:
        presets.check_model(model, backend)
    _reject_repeats(chosen, lambda m: f"model '{m}'")
    return chosen


def _thawed(value: Any) -> Any:
    """Settings for JSON: the ``val_n``-style (key, n) pairs back into a mapping."""
    if isinstance(value, dict):
        return {k: _thawed(v) for k, v in value.items()}
    if isinstance(value, tuple) and value and all(isinstance(p, tuple) and len(p) == 2 and isinstance(p[0], str)
                                                  for p in value):
        return {k: _thawed(v) for k, v in value}
    if isinstance(value, tuple):
        return [_thawed(v) for v in value]
    return value
