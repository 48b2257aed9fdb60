"""Per-channel telemetry: what one step does to the positive and the negative channel, separately.

Pure functions of a step's (N, T) token tensors; both backends report them under the names in
``metric_names`` (``CHANNEL_METRICS``). A rollout belongs to the positive channel when its
advantage (the mean over its response tokens, so token-level shaping counts too) is > 0 and to the
negative channel when it is < 0; zero-advantage rollouts belong to neither.

- ``pre_update``: entropy per channel and the token covariance of Cui et al. (arXiv 2505.22617,
  Sec 3): C_t = (A_t - mean A)(log pi_t - mean log pi) over the step's response tokens, whose mean
  is Cov(log pi, A). To first order an update with step eta changes the entropy by
  -eta * Cov(log pi, A) (their Lemma / Theorem; the AsymGRPO paper's Proposition 1 builds on it).
- ``post_update``: the entropy and log-prob change of the same tokens under the updated policy.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from common import metric_names as M

COV_QUANTILES = ((0.1, M.COV_LOGP_ADV_Q10), (0.5, M.COV_LOGP_ADV_Q50), (0.9, M.COV_LOGP_ADV_Q90))


def rollout_channels(token_advantages: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    """(positive rows, negative rows), bool (N,): sign of each rollout's mean token advantage."""
    m = mask.to(torch.float64)
    mean_adv = (token_advantages.to(torch.float64) * m).sum(-1) / m.sum(-1).clamp_min(1.0)  # (N,)
    has_tokens = m.sum(-1) > 0
    return (mean_adv > 0) & has_tokens, (mean_adv < 0) & has_tokens


def rows_mean(values: Tensor, mask: Tensor, rows: Tensor) -> float:
    """Token mean of ``values`` (N, T) over the masked tokens of ``rows`` (N,); NaN when there are none."""
    m = mask.to(torch.float64) * rows.to(torch.float64).unsqueeze(-1)  # (N, T)
    count = float(m.sum())
    return float((values.to(torch.float64) * m).sum() / count) if count else math.nan


def cov_products(logp: Tensor, token_advantages: Tensor, mask: Tensor) -> Tensor:
    """C_t over the masked tokens, (M,) float64: centred advantage times centred log-prob (Cui et al.).

    The means are token means over the mask, as verl's ``clip_cov`` / ``kl_cov`` take them.
    """
    valid = mask.to(torch.bool)
    a = token_advantages[valid].to(torch.float64)
    lp = logp[valid].to(torch.float64)
    if a.numel() == 0:
        return a
    return (a - a.mean()) * (lp - lp.mean())


def pre_update(token_advantages: Tensor, old_logp: Tensor, entropy: Tensor, mask: Tensor) -> dict[str, float]:
    """Entropy per channel and Cov(log pi, A) with its quantiles, from the rollout batch."""
    pos, neg = rollout_channels(token_advantages, mask)
    c = cov_products(old_logp, token_advantages, mask)
    out = {M.ENTROPY_POS: rows_mean(entropy, mask, pos), M.ENTROPY_NEG: rows_mean(entropy, mask, neg),
           M.COV_LOGP_ADV: float(c.mean()) if c.numel() else math.nan}
    for q, name in COV_QUANTILES:
        out[name] = float(torch.quantile(c, q)) if c.numel() else math.nan
    return out


def post_update(token_advantages: Tensor, mask: Tensor, old_logp: Tensor, new_logp: Tensor, old_entropy: Tensor,
                new_entropy: Tensor) -> dict[str, float]:
    """Entropy change (all tokens and per channel) and log-prob change per channel across the update."""
    pos, neg = rollout_channels(token_advantages, mask)
    every = mask.to(torch.bool).any(-1)
    d_entropy = new_entropy - old_entropy
    d_logp = new_logp - old_logp
    return {
        M.ENTROPY_CHANGE: rows_mean(d_entropy, mask, every),
        M.ENTROPY_CHANGE_POS: rows_mean(d_entropy, mask, pos),
        M.ENTROPY_CHANGE_NEG: rows_mean(d_entropy, mask, neg),
        M.LOGP_CHANGE_POS: rows_mean(d_logp, mask, pos),
        M.LOGP_CHANGE_NEG: rows_mean(d_logp, mask, neg),
    }
