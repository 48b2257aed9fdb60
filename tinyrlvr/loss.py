"""The PPO-style clipped surrogate of spec section 5 (eq 12), with clip-higher and an entropy bonus.

Per token: rho = pi_theta / pi_old, loss = -min(rho * A, clip(rho, 1 - eps_low, 1 + eps_high) * A),
written as max(-A * rho, -A * clip(rho)). eps_low = eps_high is eq 12's symmetric clip; a larger
eps_high is Clip-higher (DAPO). No KL term and no dual clip (spec section 5: none in eq 12).

Aggregation (spec section 5, verl's names):
- "token-mean": sum over all response tokens of the mini-batch / number of tokens (DAPO, eq 12);
- "seq-mean-token-sum-norm": per-sequence token sum / a constant (the max response length),
  averaged over sequences (Dr.GRPO; verl's agg_loss with loss_scale_factor = horizon).
The entropy bonus is aggregated the same way and subtracted: loss - entropy_coeff * H (verl).
"""

from __future__ import annotations

import torch
from torch import Tensor


def aggregate(values: Tensor, mask: Tensor, mode: str, max_response_len: int) -> Tensor:
    """Reduce token values (N, T) over ``mask`` to a scalar with the named aggregation."""
    m = mask.to(values.dtype)
    if mode == "token-mean":
        return (values * m).sum() / m.sum().clamp_min(1.0)
    if mode == "seq-mean-token-sum-norm":
        has_tokens = (m.sum(-1) > 0).to(values.dtype)
        seq_sums = (values * m).sum(-1)  # (N,)
        return (seq_sums * has_tokens).sum() / has_tokens.sum().clamp_min(1.0) / max_response_len
    raise ValueError(f"unknown loss aggregation '{mode}'; use token-mean or seq-mean-token-sum-norm")


def ppo_clip_loss(logp: Tensor, old_logp: Tensor, advantages: Tensor, mask: Tensor, clip_low: float,
                  clip_high: float, loss_agg: str, max_response_len: int, entropy: Tensor | None = None,
                  entropy_coeff: float = 0.0) -> tuple[Tensor, Tensor]:
    """Eq 12 as a loss to minimise, and the clip fraction. All token tensors (N, T); advantages per token.

    clip_frac: share of response tokens whose clipped term is the active (gradient-free) one.
    """
    ratio = torch.exp(logp - old_logp)  # rho_{i,t}
    unclipped = -advantages * ratio
    clipped = -advantages * torch.clamp(ratio, 1.0 - clip_low, 1.0 + clip_high)
    loss = aggregate(torch.maximum(unclipped, clipped), mask, loss_agg, max_response_len)
    if entropy_coeff:
        if entropy is None:
            raise ValueError("entropy_coeff > 0 needs the per-token entropy")
        loss = loss - entropy_coeff * aggregate(entropy, mask, loss_agg, max_response_len)
    m = mask.to(ratio.dtype)
    clip_frac = ((clipped > unclipped).to(ratio.dtype) * m).sum() / m.sum().clamp_min(1.0)
    return loss, clip_frac.detach()
