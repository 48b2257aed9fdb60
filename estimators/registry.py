"""One registry of advantage estimators, one signature: fn(rewards, group_ids, alpha_pos, alpha_neg, **params).

An entry knows its default alphas, which of them a user may set, and the ranges of its own
parameters (``params``: none for the paper's estimators; a user's estimator may declare some, e.g.
a temperature); the lookup error lists the known names, as verl's ``get_adv_estimator_fn`` does.
A user registers an estimator from their own module with ``register`` (``estimators.plugins``
imports such modules by dotted path or through the ``asym.estimators`` entry point group).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Mapping

from torch import Tensor

from estimators import advantages as adv

EstimatorFn = Callable[[Tensor, Tensor, float, float], Tensor]
# The one name all our estimators take in verl's registry (``estimators.verl_adapter`` registers it;
# the verl renderer selects it); the variant is a name of this registry.
VERL_ESTIMATOR_NAME = "asym_grpo"


@dataclass(frozen=True)
class EstimatorParam:
    """One numeric parameter of an estimator beyond the alphas: its default and closed range."""

    name: str
    default: float
    low: float = -math.inf
    high: float = math.inf

    def check(self, owner: str, value: object) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ValueError(f"estimator '{owner}': parameter {self.name} must be a finite number, got {value!r}")
        if not self.low <= value <= self.high:
            raise ValueError(f"estimator '{owner}': parameter {self.name} must be in [{self.low:g}, {self.high:g}], "
                             f"got {value:g}")
        return float(value)


@dataclass(frozen=True)
class Estimator:
    name: str
    fn: EstimatorFn
    label: str  # the paper's name for it, used in tables and legends
    default_alpha_pos: float
    default_alpha_neg: float
    tunable: tuple[str, ...]  # which of ("alpha_pos", "alpha_neg") the user may set
    # True when A+ = ((1-p)/p)**alpha_pos and A- = -(p/(1-p))**alpha_neg (eq 5), so Proposition 2's
    # closed-form peaks (eq 11) apply; False for the flip-test curves and Dr.GRPO.
    alpha_family: bool = True
    params: tuple[EstimatorParam, ...] = ()  # the estimator's own parameters, passed to fn as keywords

    def resolve_params(self, given: Mapping[str, object] | None = None) -> tuple[tuple[str, float], ...]:
        """Every parameter's value (given, else its default), checked against its range; sorted pairs."""
        given = dict(given or {})
        known = {p.name: p for p in self.params}
        for name in given:
            if name not in known:
                has = f"its parameters: {', '.join(known)}" if known else "it has none"
                raise ValueError(f"estimator '{self.name}' has no parameter '{name}' ({has})")
        return tuple(sorted((name, p.check(self.name, given.get(name, p.default))) for name, p in known.items()))

    def resolve_alphas(self, alpha_pos: float | None = None, alpha_neg: float | None = None) -> tuple[float, float]:
        """The (alpha_pos, alpha_neg) this estimator runs with; rejects alphas it does not take."""
        chosen = {"alpha_pos": alpha_pos, "alpha_neg": alpha_neg}
        for key, value in chosen.items():
            if value is None:
                continue
            check_alpha(key, value)
            if key not in self.tunable:
                fixed = self.default_alpha_pos if key == "alpha_pos" else self.default_alpha_neg
                if float(value) != fixed:
                    raise ValueError(f"estimator '{self.name}' fixes {key}={fixed:g}; drop --{key.replace('_', '-')} or use 'asym'")
        return (
            float(alpha_pos) if alpha_pos is not None else self.default_alpha_pos,
            float(alpha_neg) if alpha_neg is not None else self.default_alpha_neg,
        )

    def __call__(self, rewards: Tensor, group_ids: Tensor, alpha_pos: float | None = None,
                 alpha_neg: float | None = None, params: Mapping[str, object] | None = None) -> Tensor:
        a_pos, a_neg = self.resolve_alphas(alpha_pos, alpha_neg)
        return self.fn(rewards, group_ids, a_pos, a_neg, **dict(self.resolve_params(params)))


def check_alpha(name: str, value: float) -> float:
    """Alphas are exponents on a ratio: finite and >= 0 (spec section 1)."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value}")
    return value


ESTIMATORS: dict[str, Estimator] = {}


def register(estimator: Estimator) -> Estimator:
    """Add ``estimator`` to the registry (a user's module calls this on import)."""
    if estimator.name in ESTIMATORS and ESTIMATORS[estimator.name] == estimator:
        return estimator  # the same module imported twice (a plugin reached two ways)
    if estimator.name in ESTIMATORS:
        raise ValueError(f"estimator '{estimator.name}' is already registered")
    ESTIMATORS[estimator.name] = estimator
    return estimator


def get_estimator(name: str) -> Estimator:
    try:
        return ESTIMATORS[name]
    except KeyError:
        raise ValueError(f"unknown estimator '{name}'; known: {', '.join(ESTIMATORS)}") from None


def compute_advantages(name: str, rewards: Tensor, group_ids: Tensor, alpha_pos: float | None = None,
                       alpha_neg: float | None = None, params: Mapping[str, object] | None = None) -> Tensor:
    """Per-rollout advantages (N,) of the named estimator."""
    return get_estimator(name)(rewards, group_ids, alpha_pos, alpha_neg, params)


for _entry in (
    Estimator("reinforce", adv.reinforce, "REINFORCE", 0.0, 0.0, ()),
    Estimator("grpo", adv.grpo, "GRPO", 0.5, 0.5, ()),
    Estimator("asym", adv.asym, "AsymGRPO", 0.9, 0.4, ("alpha_pos", "alpha_neg")),
    Estimator("pos-only", adv.pos_only, "Pos-Only", 0.5, 0.0, ("alpha_pos",)),
    Estimator("neg-only", adv.neg_only, "Neg-Only", 0.0, 0.5, ("alpha_neg",)),
    Estimator("ent-decrease", adv.ent_decrease, "EntDecrease", 0.5, 0.5, (), alpha_family=False),
    Estimator("ent-increase", adv.ent_increase, "EntIncrease", 0.5, 0.5, (), alpha_family=False),
    Estimator("dr-grpo", adv.dr_grpo, "Dr.GRPO", 0.0, 0.0, (), alpha_family=False),
):
    register(_entry)
BUILTIN = frozenset(ESTIMATORS)  # the paper's estimators; any other name came from a user's module
