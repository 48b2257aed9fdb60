"""Proposition 1's predictions of a one-update entropy change, as pure functions of one rollout batch.

Equations refer to ``shared/paper/spec.md`` section 3. Per group g (first order in eta, Cui et al.):
    dH_g(A) = -eta * Cov_g(c, A)                                         (step 1; 1/G covariance)
with c_i the length-normalised old log-prob (App E). An advantage that depends on the reward only,
A = A+(p) r + A-(p) (1 - r), has Cov_g(c, A) = (A+ - A-) v_g Delta_g (step 2), so for the alpha family
(eq 5: A+ = x^alpha+, A- = -x^-alpha-, x = (1-p)/p) and REINFORCE (A+ - A- = 2):
    dH_m - dH_REINFORCE = -eta * v_g * Delta_g * (a_m - 2),  a_m = x^alpha+ + x^-alpha-   (exact in alpha)
and its first order in alpha is eq 6: +eta (alpha+ - alpha-) v_g Delta_g l_g, whose mean over mixed
groups is +eta (alpha+ - alpha-) kappa.

Normalisation: every batch-level prediction here is a mean over the mixed groups M (App E's kappa
normalisation), per unit eta. ``covariance_gap`` sums over *all* groups before dividing by |M|, so an
estimator whose advantages vary inside a uniform group (none of the paper's) is still covered.
The group mean of A does not enter any of these (Cov is shift-invariant): ``center_groups`` removes
exactly that term from an update and leaves every prediction unchanged.
"""

from __future__ import annotations

import torch
from torch import Tensor

from estimators.advantages import check_binary_rewards, group_inverse, group_table


def center_groups(advantages: Tensor, group_ids: Tensor) -> Tensor:
    """A <- A - mean_g(A) per group (the group-mean control; shift-free, so Cov_g(c, A) is unchanged)."""
    inverse = group_inverse(group_ids)
    groups = int(inverse.max()) + 1 if inverse.numel() else 0
    a = advantages.to(torch.float64)
    size = torch.bincount(inverse, minlength=groups).to(torch.float64)
    mean = torch.zeros(groups, dtype=torch.float64, device=a.device).index_add_(0, inverse, a) / size.clamp_min(1)
    return (a - mean[inverse]).to(advantages.dtype)


def group_covariance(seq_logprob: Tensor, advantages: Tensor, group_ids: Tensor) -> Tensor:
    """Cov_g(c, A) per group with 1/G normalisation (spec section 3, step 1): (num_groups,) float64."""
    inverse = group_inverse(group_ids)
    groups = int(inverse.max()) + 1 if inverse.numel() else 0
    c, a = seq_logprob.to(torch.float64), advantages.to(torch.float64)
    size = torch.bincount(inverse, minlength=groups).to(torch.float64)

    def mean(x: Tensor) -> Tensor:
        return torch.zeros(groups, dtype=torch.float64, device=x.device).index_add_(0, inverse, x) / size

    return mean(c * a) - mean(c) * mean(a)


def mixed_count(rewards: Tensor, group_ids: Tensor) -> int:
    """|M|, the number of groups with 0 < p < 1."""
    k, n, _ = group_table(rewards, group_ids)
    return int(((k > 0) & (k < n)).sum())


def covariance_gap(rewards: Tensor, group_ids: Tensor, seq_logprob: Tensor, advantages: Tensor,
                   reference_advantages: Tensor) -> float:
    """-(1/|M|) sum_g [Cov_g(c, A_m) - Cov_g(c, A_ref)], per unit eta (step 1, exact in A); NaN when |M| = 0."""
    check_binary_rewards(rewards, group_ids)
    mixed = mixed_count(rewards, group_ids)
    if mixed == 0:
        return float("nan")
    diff = group_covariance(seq_logprob, advantages, group_ids) - group_covariance(seq_logprob, reference_advantages,
                                                                                   group_ids)
    return float(-diff.sum() / mixed)


def channel_sum(p: Tensor, alpha_pos: float, alpha_neg: float) -> Tensor:
    """a = A+ - A- = x^alpha+ + x^-alpha- with x = (1-p)/p (eq 5), for 0 < p < 1; REINFORCE has a = 2."""
    x = (1 - p) / p
    return torch.pow(x, alpha_pos) + torch.pow(x, -alpha_neg)


def exact_alpha_gap(rewards: Tensor, group_ids: Tensor, seq_logprob: Tensor, alpha_pos: float,
                    alpha_neg: float) -> float:
    """mean_{g in M} -v_g Delta_g (a_m - 2): dH_m - dH_REINFORCE per unit eta, all orders in alpha (eq 5 family)."""
    check_binary_rewards(rewards, group_ids)
    k, n, inverse = group_table(rewards, group_ids)
    mixed = (k > 0) & (k < n)
    if not bool(mixed.any()):
        return float("nan")
    p = k / n
    c, r = seq_logprob.to(torch.float64), rewards.to(torch.float64)
    zeros = torch.zeros_like(k)
    c_pos = zeros.index_add(0, inverse, c * r) / k.clamp_min(1)
    c_neg = zeros.index_add(0, inverse, c * (1 - r)) / (n - k).clamp_min(1)
    term = -p * (1 - p) * (c_pos - c_neg) * (channel_sum(p.clamp(1e-12, 1 - 1e-12), alpha_pos, alpha_neg) - 2)
    return float(term[mixed].mean())


def linear_alpha_gap(kappa: float, alpha_pos: float, alpha_neg: float) -> float:
    """Eq 6 summed over the two channels: (alpha+ - alpha-) * kappa, per unit eta (first order in alpha)."""
    return (alpha_pos - alpha_neg) * kappa
