"""One registry of advantage estimators, one signature: fn(rewards, group_ids, alpha_pos, alpha_neg).

An entry knows its default alphas and which of them a user may set; the lookup error lists the
known names, as verl's ``get_adv_estimator_fn`` does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

from torch import Tensor

from estimators import advantages as adv

EstimatorFn = Callable[[Tensor, Tensor, float, float], Tensor]


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
                 alpha_neg: float | None = None) -> Tensor:
        a_pos, a_neg = self.resolve_alphas(alpha_pos, alpha_neg)
        return self.fn(rewards, group_ids, a_pos, a_neg)


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
                       alpha_neg: float | None = None) -> Tensor:
    """Per-rollout advantages (N,) of the named estimator."""
    return get_estimator(name)(rewards, group_ids, alpha_pos, alpha_neg)


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
