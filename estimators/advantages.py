"""The paper's advantage family as pure, vectorized functions over (rewards, group_ids).

Every function takes binary rewards ``(N,)`` and integer group ids ``(N,)`` (any values; rollouts
of one prompt share an id) and returns one advantage per rollout ``(N,)``. No Python loop over
groups: group counts come from ``bincount`` / ``index_add_`` over a rollout -> group index
(``group_inverse``: ``torch.unique``'s inverse, without its sort for small non-negative ids).

Equation numbers refer to ``shared/paper/spec.md`` (section 1 and 2). Departures from a naive
reading, both taken from the spec:
- powers use ``torch.pow`` so that 0**0 == 1 at uniform groups (never exp(a*log x), which gives NaN);
- GRPO is the closed form with the *population* std (verl's ``grpo`` uses the unbiased one).
"""

from __future__ import annotations

import torch
from torch import Tensor


def check_binary_rewards(rewards: Tensor, group_ids: Tensor) -> None:
    """Raise ValueError with a one-line message unless rewards are a 1-D 0/1 vector matching ids."""
    if rewards.ndim != 1 or group_ids.ndim != 1:
        raise ValueError(
            f"rewards and group_ids must be 1-D (one value per rollout); got shapes "
            f"{tuple(rewards.shape)} and {tuple(group_ids.shape)}"
        )
    if rewards.shape != group_ids.shape:
        raise ValueError(
            f"rewards {tuple(rewards.shape)} and group_ids {tuple(group_ids.shape)} must have the same length"
        )
    if rewards.is_floating_point() and bool(torch.isnan(rewards).any()):
        raise ValueError("rewards contain NaN; the estimators need binary rewards (0 or 1)")
    if not bool(((rewards == 0) | (rewards == 1)).all()):
        raise ValueError("rewards must be binary (0 or 1); map scores with `score > 0` first")


def group_inverse(group_ids: Tensor) -> Tensor:
    """Rollout -> group index in 0..num_groups-1, groups ranked by id (as ``torch.unique``'s inverse).

    Small non-negative integer ids (verl's uids mapped to 0..n-1, our planners' ids) skip the sort:
    one ``bincount`` over the id range marks the ids present and a ``cumsum`` ranks them.
    """
    if group_ids.numel() == 0:
        return group_ids.to(torch.long)
    if not group_ids.is_floating_point() and group_ids.dtype != torch.bool:
        low, high = int(group_ids.min()), int(group_ids.max())
        if low >= 0 and high < 4 * group_ids.numel() + 1024:
            ids = group_ids.to(torch.long)
            present = torch.bincount(ids, minlength=high + 1) > 0  # (high+1,)
            rank = torch.cumsum(present, 0) - 1  # (high+1,)
            return rank[ids]
    _, inverse = torch.unique(group_ids, return_inverse=True)
    return inverse


def group_table(rewards: Tensor, group_ids: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Per-group (k, n) as float64 (num_groups,) and the rollout -> group inverse index (N,).

    ``group_inverse`` + ``index_add_`` / ``bincount``: group ids need not be contiguous.
    """
    inverse = group_inverse(group_ids)
    num_groups = int(inverse.max()) + 1 if inverse.numel() else 0
    k = torch.zeros(num_groups, dtype=torch.float64, device=rewards.device)
    k.index_add_(0, inverse, rewards.to(torch.float64))
    n = torch.bincount(inverse, minlength=num_groups).to(torch.float64)
    return k, n, inverse


def group_counts(rewards: Tensor, group_ids: Tensor) -> tuple[Tensor, Tensor]:
    """Per-rollout (k, n): correct rollouts and size of the rollout's group, float64 (N,)."""
    k, n, inverse = group_table(rewards, group_ids)
    return k[inverse], n[inverse]


def _channels(rewards: Tensor, pos: Tensor, neg: Tensor) -> Tensor:
    """Pick the positive-channel value for correct rollouts and the negative one for failed ones.

    ``+ 0.0`` turns the -0.0 of -(0**alpha) into 0.0, so printed and JSON values read "0".
    """
    return torch.where(rewards.to(torch.bool), pos, neg).to(torch.float32) + 0.0


def _safe_div(num: Tensor, den: Tensor) -> Tensor:
    # Only used where the side it guards is vacuous (no rollout reads it), but must not be NaN/inf.
    return num / torch.where(den == 0, torch.ones_like(den), den)


def asym(rewards: Tensor, group_ids: Tensor, alpha_pos: float, alpha_neg: float) -> Tensor:
    """AsymGRPO, eq 8: A+ = ((1-p)/p)**alpha_pos, A- = -(p/(1-p))**alpha_neg, p = k/G.

    Uniform groups (spec section 1): all-correct gives 0**alpha_pos (0, or +1 when alpha_pos = 0);
    all-wrong gives -(0**alpha_neg) (0, or -1 when alpha_neg = 0). Written with counts,
    (1-p)/p = (n-k)/k, so no rounding from forming p first.
    """
    check_binary_rewards(rewards, group_ids)
    k, n = group_counts(rewards, group_ids)
    pos = torch.pow(_safe_div(n - k, k), alpha_pos)  # eq 8, positive channel; k >= 1 where read
    neg = -torch.pow(_safe_div(k, n - k), alpha_neg)  # eq 8, negative channel; n-k >= 1 where read
    return _channels(rewards, pos, neg)


def reinforce(rewards: Tensor, group_ids: Tensor, alpha_pos: float = 0.0, alpha_neg: float = 0.0) -> Tensor:
    """REINFORCE, eq 2: A = 2r - 1 (+1 / -1), independent of the group; = asym(0, 0)."""
    check_binary_rewards(rewards, group_ids)
    return (2.0 * rewards.to(torch.float32) - 1.0)


def grpo(rewards: Tensor, group_ids: Tensor, alpha_pos: float = 0.5, alpha_neg: float = 0.5) -> Tensor:
    """GRPO closed form, eq 4: (r - p) / sqrt(p(1-p)) with the population std; = asym(0.5, 0.5)."""
    return asym(rewards, group_ids, 0.5, 0.5)


def pos_only(rewards: Tensor, group_ids: Tensor, alpha_pos: float = 0.5, alpha_neg: float = 0.0) -> Tensor:
    """Pos-Only, spec section 3 step 3: A = r((1-p)/p)**alpha_pos - (1-r); = asym(alpha_pos, 0)."""
    return asym(rewards, group_ids, alpha_pos, 0.0)


def neg_only(rewards: Tensor, group_ids: Tensor, alpha_pos: float = 0.0, alpha_neg: float = 0.5) -> Tensor:
    """Neg-Only, spec section 3 step 4: A = r - (1-r)(p/(1-p))**alpha_neg; = asym(0, alpha_neg)."""
    return asym(rewards, group_ids, 0.0, alpha_neg)


def _check_flip_groups(n: Tensor, name: str) -> None:
    """The endpoint extrapolation needs the grid points (G-1)/G and (G-2)/G, i.e. G >= 2."""
    if bool((n < 2).any()):
        raise ValueError(
            f"{name} needs groups of at least 2 rollouts (spec section 2 extrapolates from the two "
            f"nearest grid points); found a group of size 1: give every prompt >= 2 rollouts"
        )


def _mirrored(k: Tensor, n: Tensor) -> Tensor:
    """sqrt(p/(1-p)) = sqrt(k/(n-k)): the GRPO curve with p replaced by 1-p (spec section 2)."""
    return torch.sqrt(_safe_div(k, n - k))


def ent_decrease(rewards: Tensor, group_ids: Tensor, alpha_pos: float = 0.5, alpha_neg: float = 0.5) -> Tensor:
    """EntDecrease, spec section 2: positive channel mirrored, A+ = sqrt(p/(1-p)); A- as GRPO.

    A+ is undefined at p = 1 (all-correct group); it is extrapolated linearly through the two
    nearest grid points: A+(1) = 2 A+((G-1)/G) - A+((G-2)/G).
    """
    check_binary_rewards(rewards, group_ids)
    k, n = group_counts(rewards, group_ids)
    _check_flip_groups(n, "ent-decrease")
    interior = _mirrored(k, n)
    endpoint = 2.0 * _mirrored(n - 1, n) - _mirrored(n - 2, n)
    pos = torch.where(k == n, endpoint, interior)
    neg = -torch.sqrt(_safe_div(k, n - k))  # GRPO negatives: 0 at p = 0
    return _channels(rewards, pos, neg)


def ent_increase(rewards: Tensor, group_ids: Tensor, alpha_pos: float = 0.5, alpha_neg: float = 0.5) -> Tensor:
    """EntIncrease, spec section 2: negative channel mirrored, A- = -sqrt((1-p)/p); A+ as GRPO.

    A- is undefined at p = 0 (all-wrong group); it is extrapolated linearly through the two
    nearest grid points: A-(0) = 2 A-(1/G) - A-(2/G).
    """
    check_binary_rewards(rewards, group_ids)
    k, n = group_counts(rewards, group_ids)
    _check_flip_groups(n, "ent-increase")
    pos = torch.sqrt(_safe_div(n - k, k))  # GRPO positives: 0 at p = 1
    interior = -_mirrored(n - k, n)  # -sqrt((1-p)/p)
    endpoint = 2.0 * (-_mirrored(n - 1, n)) - (-_mirrored(n - 2, n))
    neg = torch.where(k == 0, endpoint, interior)
    return _channels(rewards, pos, neg)


def dr_grpo(rewards: Tensor, group_ids: Tensor, alpha_pos: float = 0.0, alpha_neg: float = 0.0) -> Tensor:
    """Dr.GRPO-style advantage: A = r - p (group mean baseline, no std normalisation)."""
    check_binary_rewards(rewards, group_ids)
    k, n = group_counts(rewards, group_ids)
    return (rewards.to(torch.float64) - k / n).to(torch.float32) + 0.0


def broadcast_to_tokens(advantages: Tensor, response_mask: Tensor) -> Tensor:
    """Eq 8's token step: copy each rollout's advantage to its response tokens. (N,) x (N,T) -> (N,T).

    The result has the advantages' dtype. A mask of another dtype (verl's is int64) is cast into
    the output and scaled in place: torch's mixed-dtype ``a * mask`` would first materialise a
    converted (N, T) copy of the mask, one more allocation and pass (see benchmarks/estimators.py).
    """
    if advantages.ndim != 1 or response_mask.ndim != 2 or response_mask.shape[0] != advantages.shape[0]:
        raise ValueError(
            f"advantages must be (N,) and response_mask (N, T); got {tuple(advantages.shape)} and "
            f"{tuple(response_mask.shape)}"
        )
    scale = advantages.to(response_mask.device).unsqueeze(-1)  # (N, 1)
    out = torch.empty(response_mask.shape, dtype=advantages.dtype, device=response_mask.device)  # (N, T)
    if response_mask.dtype == advantages.dtype:
        return torch.mul(scale, response_mask, out=out)
    return out.copy_(response_mask).mul_(scale)
