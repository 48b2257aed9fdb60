"""Clip-Cov and KL-Cov (Cui et al., "The Entropy Mechanism of Reinforcement Learning for Reasoning
Language Models", arXiv 2505.22617, Sec 4), written as verl 0.9.1's ``clip_cov`` / ``kl_cov`` loss
modes (``verl/trainer/ppo/core_algos.py``, adapted there from the authors' repository), so the
embedded engine and verl run the same objective; ``tests/test_policy_losses.py`` feeds both the same
inputs and compares the losses. Plus the side-split PPO clip fractions every mode reports.

Per token, with the means taken over the mini-batch's response tokens:
    C_t = (A_t - mean A) * (log pi_t - mean log pi)                        (Cui et al. eq 9)
- Clip-Cov: among the tokens PPO's clip left active, those with lb < C_t < ub are candidates; a
  random ``ratio`` fraction of the response tokens (at least one) is drawn from them and their loss
  is multiplied by 0 (gradient detached). The rest is PPO's clipped surrogate (no dual clip).
- KL-Cov: the unclipped surrogate -A * rho everywhere, plus ``coef * |log rho|`` on the top
  ``ratio`` fraction of tokens by C_t (at least one). No PPO clip.

On-policy updates (rho = 1: the first mini-batch of each step): KL-Cov's term and its gradient
vanish (|log rho| = 0, and torch's d|x|/dx at 0 is 0), as the source's formulation implies, so the
penalty acts only once the policy has moved within the step (later mini-batches or PPO epochs;
the embedded default has 2 mini-batches, so half of each step's updates). Clip-Cov's detach acts
on-policy as well, and KL-Cov (like verl's) has no PPO clip at all: on-policy it is the plain
policy-gradient surrogate. ``tests/test_policy_losses.py`` checks the on-policy case.

Values, audited against the authors' release (github.com/PRIME-RL/Entropy-Mechanism-of-RL, the
7B recipes ``recipe/dapo/7b_clip_cov.sh`` and ``recipe/dapo/7b_kl_cov.sh``, the losses in
``verl/trainer/ppo/core_algos.py``):
- Clip-Cov: ratio 2e-4, lb 1, ub 5 (``clip_cov_ratio=0.0002``, ``clip_cov_lb=1.0``, ``clip_cov_ub=5.0``),
  run with PPO's ratio clip at 1 on both sides (``clip_ratio_low=1``, ``clip_ratio_high=1``: rho is
  clamped to [0, 2], so PPO's clip almost never binds); the comparators study sets clip 1 for it.
- KL-Cov: k = 2e-3 of the tokens and coef 1 (``k_percent=0.2`` and ``ppo_kl_coef=1``; core_algos
  divides k_percent by 100). 2e-4 (``k_percent=0.02``) is their 32B recipe's value and verl 0.9.1's
  default ``kl_cov_ratio``; the renderer writes 2e-3 explicitly.
With the embedded engine's ~2,000 response tokens per mini-batch, Clip-Cov's 2e-4 selects the minimum
of one token and KL-Cov's 2e-3 about four: at this engine's token counts neither can act as it does on
a 7B model's ~10^6 tokens per mini-batch, so the report does not rank them (see benchmarks/RESULTS.md).
"""

from __future__ import annotations

import torch
from torch import Tensor

from tinyrlvr.config import POLICY_LOSSES  # noqa: F401  (re-exported: the modes this module implements)
from tinyrlvr.loss import aggregate

CLIP_COV_RATIO = 2e-4  # PRIME-RL/Entropy-Mechanism-of-RL recipe/dapo/7b_clip_cov.sh: clip_cov_ratio=0.0002
CLIP_COV_LB = 1.0  # same file: clip_cov_lb=1.0 (omega_low)
CLIP_COV_UB = 5.0  # same file: clip_cov_ub=5.0 (omega_high)
CLIP_COV_PPO_CLIP = 1.0  # same file: clip_ratio_low=1, clip_ratio_high=1 (PPO's clip set by the study, not here)
KL_COV_RATIO = 2e-3  # PRIME-RL/Entropy-Mechanism-of-RL recipe/dapo/7b_kl_cov.sh: k_percent=0.2 (%, core_algos.py / 100)
KL_COV_COEF = 1.0  # same file: ppo_kl_coef=1 (verl 0.9.1's YAML default is 0.1)


def _masked_mean(values: Tensor, mask: Tensor) -> Tensor:
    """verl_F.masked_mean: sum / (count + 1e-8), so the covariance selection matches verl's bit for bit."""
    m = mask.to(values.dtype)
    return (values * m).sum() / (m.sum() + 1e-8)


def clip_sides(ratio: Tensor, advantages: Tensor, mask: Tensor, clip_low: float, clip_high: float) -> tuple[Tensor, Tensor]:
    """(upper, lower) clip fractions: tokens with A > 0 and rho > 1 + eps_high, and with A < 0 and
    rho < 1 - eps_low, each over the response tokens (the clipped term is the active one there)."""
    m = mask.to(ratio.dtype)
    count = m.sum().clamp_min(1.0)
    upper = ((advantages > 0) & (ratio > 1.0 + clip_high)).to(ratio.dtype)
    lower = ((advantages < 0) & (ratio < 1.0 - clip_low)).to(ratio.dtype)
    return ((upper * m).sum() / count).detach(), ((lower * m).sum() / count).detach()


def clip_cov_loss(logp: Tensor, old_logp: Tensor, advantages: Tensor, mask: Tensor, clip_low: float, clip_high: float,
                  loss_agg: str, max_response_len: int, ratio_frac: float = CLIP_COV_RATIO, lb: float = CLIP_COV_LB,
                  ub: float = CLIP_COV_UB, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """Clip-Cov loss and the fraction of tokens it detached (verl's ``pg_clipfrac`` for this mode).

    ``generator`` draws the random selection (``torch.randperm``); None uses torch's global RNG,
    exactly as verl does.
    """
    ratio = torch.exp(logp - old_logp)
    pg_losses1 = -advantages * ratio
    pg_losses2 = -advantages * torch.clamp(ratio, 1 - clip_low, 1 + clip_high)
    clip_by_origin = (pg_losses2 > pg_losses1) & (mask > 0)
    cov_all = (advantages - _masked_mean(advantages, mask)) * (logp - _masked_mean(logp.detach(), mask))
    cov_all = cov_all.masked_fill(mask == 0, -torch.inf).masked_fill(clip_by_origin, -torch.inf)
    clip_num = max(int(ratio_frac * mask.sum().item()), 1)
    candidates = torch.nonzero((cov_all < ub) & (cov_all > lb) & (mask > 0))  # (K, 2)
    if len(candidates) > 0:
        perm = torch.randperm(len(candidates), generator=generator)
        chosen = candidates[perm[: min(clip_num, len(candidates))]]
    else:
        chosen = torch.empty((0, 2), device=cov_all.device, dtype=torch.long)
    corr = torch.ones_like(advantages)
    corr[chosen[:, 0], chosen[:, 1]] = 0
    detached_frac = _masked_mean((corr == 0).to(advantages.dtype), mask)
    loss = aggregate(torch.maximum(pg_losses1, pg_losses2) * corr, mask, loss_agg, max_response_len)
    return loss, detached_frac.detach()


def kl_cov_loss(logp: Tensor, old_logp: Tensor, advantages: Tensor, mask: Tensor, loss_agg: str,
                max_response_len: int, ratio_frac: float = KL_COV_RATIO, coef: float = KL_COV_COEF) -> tuple[Tensor, Tensor]:
    """KL-Cov loss and the fraction of tokens that carry the |log rho| penalty."""
    log_ratio = logp - old_logp
    ratio = torch.exp(log_ratio)
    pg_losses = -advantages * ratio
    valid = mask > 0
    valid_idx = torch.nonzero(valid.reshape(-1), as_tuple=True)[0]
    adv_v = advantages[valid].detach().reshape(-1)
    logp_v = logp[valid].detach().reshape(-1)
    penalised = torch.zeros_like(advantages)
    if adv_v.numel():
        cov = (adv_v - adv_v.mean()) * (logp_v - logp_v.mean())
        top = valid_idx[torch.topk(cov, max(1, int(len(cov) * ratio_frac)), largest=True).indices]
        rows, cols = top // advantages.shape[1], top % advantages.shape[1]
        penalised[rows, cols] = 1.0
        pg_losses = pg_losses + penalised * coef * log_ratio.abs()
    loss = aggregate(pg_losses, mask, loss_agg, max_response_len)
    return loss, _masked_mean(penalised, mask).detach()
