"""One registry of advantage estimators, one signature: fn(rewards, group_ids, alpha_pos, alpha_neg, **params).

An entry knows its default alphas and which of them a user may set; the lookup error lists the
known names, as verl's ``get_adv_estimator_fn`` does. Some comparators need more than rewards:
an entry names those optional inputs (``inputs``: ``seq_logprob``, passed to ``fn`` as a keyword)
and may add a token-level shaping of the copied advantages (``token_shaping``, which reads the old
policy's token entropy). ``compute_token_advantages`` is the one call both backends make: it
derives the inputs an entry needs from the old log-probs and entropies and returns (N, T).

An entry knows its default alphas, which of them a user may set, and the ranges of its own
parameters (``params``: none for the paper's estimators; a user's estimator may declare some, e.g.
a temperature); the lookup error lists the known names, as verl's ``get_adv_estimator_fn`` does.
A user registers an estimator from their own module with ``register`` (``experiments.plugins``
imports such modules by dotted path or through the ``asym.estimators`` entry point group).
"""

from __future__ import annotations

import importlib
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping

from common.numbers import finite_nonnegative
from estimators import comparator_constants as comp

if TYPE_CHECKING:
    from torch import Tensor

EstimatorFn = Callable[..., "Tensor"]  # (rewards, group_ids, alpha_pos, alpha_neg, **inputs) -> (N,)
TokenShaping = Callable[["Tensor", "Tensor", "Tensor"], "Tensor"]  # (token_adv, token_entropy, mask) -> (N, T)
OPTIONAL_INPUTS = ("seq_logprob",)


@dataclass(frozen=True)
class Lazy:
    """``module.name``, imported on its first call: the built-in entries name their torch functions
    this way, so planning (the CLI, the sweep driver) reads the registry without importing torch."""

    module: str
    name: str

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return getattr(importlib.import_module(self.module), self.name)(*args, **kwargs)


def _adv(name: str) -> Lazy:
    return Lazy("estimators.advantages", name)


def _comp(name: str) -> Lazy:
    return Lazy("estimators.comparators", name)


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
    source: str = "AsymGRPO paper (shared/paper/spec.md)"  # where the formula comes from
    inputs: tuple[str, ...] = ()  # optional inputs fn needs, from OPTIONAL_INPUTS
    token_shaping: TokenShaping | None = None  # applied to the (N, T) advantages; reads token entropy

    params: tuple[EstimatorParam, ...] = ()  # the estimator's own parameters, passed to fn as keywords

    @property
    def needs_token_entropy(self) -> bool:
        return self.token_shaping is not None

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
                 alpha_neg: float | None = None, params: Mapping[str, object] | None = None,
                 **inputs: Tensor | None) -> Tensor:
        """Checked values (a caller at the boundary: the CLI, a test, a notebook)."""
        a_pos, a_neg = self.resolve_alphas(alpha_pos, alpha_neg)
        return self.run(rewards, group_ids, a_pos, a_neg, self.resolve_params(params), **inputs)

    def run(self, rewards: Tensor, group_ids: Tensor, alpha_pos: float, alpha_neg: float,
            params: Iterable[tuple[str, float]] = (), **inputs: Tensor | None) -> Tensor:
        """The values a trial carries, checked once by the planner (``resolve_alphas`` /
        ``resolve_params``): the training step does not check them again."""
        return self.fn(rewards, group_ids, alpha_pos, alpha_neg, **self.select_inputs(inputs), **dict(params))

    def select_inputs(self, inputs: dict[str, Tensor | None]) -> dict[str, Tensor]:
        """The optional inputs this entry takes, from ``inputs``; one-line error when one is missing."""
        unknown = sorted(set(inputs) - set(OPTIONAL_INPUTS))
        if unknown:
            raise ValueError(f"unknown estimator input(s) {', '.join(unknown)}; known: {', '.join(OPTIONAL_INPUTS)}")
        missing = [name for name in self.inputs if inputs.get(name) is None]
        if missing:
            raise ValueError(f"estimator '{self.name}' needs {', '.join(missing)} (old-policy log-probs per rollout)")
        return {name: inputs[name] for name in self.inputs}


def check_alpha(name: str, value: float) -> float:
    """Alphas are exponents on a ratio: finite and >= 0 (spec section 1)."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    return finite_nonnegative(name, value)


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
                       alpha_neg: float | None = None, params: Mapping[str, object] | None = None,
                       **inputs: Tensor | None) -> Tensor:
    """Per-rollout advantages (N,) of the named estimator (before any token shaping)."""
    return get_estimator(name)(rewards, group_ids, alpha_pos, alpha_neg, params, **inputs)


def compute_token_advantages(name: str, rewards: Tensor, group_ids: Tensor, response_mask: Tensor,
                             alpha_pos: float | None = None, alpha_neg: float | None = None, *,
                             old_logprob: Tensor | None = None, token_entropy: Tensor | None = None,
                             rollout_advantages: Tensor | None = None,
                             params: Mapping[str, object] | None = None) -> Tensor:
    """Token advantages (N, T) of the named estimator: the rollout advantage on every response token,
    then the entry's token shaping. ``old_logprob`` (N, T) gives ``seq_logprob`` (App E's c_i) to
    entries that need it; ``token_entropy`` (N, T) feeds the shaping. ``rollout_advantages`` (N,)
    skips the rollout step (a caller that already changed them, e.g. zeroed uniform groups).
    """
    from estimators.advantages import broadcast_to_tokens  # deferred: torch
    from estimators.diagnostics import sequence_mean_logprob  # deferred: torch

    estimator = get_estimator(name)
    if rollout_advantages is None:
        inputs = {}
        if "seq_logprob" in estimator.inputs:
            if old_logprob is None:
                raise ValueError(f"estimator '{name}' needs the old policy's token log-probs (old_logprob)")
            inputs["seq_logprob"] = sequence_mean_logprob(old_logprob, response_mask)
        rollout_advantages = estimator(rewards, group_ids, alpha_pos, alpha_neg, params, **inputs)
    token_adv = broadcast_to_tokens(rollout_advantages, response_mask)  # (N, T)
    if estimator.token_shaping is not None:
        if token_entropy is None:
            raise ValueError(f"estimator '{name}' needs the old policy's token entropies (token_entropy)")
        token_adv = estimator.token_shaping(token_adv, token_entropy, response_mask)
    return token_adv


for _entry in (
    Estimator("reinforce", _adv("reinforce"), "REINFORCE", 0.0, 0.0, (), source="AsymGRPO paper eq 2: A = 2r - 1"),
    Estimator("grpo", _adv("grpo"), "GRPO", 0.5, 0.5, (), source="AsymGRPO paper eq 4 (Shao et al. 2402.03300)"),
    Estimator("asym", _adv("asym"), "AsymGRPO", 0.9, 0.4, ("alpha_pos", "alpha_neg"), source="AsymGRPO paper eq 8"),
    Estimator("pos-only", _adv("pos_only"), "Pos-Only", 0.5, 0.0, ("alpha_pos",), source="AsymGRPO paper Sec 3.1"),
    Estimator("neg-only", _adv("neg_only"), "Neg-Only", 0.0, 0.5, ("alpha_neg",), source="AsymGRPO paper Sec 3.1"),
    Estimator("ent-decrease", _adv("ent_decrease"), "EntDecrease", 0.5, 0.5, (), alpha_family=False,
              source="AsymGRPO paper Sec 3.2 (flip test)"),
    Estimator("ent-increase", _adv("ent_increase"), "EntIncrease", 0.5, 0.5, (), alpha_family=False,
              source="AsymGRPO paper Sec 3.2 (flip test)"),
    Estimator("dr-grpo", _adv("dr_grpo"), "Dr.GRPO", 0.0, 0.0, (), alpha_family=False,
              source="Liu et al. 2503.20783 (Dr.GRPO): r - mean(r), no std"),
    # comparators (estimators/comparators.py): their constants are fixed at the sources' values
    Estimator("psr", _comp("psr"), "PSR", 0.0, 0.0, (), alpha_family=False,
              source="Zhu et al. 2506.01347: A = r (correct only)"),
    Estimator("nsr", _comp("nsr"), "NSR", 0.0, 0.0, (), alpha_family=False,
              source="Zhu et al. 2506.01347: A = r - 1 (wrong only)"),
    Estimator("w-reinforce", _comp("w_reinforce"), "W-REINFORCE", 0.0, 0.0, (), alpha_family=False,
              source=f"Zhu et al. 2506.01347: A = {comp.W_REINFORCE_LAMBDA:g} correct, -1 wrong"),
    Estimator("unlikeliness", _comp("unlikeliness"), "Unlikeliness", 0.0, 0.0, (), alpha_family=False,
              source=f"He et al. 2506.02355 (released trainer): r(1 - {comp.UNLIKELINESS_BETA:g} rank/G) over all G, "
                     "GRPO with unbiased std, uniform groups dropped",
              inputs=("seq_logprob",)),
    Estimator("entropy-adv", _adv("grpo"), "Entropy-adv", 0.5, 0.5, (), alpha_family=False,
              source=f"Cheng et al. 2506.14758: GRPO + min({comp.ENTROPY_ADV_ALPHA:g} H_t, |A_t|/{comp.ENTROPY_ADV_KAPPA:g})",
              token_shaping=_comp("entropy_shaping")),
):
    register(_entry)
BUILTIN = frozenset(ESTIMATORS)  # the paper's estimators; any other name came from a user's module
