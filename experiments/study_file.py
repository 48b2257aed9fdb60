"""A user's study as a YAML file, checked against a typed schema into the same ``Study`` the paper's use.

::

    name: lr-sweep                    # the study's name (MLflow tag, default sweep name)
    title: Learning rate x alphas     # optional
    plugins: [my_estimators]          # optional: modules that register your estimators (beside this file)
    models: [embedded-tiny]           # optional: presets run by default (per backend)
    seeds: [0, 1]                     # optional (default: --seeds, else 0)
    steps: 20                         # optional default steps (the preset's otherwise)
    methods:                          # one or more
      - label: AsymGRPO (0.9, 0.4)    # unique; legends and tables use it
        estimator: asym               # `asym estimators list`, or one of your plugins'
        alpha_pos: 0.9                # any Method field: alpha_pos, alpha_neg, entropy_coeff,
        alpha_neg: 0.4                #   use_preset_entropy_coeff, clip_high, loss_agg
        settings: {lr: 0.002}         # any preset key (`asym study show` lists them per model)
        params: {temperature: 2.0}    # your estimator's own parameters
        schedule: {alpha_pos.schedule: linear, alpha_pos.end: 0.5}  # optional alpha schedule
        source: "why these values"    # optional; default: this file and line
    axes:                             # every trial is planned once per value; axes multiply
      lr: [0.001, 0.003]              # a preset key, a Method field, params.<name>, alpha_pos.<name>,
                                      #   alpha_neg.<name> (a schedule setting), model or backend
    search:                           # optional: Optuna over ranges instead of the axes' grid
      trials: 6
      ranges:
        alpha_pos: {low: 0.0, high: 1.0}
        entropy_coeff: {low: 0.0001, high: 0.01, log: true}

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
from omegaconf.errors import OmegaConfBaseException

from estimators.errors import first_line
from estimators.metric_names import EVAL_MEAN_ACCURACY
from experiments.spec import Axis, Method, Search, SearchRange, Study

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
    settings: Dict[str, Any] = field(default_factory=dict)
    params: Dict[str, float] = field(default_factory=dict)
    schedule: Dict[str, Any] = field(default_factory=dict)  # alpha_pos.<name> / alpha_neg.<name> (estimators.schedules)
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
    methods: List[Any] = MISSING  # MethodSchema each (checked one by one, for the line)
    title: str = ""
    description: str = ""
    plugins: List[str] = field(default_factory=list)
    models: List[str] = field(default_factory=list)
    seeds: Optional[List[int]] = None
    steps: Optional[int] = None
    axes: Dict[str, List[Any]] = field(default_factory=dict)
    search: Optional[SearchSchema] = None


class StudyFileError(ValueError):
    """A bad study file: one line naming the file, the line and the field."""


# --- loading -----------------------------------------------------------------------------------


def load_study_file(path: str | Path) -> Study:
    """Read, check and convert a study file; a one-line StudyFileError on anything wrong."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise StudyFileError(f"study file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise StudyFileError(f"cannot read study file {path}: {exc}") from None
    lines = _line_map(text, path)
    try:
        raw = OmegaConf.create(text)
    except Exception as exc:  # yaml errors
        raise StudyFileError(f"{path}: not valid YAML: {first_line(exc)}") from None
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
    """``value`` merged onto ``schema`` as a plain dict; a schema error names the file, line and field."""
    try:
        if not isinstance(value, dict) and not OmegaConf.is_dict(value):
            raise StudyFileError(f"{_where(path, lines, prefix)}: expected a mapping of {schema.__name__[:-6].lower()} "
                                 f"fields, got {value!r}")
        cfg = OmegaConf.merge(OmegaConf.structured(schema), value)
        return OmegaConf.to_container(cfg, throw_on_missing=True)  # type: ignore[return-value]
    except OmegaConfBaseException as exc:
        key = ".".join(k for k in (prefix, str(getattr(exc, "full_key", "") or "")) if k)
        raise StudyFileError(f"{_where(path, lines, key)}: {_schema_message(exc, key)}") from None


def _to_study(d: dict, path: Path, lines: dict[str, int]) -> Study:
    def at(key: str) -> str:
        return _where(path, lines, key)

    from estimators.plugins import load_plugins
    from estimators.registry import get_estimator

    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", d["name"]):
        raise StudyFileError(f"{at('name')}: name {d['name']!r} may only use letters, digits, '-', '_' and '.'")
    try:
        load_plugins(d["plugins"], search_dir=str(path.resolve().parent))
    except ValueError as exc:
        raise StudyFileError(f"{at('plugins')}: {exc}") from None
    if not d["methods"]:
        raise StudyFileError(f"{at('methods')}: methods needs at least one method")
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
            clip_high=m["clip_high"], loss_agg=m["loss_agg"], settings=_pairs(m["settings"]),
            params=_pairs(m["params"]), schedule=_pairs(m["schedule"]),
            source=m["source"] or f"{path.name}:{lines.get(key, '?')}",
        ))
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
    return Study(
        name=d["name"], title=d["title"] or d["name"], description=d["description"] or f"study file {path}",
        methods=tuple(methods), models=tuple(d["models"]), default_steps=d["steps"], axes=tuple(axes),
        search=search, seeds=tuple(d["seeds"]) if d["seeds"] is not None else None,
        plugins=tuple(d["plugins"]), origin=str(path),
    )


def check_study(study: Study, **plan_options: Any) -> None:
    """Plan the study once (pure) so a bad value anywhere fails before anything runs."""
    from experiments.plan import plan

    try:
        plan(study, **plan_options)
    except ValueError as exc:
        raise StudyFileError(f"{study.origin}: {exc}") from None


# --- file positions ----------------------------------------------------------------------------


def _line_map(text: str, path: Path) -> dict[str, int]:
    """OmegaConf-style key ("methods[0].alpha_pos") -> 1-based line of that node in the YAML text."""
    import yaml

    try:
        root = yaml.compose(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark else ""
        raise StudyFileError(f"{path}{where}: not valid YAML: {getattr(exc, 'problem', None) or first_line(exc)}") from None
    lines: dict[str, int] = {}

    def walk(node, key: str) -> None:
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                child = f"{key}.{k.value}" if key else str(k.value)
                lines[child] = k.start_mark.line + 1
                walk(v, child)
        elif isinstance(node, yaml.SequenceNode):
            for i, v in enumerate(node.value):
                child = f"{key}[{i}]"
                lines[child] = v.start_mark.line + 1
                walk(v, child)

    if root is not None:
        walk(root, "")
    return lines


def _where(path: Path, lines: dict[str, int], key: str) -> str:
    """``file:line`` of ``key``, or of its closest ancestor in the file."""
    probe = key
    while probe:
        if probe in lines:
            return f"{path}:{lines[probe]} ({key})" if key else f"{path}:{lines[probe]}"
        shorter = re.sub(r"(\.[^.\[\]]+|\[\d+\])$", "", probe)
        probe = "" if shorter == probe else shorter
    return str(path)


def _schema_message(exc: OmegaConfBaseException, key: str) -> str:
    kind = type(exc).__name__
    leaf = key.rsplit(".", 1)[-1] if key else ""
    if kind == "ConfigKeyError":
        return f"unknown field '{leaf}'"
    if kind == "MissingMandatoryValue":
        return f"field '{leaf}' is required"
    if kind in ("ValidationError", "ConfigTypeError"):
        return f"field '{leaf}': {first_line(exc).split('    ')[0]}"
    return first_line(exc)


def _pairs(mapping: dict) -> tuple[tuple[str, Any], ...]:
    return tuple(sorted(mapping.items()))

