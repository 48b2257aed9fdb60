"""Entropy-control comparators from other papers, as pure vectorized functions like ``advantages``.

Rollout-level estimators share the registry signature ``fn(rewards, group_ids, alpha_pos,
alpha_neg, **inputs) -> (N,)`` (the alphas are unused here; each method's own constants are named
below with their source). One takes an optional input the plain signature lacks:

- ``seq_logprob`` (N,): each rollout's mean token log-prob under the old policy (the sampler's, or
  verl's ``old_log_probs``), reduced with ``diagnostics.sequence_mean_logprob``.

The token-level shaping (Cheng et al.) is a function of token advantages, applied after the
rollout advantage is copied to the tokens (``registry.compute_token_advantages``).

Sources (rewards r in {0, 1}):
- PSR / NSR / W-REINFORCE: Zhu et al., "The Surprising Effectiveness of Negative Reinforcement in
  LLM Reasoning", arXiv 2506.01347 (Sec 3-4): PSR trains on the correct samples only (A = +1),
  NSR on the wrong samples only (A = -1), W-REINFORCE = lambda * PSR + NSR with lambda = 0.1.
- Unlikeliness reward: He et al., "Rewarding the Unlikely: Lifting GRPO Beyond Distribution
  Sharpening", arXiv 2506.02355, as their released trainer runs it (``unlikeliness``): every rollout
  ranked among all G by old-policy likelihood, least likely first, r_i <- r_i (1 - 0.25 rank_i / G),
  GRPO with the unbiased std, uniform groups dropped.
- Entropy-based advantage: Cheng et al., "Reasoning with Exploration: An Entropy Perspective",
  arXiv 2506.14758: A_t <- A_t + min(alpha * H_t (detached), |A_t| / kappa), H_t the entropy of the
  policy being updated, from its own forward pass (the engine applies it per mini-batch in
  ``tinyrlvr.update``; verl applies it to the actor's entropy before the update).
"""

from __future__ import annotations

import torch
from torch import Tensor

from estimators.advantages import check_binary_rewards, group_inverse

from estimators.comparator_constants import (  # noqa: F401  (re-exported: comp.W_REINFORCE_LAMBDA, ...)
    ENTROPY_ADV_ALPHA,
    ENTROPY_ADV_KAPPA,
    UNLIKELINESS_BETA,
    W_REINFORCE_LAMBDA,
)


def psr(rewards: Tensor, group_ids: Tensor, alpha_pos: float = 0.0, alpha_neg: float = 0.0) -> Tensor:
    """PSR (Zhu et al. 2506.01347): A = r. Correct rollouts +1, wrong ones 0 (left out of the update)."""
    check_binary_rewards(rewards, group_ids)
    return rewards.to(torch.float32) + 0.0


def nsr(rewards: Tensor, group_ids: Tensor, alpha_pos: float = 0.0, alpha_neg: float = 0.0) -> Tensor:
    """NSR (Zhu et al. 2506.01347): A = r - 1. Wrong rollouts -1, correct ones 0 (left out)."""
    check_binary_rewards(rewards, group_ids)
    return rewards.to(torch.float32) - 1.0 + 0.0


def w_reinforce(rewards: Tensor, group_ids: Tensor, alpha_pos: float = 0.0, alpha_neg: float = 0.0,
                lam: float = W_REINFORCE_LAMBDA) -> Tensor:
    """W-REINFORCE (Zhu et al. 2506.01347): A = lambda for correct, -1 for wrong; no group baseline."""
    check_binary_rewards(rewards, group_ids)
    r = rewards.to(torch.float32)
    return lam * r - (1.0 - r) + 0.0


def likelihood_rank(seq_logprob: Tensor, group_ids: Tensor) -> Tensor:
    """Rank of each rollout among all G rollouts of its group by ``seq_logprob``, ascending: (N,) long.

    0 is the group's least likely rollout, as ``argsort(argsort(old_log_probs))`` in He et al.'s trainer
    (``verl/trainer/ppo/ray_lean_trainer.py``, ``_compute_advantages``); ties keep rollout order (stable
    sorts; the release's unstable argsort breaks them arbitrarily). Two stable sorts, no loop over groups.
    """
    inverse = group_inverse(group_ids)
    by_key = torch.argsort(seq_logprob.to(torch.float64), stable=True)  # (N,)
    order = by_key[torch.argsort(inverse[by_key], stable=True)]  # by group, then by key
    sizes = torch.bincount(inverse)
    starts = torch.cumsum(sizes, 0) - sizes  # first sorted position of each group
    position = torch.empty_like(order)
    position[order] = torch.arange(order.numel(), device=order.device)
    return position - starts[inverse]


def unlikeliness(rewards: Tensor, group_ids: Tensor, alpha_pos: float = 0.0, alpha_neg: float = 0.0, *,
                 seq_logprob: Tensor | None = None, beta: float = UNLIKELINESS_BETA) -> Tensor:
    """Unlikeliness reward (He et al. 2506.02355) as the released trainer computes it.

    Source: github.com/AndreHe02/rewarding-unlikely-release, ``verl/trainer/ppo/ray_lean_trainer.py``:
    - rank_i = argsort(argsort(c)) / G over *all* G rollouts of the group (c = ``seq_logprob``, the
      masked mean old log-prob), r_i <- r_i (1 - beta rank_i), beta = ``rank_penalty`` = 0.25
      (``examples/lean/grpo.sh``: ``+lean.rank_penalty=0.25``); a wrong rollout's reward stays 0;
    - A = (r - mean_g) / (std_g + 1e-6) with torch's *unbiased* std (``_compute_advantages``);
    - all-correct and all-wrong groups are dropped from the batch (``lean.advantage_threshold=True``,
      the sample filter of ``ray_lean_trainer.py``): here they get A = 0, so they add no gradient, but
      their tokens still count in a token-mean loss's denominator (the one difference; ours).
    """
    check_binary_rewards(rewards, group_ids)
    if seq_logprob is None:
        raise ValueError("the unlikeliness estimator needs seq_logprob (each rollout's mean old log-prob)")
    if seq_logprob.shape != rewards.shape:
        raise ValueError(f"seq_logprob {tuple(seq_logprob.shape)} must have one value per rollout like rewards "
                         f"{tuple(rewards.shape)}")
    inverse = group_inverse(group_ids)
    groups = int(inverse.max()) + 1 if inverse.numel() else 0
    n = torch.bincount(inverse, minlength=groups).to(torch.float64)
    rank = likelihood_rank(seq_logprob, group_ids).to(torch.float64) / n[inverse]
    r = rewards.to(torch.float64)
    shaped = r * (1.0 - beta * rank)
    k = torch.zeros(groups, dtype=torch.float64, device=r.device).index_add_(0, inverse, r)
    mean = torch.zeros_like(k).index_add_(0, inverse, shaped) / n
    centred = shaped - mean[inverse]
    var = torch.zeros_like(k).index_add_(0, inverse, centred * centred) / (n - 1).clamp_min(1)
    adv = centred / (var.sqrt()[inverse] + 1e-6)
    mixed = ((k > 0) & (k < n))[inverse]
    return torch.where(mixed, adv, torch.zeros_like(adv)).to(torch.float32) + 0.0


def entropy_shaping(token_advantages: Tensor, token_entropy: Tensor, response_mask: Tensor,
                    alpha: float = ENTROPY_ADV_ALPHA, kappa: float = ENTROPY_ADV_KAPPA) -> Tensor:
    """Cheng et al. 2506.14758: A_t <- A_t + min(alpha * H_t, |A_t| / kappa), per token. (N, T).

    H_t is the old policy's token entropy (detached: it only scales the advantage). The bonus is
    >= 0, so with kappa > 1 it never flips an advantage's sign; it is 0 where A_t = 0 and off the mask.
    """
    if token_entropy.shape != token_advantages.shape or response_mask.shape != token_advantages.shape:
        raise ValueError(f"token advantages {tuple(token_advantages.shape)}, entropy {tuple(token_entropy.shape)} and "
                         f"mask {tuple(response_mask.shape)} must all be (N, T)")
    bonus = torch.minimum(alpha * token_entropy.detach().to(token_advantages.dtype), token_advantages.abs() / kappa)
    return token_advantages + bonus * response_mask.to(token_advantages.dtype)
