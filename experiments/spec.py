"""The typed, frozen objects that flow from the CLI to the backends: ``Study`` and ``TrialSpec``.

A ``Study`` is what to run: methods, axes swept over any trial setting, optionally a search over
ranges, seeds and models. The paper's studies (``experiments.studies``) and a user's study file
(``experiments.study_file``) produce the same ``Study``; the planner (``experiments.plan``) is the
only function that expands one, with the command-line axes and any sampled values, into
``TrialSpec``s. A ``TrialSpec`` is everything a backend needs to run one training job, and nothing
about how it is scheduled.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any

from common.metric_names import EVAL_MEAN_ACCURACY
from common.numbers import finite_nonnegative
from estimators.registry import ESTIMATORS
from tinyrlvr.config import LOSS_AGG_MODES, POLICY_LOSSES  # the engine owns the names (verl's loss_mode names)

Pairs = tuple[tuple[str, Any], ...]  # a mapping kept hashable: sorted (key, value) pairs


@dataclass(frozen=True)
class Method:
    """One row of a paper table: an estimator with its alphas and loss settings."""

    label: str  # as the paper names it, e.g. "AsymGRPO (0.9, 0.4)"
    estimator: str  # a name in estimators.ESTIMATORS
    alpha_pos: float | None = None  # None: the estimator's default
    alpha_neg: float | None = None
    entropy_coeff: float | None = None  # None: no entropy bonus; a float: this coefficient
    use_preset_entropy_coeff: bool = False  # the bonus baselines use the preset's tuned value
    clip_high: float | None = None  # None: symmetric clip (clip_low); Clip-higher sets 0.28
    loss_agg: str = "token-mean"  # spec section 5; Dr.GRPO uses seq-mean-token-sum-norm
    policy_loss: str = "vanilla"  # PPO-clip; "clip_cov" / "kl_cov" are Cui et al.'s covariance losses
    settings: Pairs = ()  # preset keys this method sets (lr, group_size, ...), applied over the preset
    params: Pairs = ()  # the estimator's own parameters (``Estimator.params``)
    schedule: Pairs = ()  # alpha schedule settings ("alpha_pos.schedule", "linear"), ... (estimators.schedules)
    source: str = ""  # where the values come from (paper section and spec tag, or file:line)


@dataclass(frozen=True)
class Axis:
    """One swept setting: every trial is planned once per value (axes multiply)."""

    key: str  # a Method field, "params.<name>", "alpha_pos.<name>" / "alpha_neg.<name>" (a schedule),
    # "model", or any preset key (lr, steps, clip, ...)
    values: tuple[Any, ...]
    source: str = ""  # file:line, or "--set"


@dataclass(frozen=True)
class SearchRange:
    """A numeric range Optuna samples (uniform, or log-uniform with ``log``; ``integer`` rounds)."""

    key: str  # same keys as an Axis
    low: float
    high: float
    log: bool = False
    integer: bool = False
    source: str = ""


@dataclass(frozen=True)
class Search:
    """An Optuna search (Ray Tune's OptunaSearch, TPE): ``trials`` samples of ``ranges``."""

    ranges: tuple[SearchRange, ...]
    trials: int = 8
    metric: str = EVAL_MEAN_ACCURACY
    mode: str = "max"
    seed: int = 0  # the TPE sampler's seed


@dataclass(frozen=True)
class AlphaGrid:
    """One method per (alpha_pos, alpha_neg) cell (Fig 4(d)); --alpha-pos / --alpha-neg replace the lists."""

    alpha_pos: tuple[float, ...]
    alpha_neg: tuple[float, ...]
    estimator: str = "asym"
    label: str = "AsymGRPO"  # a cell's label: "AsymGRPO (0.9, 0.4)"
    source: str = ""

    def method(self, alpha_pos: float, alpha_neg: float) -> Method:
        """One cell of the grid."""
        return Method(label=f"{self.label} ({alpha_pos:g}, {alpha_neg:g})", estimator=self.estimator,
                      alpha_pos=float(alpha_pos), alpha_neg=float(alpha_neg), source=self.source)


@dataclass(frozen=True)
class Study:
    """A declared study: which methods, swept over which axes, on which models and seeds."""

    name: str
    title: str
    description: str
    methods: tuple[Method, ...]
    models: tuple[str, ...] = ()  # verl preset names run by default; () = the backend's default model
    embedded_models: tuple[str, ...] = ()  # embedded presets run by default; () = embedded-tiny
    default_steps: int | None = None  # None: the preset's steps
    alpha_grid: AlphaGrid | None = None  # methods from alpha_pos x alpha_neg (the `grid` study)
    full_only: tuple[str, ...] = ()  # labels of methods a --smoke run leaves out (sweeps, not the table)
    axes: tuple[Axis, ...] = ()
    search: Search | None = None
    seeds: tuple[int, ...] | None = None  # None: the command line's (default 0)
    plugins: tuple[str, ...] = ()  # modules that register the user's estimators (``experiments.plugins``)
    origin: str = ""  # the study file, for a user's study

    @property
    def takes_alpha_grid(self) -> bool:
        return self.alpha_grid is not None


@dataclass(frozen=True)
class TrialSpec:
    """One training job. Frozen and JSON-serialisable; ``key`` identifies it across retries/resumes."""

    study: str
    name: str  # unique within a sweep, readable: "asym-ap0.9-an0.4-s0"
    label: str  # the method's label, for legends and tables
    estimator: str
    alpha_pos: float  # resolved (never None)
    alpha_neg: float
    seed: int
    backend: str = "embedded"
    model: str = "embedded-tiny"
    steps: int = 100
    entropy_coeff: float = 0.0
    clip_low: float = 0.2
    clip_high: float = 0.2
    loss_agg: str = "token-mean"
    policy_loss: str = "vanilla"  # hashed into ``key`` only when set, so older trials keep their keys
    # The model preset's values after user overrides (lr, batch sizes, lengths, eval cadence, ...),
    # as sorted (key, value) pairs so the spec stays hashable. Read with ``settings_dict()``.
    settings: Pairs = field(default_factory=tuple)
    estimator_params: Pairs = ()  # a user estimator's own parameters, resolved (logged like the alphas)
    schedule: Pairs = ()  # alpha schedule settings (estimators.schedules); () = the fixed alphas above
    axes: Pairs = ()  # the value of each swept or sampled setting (logged as ``axis.<key>`` params)
    plugins: tuple[str, ...] = ()  # modules each trial process imports first (a user's estimators)
    # What the trial runs on besides its settings (design, "Trial identity"): the engine's version
    # and the base model's content hash (verl: the model's path/revision), stamped by the sweep's
    # driver once the base models exist (``orchestrator.identity``). Part of ``key``.
    identity: Pairs = ()

    def __post_init__(self) -> None:
        for key in NAMED_FIELDS:
            check_named(key, getattr(self, key), self.name)
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"trial '{self.name}': seed must be an integer >= 0, got {self.seed!r}")
        if isinstance(self.steps, bool) or not isinstance(self.steps, int) or self.steps < 1:
            raise ValueError(f"trial '{self.name}': steps must be an integer >= 1, got {self.steps!r}")
        for key in ("alpha_pos", "alpha_neg", "entropy_coeff", "clip_low", "clip_high"):
            _check_nonnegative(f"trial '{self.name}': {key}", getattr(self, key))
        if self.clip_high < self.clip_low:
            raise ValueError(f"trial '{self.name}': clip_high {self.clip_high} is below clip_low {self.clip_low}")

    def settings_dict(self) -> dict[str, Any]:
        return dict(self.settings)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for key in _MAPPINGS:
            d[key] = dict(getattr(self, key))
        d["plugins"] = list(self.plugins)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrialSpec":
        d = dict(d)
        for key in _MAPPINGS:
            d[key] = tuple(sorted((d.get(key) or {}).items()))
        d["plugins"] = tuple(d.get("plugins") or ())
        return cls(**d)

    @property
    def key(self) -> str:
        """The trial's identity (design, "Trial identity"): a hash of everything that changes its
        result -- estimator, alphas, seed, model, steps, loss settings, the preset's values, the
        estimator's parameters, plugins, the engine's version and the base model's content hash
        (``identity``) -- and nothing that only names it (study, name, label, axes), so the same
        trial planned by another study, a resume or a retry gets the same key."""
        d = self.to_dict()
        for name, default in _LATER_FIELDS.items():  # added after trials were tracked: hashed when set
            if d.get(name) == default:
                d.pop(name)
        for key in _NAMING:
            del d[key]
        for key in ("estimator_params", "schedule", "plugins", "identity"):  # empty: as before these fields existed
            if not d[key]:
                del d[key]
        blob = json.dumps(d, sort_keys=True, default=str)
        return hashlib.sha1(blob.encode()).hexdigest()[:16]

    def params(self) -> dict[str, str]:
        """Flat string params for MLflow: the trial's fields, the estimator's own parameters (like
        the alphas), each swept setting (``axis.<key>``), its identity (``identity.<key>``), then the
        preset's (``cfg.<key>``)."""
        d = self.to_dict()
        settings, estimator_params, axes = d.pop("settings"), d.pop("estimator_params"), d.pop("axes")
        plugins, identity, schedule = d.pop("plugins"), d.pop("identity"), d.pop("schedule")
        flat = {k: str(v) for k, v in d.items()}
        flat.update({k: str(v) for k, v in estimator_params.items()})
        flat.update({k: str(v) for k, v in schedule.items()})  # "alpha_pos.schedule": "linear", ...
        flat.update({f"axis.{k}": str(v) for k, v in axes.items()})
        flat.update({f"identity.{k}": str(v) for k, v in identity.items()})
        if plugins:
            flat["plugins"] = ",".join(plugins)

        if self.estimator in ESTIMATORS:  # the report reads the flag here (it may lack the user's module)
            flat["alpha_family"] = str(ESTIMATORS[self.estimator].alpha_family)
        flat.update({f"cfg.{k}": str(v) for k, v in settings.items()})
        return flat


_LATER_FIELDS = {"policy_loss": "vanilla"}
_MAPPINGS = ("settings", "estimator_params", "schedule", "axes", "identity")
_NAMING = ("study", "name", "label", "axes")  # name a trial, change nothing it computes (axes: values already in the settings)


# Method fields whose values are names (the engine owns them: verl's loss_mode / loss_agg_mode names)
NAMED_FIELDS = {"policy_loss": POLICY_LOSSES, "loss_agg": LOSS_AGG_MODES}


def check_named(key: str, value: Any, owner: str) -> None:
    """One-line refusal of an unknown name for ``key`` (a trial, a study file's line, a --set)."""
    if value not in NAMED_FIELDS[key]:
        raise ValueError(f"{owner}: unknown {key} '{value}'; known: {', '.join(NAMED_FIELDS[key])}")


def _check_nonnegative(what: str, value: Any) -> None:
    finite_nonnegative(what, value)
