"""The policy update: PPO epochs over shuffled mini-batches, one AdamW step per mini-batch.

Old log-probs are the sampler's (the tests check they equal a full forward pass), so the update
needs no extra forward pass before its first mini-batch. ``cfg.policy_loss`` picks the objective:
PPO-clip (``loss.ppo_clip_loss``) or Cui et al.'s Clip-Cov / KL-Cov (``policy_losses``, verl's
loss modes); every mode reports the side-split PPO clip fractions of the same tokens.
"""

from __future__ import annotations

import torch
from torch import Tensor

from tinyrlvr import seeding
from tinyrlvr.loss import aggregate, ppo_clip_loss
from tinyrlvr.policy_losses import clip_cov_loss, clip_sides, kl_cov_loss
from tinyrlvr.model import Policy, response_logprobs
from tinyrlvr.rollout import RolloutBatch


def ppo_update(policy: Policy, optimizer: torch.optim.Optimizer, batch: RolloutBatch, token_advantages: Tensor,
               cfg, step: int, token_shaping=None) -> dict[str, float]:
    """Run ``cfg.ppo_epochs`` x ``cfg.mini_batches`` optimizer steps; return mean clip fractions.

    ``token_shaping`` (an estimator's, e.g. Cheng et al.'s entropy term): applied to each mini-batch's
    token advantages with the entropy of the policy being updated, from this forward pass, detached
    (Cheng et al. 2506.14758), not the sampler's.

    Keys: ``clip_frac`` (the mode's own: PPO's clipped share, Clip-Cov's detached share, KL-Cov's
    penalised share, as verl reports them), ``upper`` and ``lower`` (PPO's ratio clip per side).
    """
    n = batch.rewards.numel()
    gen = seeding.generator(cfg.seed, step, "shuffle")
    cov_gen = seeding.generator(cfg.seed, step, "clip-cov")  # Clip-Cov's random token selection
    clip_fracs, uppers, lowers = [], [], []
    for _ in range(cfg.ppo_epochs):
        order = torch.randperm(n, generator=gen).to(batch.rewards.device)
        for rows in order.chunk(cfg.mini_batches):
            logp, entropy = response_logprobs(policy, batch.prompts[rows], batch.prompt_valid[rows], batch.responses[rows],
                                              batch.response_mask[rows], cfg.temperature,
                                              with_entropy=cfg.entropy_coeff > 0 or token_shaping is not None)
            old, adv, mask = batch.old_logp[rows], token_advantages[rows], batch.response_mask[rows]
            if token_shaping is not None:
                adv = token_shaping(adv, entropy.detach(), mask)
            if cfg.policy_loss == "vanilla":
                loss, clip_frac = ppo_clip_loss(logp, old, adv, mask, cfg.clip_low, cfg.clip_high, cfg.loss_agg,
                                                cfg.max_new_tokens, entropy, cfg.entropy_coeff)
            else:
                if cfg.policy_loss == "clip_cov":
                    loss, clip_frac = clip_cov_loss(logp, old, adv, mask, cfg.clip_low, cfg.clip_high, cfg.loss_agg,
                                                    cfg.max_new_tokens, generator=cov_gen)
                else:
                    loss, clip_frac = kl_cov_loss(logp, old, adv, mask, cfg.loss_agg, cfg.max_new_tokens)
                if cfg.entropy_coeff:  # verl subtracts the bonus the same way for every loss mode
                    loss = loss - cfg.entropy_coeff * aggregate(entropy, mask, cfg.loss_agg, cfg.max_new_tokens)
            upper, lower = clip_sides(torch.exp(logp.detach() - old), adv, mask, cfg.clip_low, cfg.clip_high)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(policy.parameters(), cfg.grad_clip)
            optimizer.step()
            clip_fracs.append(clip_frac)
            uppers.append(upper)
            lowers.append(lower)
    return {"clip_frac": float(torch.stack(clip_fracs).mean()), "upper": float(torch.stack(uppers).mean()),
            "lower": float(torch.stack(lowers).mean())}
