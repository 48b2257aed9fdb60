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

from experiments import presets
from experiments.spec import BACKENDS, Method, Study, TrialSpec
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
    seeds: Iterable[int] = (0,),
    steps: int | None = None,
    smoke: bool = False,
    alpha_pos: Sequence[float] | None = None,
    alpha_neg: Sequence[float] | None = None,
    overrides: Mapping[str, Any] | None = None,
    config_file: str | Path | None = None,
) -> list[TrialSpec]:
    """Expand ``study`` into trials: seeds x models x methods, each with its resolved preset.

    ``alpha_pos`` / ``alpha_neg`` are the grid's lists (grid study only; default: spec section 9's
    grid). ``overrides`` are preset keys set from code (e.g. ``{"gpus_per_trial": 1}``), applied
    after ``config_file`` (a user YAML, see ``experiments.presets``). ``smoke`` applies the engine's
    SMOKE_OVERRIDES (embedded) or a two-step job (verl); an explicit ``steps`` wins over all.
    Raises a one-line ValueError on any bad input; plans nothing partially.
    """
    study = get_study(study) if isinstance(study, str) else study
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend '{backend}'; known: {', '.join(BACKENDS)}")
    seeds = _check_seeds(seeds)
    if steps is not None and (isinstance(steps, bool) or not isinstance(steps, int) or steps < 1):
        raise ValueError(f"--steps must be an integer >= 1, got {steps!r}")
    methods = study_methods(study, alpha_pos=alpha_pos, alpha_neg=alpha_neg)
    if smoke:  # a smoke run checks the path with the table's rows; the study's sweeps are for real runs
        methods = tuple(m for m in methods if m.label not in study.full_only)
    models = _check_models(study, backend, models)
    user_config = presets.load_user_config(config_file) if config_file is not None else None
    origin = str(config_file)
    for model, section in (user_config or {}).items():
        if model in presets.ALL_MODELS and model not in models:  # check sections this plan does not use
            presets.resolve_preset(model, [(f"{origin} [{model}]", section if isinstance(section, Mapping) else ())])

    resolved = {}
    for model in models:
        layers: list[presets.Layer] = []
        if study.default_steps is not None:
            layers.append((f"study {study.name}", {"steps": study.default_steps}))
        layers += presets.user_layers(user_config, model, origin)
        if overrides:
            layers.append(("overrides", dict(overrides)))
        if smoke:
            layers.append(presets.smoke_layer(backend))
        if steps is not None:
            layers.append(("--steps", {"steps": steps}))
        resolved[model] = presets.resolve_preset(model, layers)

    trials = [
        _trial(study, method, resolved[model], seed, with_model=len(models) > 1)
        for seed, model, method in itertools.product(seeds, models, methods)
    ]
    seen: dict[str, TrialSpec] = {}
    for trial in trials:
        if trial.name in seen:
            raise ValueError(f"study '{study.name}' plans two trials named '{trial.name}' "
                             f"('{seen[trial.name].label}' and '{trial.label}'); make their settings differ")
        seen[trial.name] = trial
    return trials


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
    """The models a study runs when none are named: its paper backbones on verl, else its embedded
    models (the default embedded model unless the study names others)."""
    if backend == "verl":
        return study.models or presets.VERL_MODELS[:1]
    return study.embedded_models or presets.EMBEDDED_MODELS[:1]


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
        table.add_row(str(i), t.name, f"{t.alpha_pos:g}", f"{t.alpha_neg:g}", str(t.seed), str(t.steps),
                      ", ".join(other))
    return table


# --- internals -------------------------------------------------------------------------------


def _trial(study: Study, method: Method, preset: presets.Preset, seed: int, *, with_model: bool) -> TrialSpec:
    from estimators.registry import get_estimator

    alpha_pos, alpha_neg = get_estimator(method.estimator).resolve_alphas(method.alpha_pos, method.alpha_neg)
    if method.use_preset_entropy_coeff:
        entropy_coeff = preset.entropy_coeff
    else:
        entropy_coeff = float(method.entropy_coeff or 0.0)
    clip_high = preset.clip if method.clip_high is None else float(method.clip_high)
    if clip_high < preset.clip:
        raise ValueError(f"method '{method.label}': clip_high {clip_high:g} is below the preset's clip {preset.clip:g}")
    name = "-".join([trial_slug(method, alpha_pos, alpha_neg, entropy_coeff, preset.clip, clip_high),
                     *([preset.model] if with_model else []), f"s{seed}"])
    return TrialSpec(
        study=study.name, name=name, label=method.label, estimator=method.estimator,
        alpha_pos=alpha_pos, alpha_neg=alpha_neg, seed=seed, backend=preset.backend, model=preset.model,
        steps=preset.steps, entropy_coeff=entropy_coeff, clip_low=preset.clip, clip_high=clip_high,
        loss_agg=method.loss_agg, policy_loss=method.policy_loss, settings=preset.settings,
    )


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
