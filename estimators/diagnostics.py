"""The paper's diagnostics as pure functions; every backend computes its metrics with these.

- group solve fractions and per-channel advantage mass (spec section 6, "reference metrics");
- kappa, the online estimator of Appendix E (spec section 3): mixed groups only, length-normalized
  old log-probs;
- token entropy, eq 7, as a masked token mean (independent of any loss aggregation);
- Proposition 2 pressure W_pos, W_neg (eqs 9, 10) and their peaks (eq 11).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from estimators.advantages import check_binary_rewards, group_table


def solve_fractions(rewards: Tensor, group_ids: Tensor) -> tuple[float, float]:
    """(none_solved_frac, all_solved_frac): fractions of groups with p = 0 and with p = 1."""
    check_binary_rewards(rewards, group_ids)
    k, n, _ = group_table(rewards, group_ids)
    if k.numel() == 0:
        return 0.0, 0.0
    return float((k == 0).double().mean()), float((k == n).double().mean())


def advantage_mass(rewards: Tensor, advantages: Tensor) -> tuple[float, float]:
    """(pos, neg): sum of |A| over correct rollouts and over failed rollouts, divided by N.

    The two channels' shares of the update (the paper's positive / negative channel).
    """
    if advantages.shape != rewards.shape:
        raise ValueError(f"advantages {tuple(advantages.shape)} and rewards {tuple(rewards.shape)} must match")
    total = max(rewards.numel(), 1)
    correct = rewards.to(torch.bool)
    a = advantages.abs().to(torch.float64)
    return float(a[correct].sum() / total), float(a[~correct].sum() / total)


def sequence_mean_logprob(token_logprobs: Tensor, response_mask: Tensor) -> Tensor:
    """c_i = sum_t m_t log pi_old(o_t) / sum_t m_t (App E): (N, T) -> (N,); 0 for empty responses."""
    m = response_mask.to(token_logprobs.dtype)
    return (token_logprobs * m).sum(-1) / m.sum(-1).clamp_min(1.0)


def kappa(rewards: Tensor, group_ids: Tensor, seq_logprob: Tensor) -> float:
    """kappa-hat_t, App E: mean over mixed groups of p(1-p) * (c+ - c-) * log(p / (1-p)).

    ``seq_logprob`` is c_i (see ``sequence_mean_logprob``). Returns NaN when no group is mixed
    (the estimator is undefined then; callers skip NaN when averaging over steps).
    """
    check_binary_rewards(rewards, group_ids)
    if seq_logprob.shape != rewards.shape:
        raise ValueError(
            f"seq_logprob {tuple(seq_logprob.shape)} must have one value per rollout like rewards "
            f"{tuple(rewards.shape)}; reduce token log-probs with sequence_mean_logprob first"
        )
    k, n, inverse = group_table(rewards, group_ids)
    r = rewards.to(torch.float64)
    c = seq_logprob.to(torch.float64)
    sum_c_pos = torch.zeros_like(k).index_add_(0, inverse, c * r)
    sum_c_neg = torch.zeros_like(k).index_add_(0, inverse, c * (1 - r))
    mixed = (k > 0) & (k < n)
    if not bool(mixed.any()):
        return float("nan")
    k, n = k[mixed], n[mixed]
    p = k / n
    gap = sum_c_pos[mixed] / k - sum_c_neg[mixed] / (n - k)  # Delta_g = c+ - c-
    log_odds = torch.log(p / (1 - p))  # l_g
    return float((p * (1 - p) * gap * log_odds).mean())


def entropy_from_logprobs(logp: Tensor) -> Tensor:
    """Eq 7 per token from log-probabilities: -sum_v pi(v) log pi(v). (..., V) -> (...).

    For callers that already hold log_softmax (a sampler, a loss). Entries with pi = 0 (-inf
    logits) contribute 0 (0 * log 0 = 0), not NaN.
    """
    probs = logp.exp()
    return -torch.where(probs > 0, probs * logp, torch.zeros_like(logp)).sum(-1)


def token_entropy(logits: Tensor) -> Tensor:
    """Eq 7 per token from logits. (..., V) -> (...)."""
    return entropy_from_logprobs(torch.log_softmax(logits.float(), dim=-1))


def masked_mean(values: Tensor, mask: Tensor) -> float:
    """Token mean over mask: what ``train/entropy`` reports, whatever the loss aggregation."""
    m = mask.to(values.dtype)
    return float((values * m).sum() / m.sum().clamp_min(1.0))


def pressure_pos(p: Tensor | float, alpha_pos: float) -> Tensor:
    """Eq 9: W_pos(p) = p * ((1-p)/p)**alpha_pos = p**(1-alpha_pos) * (1-p)**alpha_pos."""
    p = torch.as_tensor(p, dtype=torch.float64)
    return torch.pow(p, 1 - alpha_pos) * torch.pow(1 - p, alpha_pos)


def pressure_neg(p: Tensor | float, alpha_neg: float) -> Tensor:
    """Eq 10: W_neg(p) = (1-p) * (p/(1-p))**alpha_neg = p**alpha_neg * (1-p)**(1-alpha_neg)."""
    p = torch.as_tensor(p, dtype=torch.float64)
    return torch.pow(p, alpha_neg) * torch.pow(1 - p, 1 - alpha_neg)


def pressure_peaks(alpha_pos: float, alpha_neg: float) -> tuple[float | None, float | None]:
    """Eq 11: p*_pos = 1 - alpha_pos, p*_neg = alpha_neg; None where the peak is not interior."""

    def interior(x: float) -> float | None:
        return x if 0.0 < x < 1.0 and math.isfinite(x) else None

    # W is log-concave with an interior maximum only for alpha in (0, 1).
    pos = interior(1.0 - alpha_pos) if 0.0 < alpha_pos < 1.0 else None
    neg = interior(alpha_neg) if 0.0 < alpha_neg < 1.0 else None
    return pos, neg
