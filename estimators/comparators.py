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
  Sharpening", arXiv 2506.02355: r_i <- r_i (1 - beta * rank_i / G) over the correct rollouts of a
  group ranked by old-policy likelihood, least likely first (rank 0), beta = 0.25, then GRPO.
- Entropy-based advantage: Cheng et al., "Reasoning with Exploration: An Entropy Perspective",
  arXiv 2506.14758: A_t <- A_t + min(alpha * H_t (detached), |A_t| / kappa).
"""

from __future__ import annotations

import torch
from torch import Tensor

from estimators.advantages import _safe_div, check_binary_rewards, group_inverse

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


def likelihood_rank(seq_logprob: Tensor, correct: Tensor, group_ids: Tensor) -> Tensor:
    """Rank of each correct rollout among its group's correct ones by ``seq_logprob``, ascending.

    0 is the least likely correct rollout; ties keep rollout order (stable sorts). Wrong rollouts get
    ranks after the correct ones (never read). (N,) long. Two stable sorts, no loop over groups.
    """
    inverse = group_inverse(group_ids)
    key = torch.where(correct, seq_logprob.to(torch.float64), torch.full_like(seq_logprob, float("inf"), dtype=torch.float64))
    by_key = torch.argsort(key, stable=True)  # (N,)
    order = by_key[torch.argsort(inverse[by_key], stable=True)]  # by group, then by key
    sizes = torch.bincount(inverse)
    starts = torch.cumsum(sizes, 0) - sizes  # first sorted position of each group
    position = torch.empty_like(order)
    position[order] = torch.arange(order.numel(), device=order.device)
    return position - starts[inverse]


def grpo_normalise(rewards: Tensor, group_ids: Tensor) -> Tensor:
    """GRPO's group normalisation of real-valued rewards: (r - mean_g) / std_g, population std.

    On binary rewards this is exactly ``advantages.grpo`` (eq 4); groups with std 0 get 0.
    """
    inverse = group_inverse(group_ids)
    num_groups = int(inverse.max()) + 1 if inverse.numel() else 0
    r = rewards.to(torch.float64)
    n = torch.bincount(inverse, minlength=num_groups).to(torch.float64)
    mean = torch.zeros(num_groups, dtype=torch.float64, device=r.device).index_add_(0, inverse, r) / n
    centred = r - mean[inverse]
    var = torch.zeros_like(mean).index_add_(0, inverse, centred * centred) / n
    std = var.sqrt()[inverse]
    return torch.where(std > 0, _safe_div(centred, std), torch.zeros_like(centred)).to(torch.float32) + 0.0


def unlikeliness(rewards: Tensor, group_ids: Tensor, alpha_pos: float = 0.0, alpha_neg: float = 0.0, *,
                 seq_logprob: Tensor | None = None, beta: float = UNLIKELINESS_BETA) -> Tensor:
    """Unlikeliness reward (He et al. 2506.02355), then GRPO normalisation.

    r_i <- r_i * (1 - beta * rank_i / G), rank_i the rank of correct rollout i among its group's
    correct rollouts by old-policy mean token log-prob ``seq_logprob`` (N,), least likely first
    (rank 0 keeps reward 1); G the group size. Then A = (r - mean_g) / std_g (population std, as
    ``advantages.grpo``). Unlike binary GRPO, an all-correct group is not uniform any more.
    """
    check_binary_rewards(rewards, group_ids)
    if seq_logprob is None:
        raise ValueError("the unlikeliness estimator needs seq_logprob (each rollout's mean old log-prob)")
    if seq_logprob.shape != rewards.shape:
        raise ValueError(f"seq_logprob {tuple(seq_logprob.shape)} must have one value per rollout like rewards "
                         f"{tuple(rewards.shape)}")
    correct = rewards.to(torch.bool)
    rank = likelihood_rank(seq_logprob, correct, group_ids).to(torch.float64)
    inverse = group_inverse(group_ids)
    size = torch.bincount(inverse).to(torch.float64)[inverse]  # G of each rollout's group
    shaped = rewards.to(torch.float64) * (1.0 - beta * rank / size)
    return grpo_normalise(shaped, group_ids)


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
