"""The policy update: PPO epochs over shuffled mini-batches, one AdamW step per mini-batch.

Old log-probs are the sampler's (the tests check they equal a full forward pass), so the update
needs no extra forward pass before its first mini-batch.
"""

from __future__ import annotations

import torch
from torch import Tensor

from tinyrlvr import seeding
from tinyrlvr.loss import ppo_clip_loss
from tinyrlvr.model import Policy, response_logprobs
from tinyrlvr.rollout import RolloutBatch


def ppo_update(policy: Policy, optimizer: torch.optim.Optimizer, batch: RolloutBatch, token_advantages: Tensor,
               cfg, step: int) -> float:
    """Run ``cfg.ppo_epochs`` x ``cfg.mini_batches`` optimizer steps; return the mean clip fraction."""
    n = batch.rewards.numel()
    gen = seeding.generator(cfg.seed, step, "shuffle")
    clip_fracs = []
    for _ in range(cfg.ppo_epochs):
        order = torch.randperm(n, generator=gen).to(batch.rewards.device)
        for rows in order.chunk(cfg.mini_batches):
            logp, entropy = response_logprobs(policy, batch.prompts[rows], batch.prompt_valid[rows], batch.responses[rows],
                                              batch.response_mask[rows], cfg.temperature,
                                              with_entropy=cfg.entropy_coeff > 0)
            loss, clip_frac = ppo_clip_loss(logp, batch.old_logp[rows], token_advantages[rows], batch.response_mask[rows],
                                            cfg.clip_low, cfg.clip_high, cfg.loss_agg, cfg.max_new_tokens, entropy,
                                            cfg.entropy_coeff)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(policy.parameters(), cfg.grad_clip)
            optimizer.step()
            clip_fracs.append(clip_frac)
    return float(torch.stack(clip_fracs).mean())
