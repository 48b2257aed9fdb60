"""A user's study as a YAML file, checked against a typed schema into the same ``Study`` the paper's use.

::

    name: lr-sweep                    # the study's name (MLflow tag, default sweep name)
    title: Learning rate x alphas     # optional
    plugins: [my_estimators]          # optional: modules that register your estimators (beside this file)
    models: [embedded-tiny]           # optional: presets run by default (each backend runs its own);
                                      #   or per backend: {verl: [qwen3-4b], embedded: [embedded-tiny]}
    seeds: [0, 1]                     # optional (default: --seeds, else 0)
    steps: 20                         # optional default steps (the preset's otherwise)
    methods:                          # one or more
      - label: AsymGRPO (0.9, 0.4)    # unique; legends and tables use it
        estimator: asym               # `asym estimators list`, or one of your plugins'
        alpha_pos: 0.9                # any Method field: alpha_pos, alpha_neg, entropy_coeff,
        alpha_neg: 0.4                #   use_preset_entropy_coeff, clip_high, loss_agg, policy_loss
        settings: {lr: 0.002}         # any preset key (`asym study show` lists them per model)
        params: {temperature: 2.0}    # your estimator's own parameters
        schedule: {alpha_pos.schedule: linear, alpha_pos.end: 0.5}  # optional alpha schedule
        source: "why these values"    # optional; shown after this file and line
        smoke: false                  # optional: a --smoke run leaves this method out (default true)
    alpha_grid:                       # optional: one method per (alpha_pos, alpha_neg) cell, besides
      alpha_pos: [0.1, 0.5, 0.9]      #   `methods`; --alpha-pos / --alpha-neg replace the lists
      alpha_neg: [0.1, 0.4]
      estimator: asym                 # default asym; the label is "<label> (a+, a-)"
      label: AsymGRPO
    axes:                             # every trial is planned once per value; axes multiply
      lr: [0.001, 0.003]              # a preset key, a Method field, params.<name>, alpha_pos.<name>,
                                      #   alpha_neg.<name> (a schedule setting), model or backend
    search:                           # optional: Optuna over ranges instead of the axes' grid
      trials: 6
      ranges:
        alpha_pos: {low: 0.0, high: 1.0}
        entropy_coeff: {low: 0.0001, high: 0.01, log: true}

The paper's studies are files of this schema too (``experiments/studies/*.yaml``).
Everything is checked before anything runs: a wrong key or type (the schema), an empty axis, a
repeated method label, an unknown estimator, an estimator parameter out of its range, and then
the whole plan (``experiments.plan``). Errors are one line naming the file, the line and the field.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

from omegaconf import MISSING, OmegaConf

from common.metric_names import EVAL_MEAN_ACCURACY
from common.typed_yaml import YamlFileError, read_yaml, typed, where
from estimators.registry import check_alpha, get_estimator
from experiments.plugins import load_plugins
from experiments.presets import MODELS_BY_BACKEND
from experiments.spec import NAMED_FIELDS, AlphaGrid, Axis, Method, Search, SearchRange, Study, check_named

# --- the schema (OmegaConf structured config) --------------------------------------------------


@dataclass
class MethodSchema:
    label: str = MISSING
    estimator: str = MISSING
    alpha_pos: Optional[float] = None
    alpha_neg: Optional[float] = None
    entropy_coeff: Optional[float] = None
    use_preset_entropy_coeff: bool = False
    clip_high: Optional[float] = None
    loss_agg: str = "token-mean"
    policy_loss: str = "vanilla"
    settings: Dict[str, Any] = field(default_factory=dict)
    params: Dict[str, float] = field(default_factory=dict)
    schedule: Dict[str, Any] = field(default_factory=dict)  # alpha_pos.<name> / alpha_neg.<name> (estimators.schedules)
    source: str = ""
    smoke: bool = True  # false: a --smoke run leaves the method out (a sweep beside the table's rows)


@dataclass
class AlphaGridSchema:
    alpha_pos: List[float] = MISSING
    alpha_neg: List[float] = MISSING
    estimator: str = "asym"
    label: str = "AsymGRPO"
    source: str = ""


@dataclass
class RangeSchema:
    low: float = MISSING
    high: float = MISSING
    log: bool = False
    integer: bool = False


@dataclass
class SearchSchema:
    ranges: Dict[str, Any] = MISSING  # name -> RangeSchema (checked one by one, for the line)
    trials: int = 8
    metric: str = EVAL_MEAN_ACCURACY
    mode: str = "max"
    seed: int = 0


@dataclass
class StudySchema:
    name: str = MISSING
    methods: List[Any] = field(default_factory=list)  # MethodSchema each (checked one by one, for the line)
    title: str = ""
    description: str = ""
    plugins: List[str] = field(default_factory=list)
    models: Any = None  # a list, or backend -> list (checked in _models)
    alpha_grid: Optional[AlphaGridSchema] = None
    seeds: Optional[List[int]] = None
    steps: Optional[int] = None
    axes: Dict[str, List[Any]] = field(default_factory=dict)
    search: Optional[SearchSchema] = None


class StudyFileError(YamlFileError):
    """A bad study file: one line naming the file, the line and the field."""


# --- loading -----------------------------------------------------------------------------------


def load_study_file(path: str | Path) -> Study:
    """Read, check and convert a study file; a one-line StudyFileError on anything wrong."""
    path = Path(path)
    raw, lines = read_yaml(path, "study file", StudyFileError)
    if not OmegaConf.is_dict(raw):
        raise StudyFileError(f"{path}: a study file is a mapping (name:, methods:, axes:, ...)")
    data = _typed(StudySchema, raw, "", path, lines)
    # OmegaConf loses the list index in errors about a list's items: check each item on its own.
    data["methods"] = [_typed(MethodSchema, m, f"methods[{i}]", path, lines) for i, m in enumerate(data["methods"])]
    if data["search"] is not None:
        data["search"]["ranges"] = {k: _typed(RangeSchema, r, f"search.ranges.{k}", path, lines)
                                    for k, r in data["search"]["ranges"].items()}
    return _to_study(data, path, lines)


def _typed(schema: type, value: Any, prefix: str, path: Path, lines: dict[str, int]) -> dict:
    return typed(schema, value, prefix, path, lines, StudyFileError)


def _where(path: Path, lines: dict[str, int], key: str) -> str:
    return where(path, lines, key)


def _to_study(d: dict, path: Path, lines: dict[str, int]) -> Study:
    def at(key: str) -> str:
        return _where(path, lines, key)

    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", d["name"]):
        raise StudyFileError(f"{at('name')}: name {d['name']!r} may only use letters, digits, '-', '_' and '.'")
    try:
        load_plugins(d["plugins"], search_dir=str(path.resolve().parent))
    except ValueError as exc:
        raise StudyFileError(f"{at('plugins')}: {exc}") from None
    if not d["methods"] and d["alpha_grid"] is None:
        raise StudyFileError(f"{at('methods')}: methods needs at least one method (or an alpha_grid)")
    methods, labels = [], {}
    for i, m in enumerate(d["methods"]):
        key = f"methods[{i}]"
        if m["label"] in labels:
            raise StudyFileError(f"{at(key + '.label')}: method '{m['label']}' is declared twice "
                                 f"(first at line {lines.get(labels[m['label']], '?')})")
        labels[m["label"]] = f"{key}.label"
        try:
            estimator = get_estimator(m["estimator"])
        except ValueError as exc:
            raise StudyFileError(f"{at(key + '.estimator')}: {exc}") from None
        for field_name, check in (("alpha_pos", None), ("alpha_neg", None), ("params", None)):
            try:
                if field_name == "params":
                    estimator.resolve_params(m["params"])
                else:
                    estimator.resolve_alphas(**{field_name: m[field_name]})
            except ValueError as exc:
                bad = next((f"{key}.params.{n}" for n in m["params"] if n in str(exc)), f"{key}.{field_name}")
                raise StudyFileError(f"{at(bad)}: {exc}") from None
        methods.append(Method(
            label=m["label"], estimator=m["estimator"], alpha_pos=m["alpha_pos"], alpha_neg=m["alpha_neg"],
            entropy_coeff=m["entropy_coeff"], use_preset_entropy_coeff=m["use_preset_entropy_coeff"],
            clip_high=m["clip_high"], loss_agg=m["loss_agg"], policy_loss=m["policy_loss"],
            settings=_pairs(m["settings"]), params=_pairs(m["params"]), schedule=_pairs(m["schedule"]),
            source=_source(path, lines, key, m["source"]),
        ))
        for named in NAMED_FIELDS:
            try:
                check_named(named, m[named], at(f"{key}.{named}"))
            except ValueError as exc:
                raise StudyFileError(str(exc)) from None
    axes = []
    for key, values in d["axes"].items():
        if not values:
            raise StudyFileError(f"{at('axes.' + key)}: axis '{key}' has no values")
        for j, value in enumerate(values):
            if value in values[:j]:
                raise StudyFileError(f"{at(f'axes.{key}')}: axis '{key}' lists {value!r} twice")
        if key.startswith("params."):
            for method in methods:
                estimator = get_estimator(method.estimator)
                for value in values:
                    try:
                        estimator.resolve_params({**dict(method.params), key[len("params."):]: value})
                    except ValueError as exc:
                        raise StudyFileError(f"{at('axes.' + key)}: {exc}") from None
        axes.append(Axis(key, tuple(values), f"{path.name}:{lines.get('axes.' + key, '?')}"))
    search = None
    if d["search"] is not None:
        s = d["search"]
        if not s["ranges"]:
            raise StudyFileError(f"{at('search.ranges')}: search needs at least one range")
        if s["trials"] < 1:
            raise StudyFileError(f"{at('search.trials')}: trials must be >= 1, got {s['trials']}")
        if s["mode"] not in ("max", "min"):
            raise StudyFileError(f"{at('search.mode')}: mode must be max or min, got {s['mode']!r}")
        ranges = []
        for key, r in s["ranges"].items():
            if not (math.isfinite(r["low"]) and math.isfinite(r["high"]) and r["low"] < r["high"]):
                raise StudyFileError(f"{at('search.ranges.' + key)}: range '{key}' needs finite low < high, "
                                     f"got [{r['low']:g}, {r['high']:g}]")
            if r["log"] and r["low"] <= 0:
                raise StudyFileError(f"{at('search.ranges.' + key)}: a log range needs low > 0")
            ranges.append(SearchRange(key, r["low"], r["high"], r["log"], r["integer"],
                                      f"{path.name}:{lines.get('search.ranges.' + key, '?')}"))
        search = Search(tuple(ranges), trials=s["trials"], metric=s["metric"], mode=s["mode"], seed=s["seed"])
    if d["steps"] is not None and d["steps"] < 1:
        raise StudyFileError(f"{at('steps')}: steps must be >= 1, got {d['steps']}")
    verl_models, embedded_models = _models(d["models"], at)
    return Study(
        name=d["name"], title=d["title"] or d["name"], description=d["description"] or f"study file {path}",
        methods=tuple(methods), models=verl_models, embedded_models=embedded_models, default_steps=d["steps"],
        axes=tuple(axes), alpha_grid=_alpha_grid(d["alpha_grid"], path, lines),
        full_only=tuple(m.label for m, raw in zip(methods, d["methods"]) if not raw["smoke"]),
        search=search, seeds=tuple(d["seeds"]) if d["seeds"] is not None else None,
        plugins=tuple(d["plugins"]), origin=str(path),
    )


def _source(path: Path, lines: dict[str, int], key: str, text: str) -> str:
    """Where a value comes from: this file and line, then the file's own words for it."""
    line = f"{path.name}:{lines.get(key, '?')}"
    return f"{line}: {text}" if text else line


def _models(models: Any, at) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(verl models, embedded models) from a list (each backend runs those it has) or backend -> list."""
    if models is None:
        return (), ()
    if isinstance(models, list):
        return tuple(str(m) for m in models), ()
    if isinstance(models, dict):
        unknown = sorted(set(models) - set(MODELS_BY_BACKEND))
        if unknown:
            raise StudyFileError(f"{at('models.' + unknown[0])}: unknown backend '{unknown[0]}'; "
                                 f"known: {', '.join(MODELS_BY_BACKEND)}")
        for backend, names in models.items():
            if not isinstance(names, list):
                raise StudyFileError(f"{at('models.' + backend)}: models.{backend} is a list of preset names")
        return tuple(models.get("verl", ())), tuple(models.get("embedded", ()))
    raise StudyFileError(f"{at('models')}: models is a list of preset names or backend -> list, got {models!r}")


def _alpha_grid(grid: dict | None, path: Path, lines: dict[str, int]) -> AlphaGrid | None:
    if grid is None:
        return None

    at = lambda key: _where(path, lines, key)  # noqa: E731
    try:
        estimator = get_estimator(grid["estimator"])
    except ValueError as exc:
        raise StudyFileError(f"{at('alpha_grid.estimator')}: {exc}") from None
    if set(estimator.tunable) != {"alpha_pos", "alpha_neg"}:
        raise StudyFileError(f"{at('alpha_grid.estimator')}: estimator '{estimator.name}' does not take both alphas")
    lists = {}
    for key in ("alpha_pos", "alpha_neg"):
        values = grid[key]
        if not values:
            raise StudyFileError(f"{at('alpha_grid.' + key)}: alpha_grid.{key} needs at least one value")
        for j, value in enumerate(values):
            try:
                check_alpha(key, value)
            except ValueError as exc:
                raise StudyFileError(f"{at(f'alpha_grid.{key}[{j}]')}: {exc}") from None
            if value in values[:j]:
                raise StudyFileError(f"{at(f'alpha_grid.{key}[{j}]')}: alpha_grid.{key} lists {value:g} twice")
        lists[key] = tuple(float(v) for v in values)
    return AlphaGrid(alpha_pos=lists["alpha_pos"], alpha_neg=lists["alpha_neg"], estimator=grid["estimator"],
                     label=grid["label"], source=_source(path, lines, "alpha_grid", grid["source"]))


def _pairs(mapping: dict) -> tuple[tuple[str, Any], ...]:
    return tuple(sorted(mapping.items()))

