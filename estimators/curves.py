"""Advantage curves of any registered estimator: the value a correct and a failed rollout get in a
group with k of G correct (spec section 1-2 tables, the paper's Figure 1), and the Proposition 2
pressure peaks (spec section 4).

Every number here comes from running the registered estimator itself on a batch of G+1 groups
(k = 0..G), so the table shows exactly what training uses, endpoint rules included. Peaks use
eq 11 for the alpha family; for the other curves (flip test, Dr.GRPO) they are read off the same
W_pos = p * A+(p), W_neg = (1-p) * |A-(p)| on a fine grid.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

from estimators.diagnostics import pressure_peaks
from estimators.registry import Estimator, get_estimator

MAX_GROUP_SIZE = 1024  # (G+1)*G rollouts are built; beyond this the table is unreadable anyway
PEAK_GRID = 400  # resolution 1/400 for peaks read off a curve (non-alpha-family estimators)


@dataclass(frozen=True)
class Row:
    k: int
    p: float
    pos: float | None  # advantage of a correct rollout; None at k = 0 (there is none)
    neg: float | None  # advantage of a failed rollout; None at k = G (there is none)


@dataclass(frozen=True)
class AdvantageTable:
    estimator: str
    group_size: int
    alpha_pos: float
    alpha_neg: float
    rows: tuple[Row, ...]
    peaks: dict[str, float | None]  # {"pos": p*_pos, "neg": p*_neg}; None where not interior

    def to_dict(self) -> dict:
        """The `asym estimators show --json` schema."""
        return {
            "estimator": self.estimator,
            "group_size": self.group_size,
            "alpha_pos": self.alpha_pos,
            "alpha_neg": self.alpha_neg,
            "rows": [asdict(row) for row in self.rows],
            "peaks": dict(self.peaks),
        }


def check_group_size(group_size: int) -> int:
    if isinstance(group_size, bool) or int(group_size) != group_size:
        raise ValueError(f"group size must be an integer, got {group_size!r}")
    group_size = int(group_size)
    if group_size < 2:
        raise ValueError(f"group size must be >= 2 (advantages compare rollouts of one prompt), got {group_size}")
    if group_size > MAX_GROUP_SIZE:
        raise ValueError(f"group size must be <= {MAX_GROUP_SIZE}, got {group_size}")
    return group_size


def k_grid(group_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """G+1 groups, group k holding k correct then G-k failed rollouts: rewards, group ids ((G+1)*G,)."""
    k = torch.arange(group_size + 1).repeat_interleave(group_size)  # ((G+1)*G,)
    slot = torch.arange(group_size).repeat(group_size + 1)  # position inside the group
    rewards = (slot < k).to(torch.float32)
    return rewards, k


def channel_values(estimator: Estimator, group_size: int, alpha_pos: float, alpha_neg: float,
                   params=None) -> tuple[torch.Tensor, torch.Tensor]:
    """(A+, A-) per k = 0..G as float64 (G+1,); A+[0] and A-[G] are NaN (no such rollout).
    ``params``: the estimator's own parameters (their defaults when None)."""
    rewards, group_ids = k_grid(group_size)
    # Entries that rank by log-prob see equal log-probs (ties keep rollout order); token shaping
    # (entropy) is left out: the table shows the rollout-level advantage.
    inputs = {name: torch.zeros_like(rewards) for name in estimator.inputs}
    own = dict(estimator.resolve_params(params))
    adv = estimator.fn(rewards, group_ids, alpha_pos, alpha_neg, **inputs, **own).to(torch.float64).view(group_size + 1, group_size)
    pos = adv[:, 0].clone()  # first rollout of group k is correct iff k >= 1
    neg = adv[:, -1].clone()  # last rollout of group k is failed iff k <= G-1
    pos[0] = float("nan")
    neg[-1] = float("nan")
    return pos, neg


def curve_peak(p: torch.Tensor, pressure: torch.Tensor) -> float | None:
    """The p maximising a pressure curve sampled on interior grid points; None at the grid's ends."""
    i = int(torch.argmax(pressure))
    return float(p[i]) if 0 < i < p.numel() - 1 else None


def estimator_peaks(estimator: Estimator, alpha_pos: float, alpha_neg: float) -> dict[str, float | None]:
    """Proposition 2 peaks: eq 11 for the alpha family, else read off the estimator's own W curves."""
    if estimator.alpha_family:
        pos, neg = pressure_peaks(alpha_pos, alpha_neg)
        # 1 - 0.9 is 0.09999999999999998 in binary: report 0.1
        return {"pos": None if pos is None else round(pos, 12), "neg": None if neg is None else round(neg, 12)}
    a_pos, a_neg = channel_values(estimator, PEAK_GRID, alpha_pos, alpha_neg)
    p = torch.arange(PEAK_GRID + 1, dtype=torch.float64) / PEAK_GRID
    interior = slice(1, PEAK_GRID)
    w_pos = p * a_pos  # eq 9 with the estimator's A+
    w_neg = (1 - p) * a_neg.abs()  # eq 10 with the estimator's |A-|
    return {"pos": curve_peak(p[interior], w_pos[interior]), "neg": curve_peak(p[interior], w_neg[interior])}


def advantage_table(name: str, group_size: int, alpha_pos: float | None = None,
                    alpha_neg: float | None = None) -> AdvantageTable:
    """What `asym estimators show` prints: one row per k = 0..G plus the pressure peaks."""
    estimator = get_estimator(name)
    group_size = check_group_size(group_size)
    a_pos, a_neg = estimator.resolve_alphas(alpha_pos, alpha_neg)
    pos, neg = channel_values(estimator, group_size, a_pos, a_neg)
    rows = tuple(
        Row(
            k=k,
            p=k / group_size,
            pos=None if k == 0 else float(pos[k]),
            neg=None if k == group_size else float(neg[k]),
        )
        for k in range(group_size + 1)
    )
    return AdvantageTable(name, group_size, a_pos, a_neg, rows, estimator_peaks(estimator, a_pos, a_neg))


def overlay_alphas(names: list[str], alpha_pos: float | None, alpha_neg: float | None) -> list[tuple[str, float | None, float | None]]:
    """Alphas for each of several estimators drawn together.

    One name: the alphas go to it as given (an alpha it fixes is an error). Several names: each
    alpha goes to the estimators that tune it; an alpha that none of them tunes is an error.
    """
    if not names:
        raise ValueError("name at least one estimator (see `asym estimators list`)")
    estimators = [get_estimator(name) for name in names]
    if len(estimators) == 1:
        return [(names[0], alpha_pos, alpha_neg)]
    for key, value in (("alpha_pos", alpha_pos), ("alpha_neg", alpha_neg)):
        if value is not None and not any(key in e.tunable for e in estimators):
            raise ValueError(f"none of {', '.join(names)} takes {key}; drop --{key.replace('_', '-')}")
    return [
        (
            e.name,
            alpha_pos if "alpha_pos" in e.tunable else None,
            alpha_neg if "alpha_neg" in e.tunable else None,
        )
        for e in estimators
    ]
