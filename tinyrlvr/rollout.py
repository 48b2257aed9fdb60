"""One step's rollouts: draw prompts (tiers round-robin), sample G responses each, score them.

The prompt stream and the sampler randomness are named streams of (seed, step) (``seeding``): the
same seed gives the same prompts in every configuration. Trailing response columns that no row
uses are trimmed, so the update never runs on pure padding.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from tinyrlvr import seeding
from tinyrlvr.model import Policy
from tinyrlvr.sampler import expand_prompts, generate
from tinyrlvr.task import Problems, encode_prompts, sample_problems, score, target_responses


@dataclass
class RolloutBatch:
    problems: Problems  # B prompts
    prompts: Tensor  # (N, P) left-padded, N = B * G, a prompt's G rows adjacent
    prompt_valid: Tensor  # (N, P) bool
    responses: Tensor  # (N, R) long
    response_mask: Tensor  # (N, R) bool
    old_logp: Tensor  # (N, R) sampler log-probs (pi_old)
    entropy: Tensor  # (N, R) sampler entropies
    rewards: Tensor  # (N,) float 0/1
    group_ids: Tensor  # (N,) long, the prompt index


def step_problems(cfg, step: int) -> Problems:
    """The B training prompts of ``step``: tier of prompt i is tiers[i % len(tiers)]."""
    tiers = torch.tensor(cfg.tiers, dtype=torch.long)
    tier_of_row = tiers[torch.arange(cfg.prompts_per_step) % len(cfg.tiers)]
    return sample_problems(tier_of_row, seeding.generator(cfg.seed, step, "prompts"), heldout=False)


def collect(policy: Policy, cfg, step: int) -> RolloutBatch:
    problems = step_problems(cfg, step)
    ids, valid = encode_prompts(problems, cfg.max_prompt_len)
    ids, valid = ids.to(cfg.device), valid.to(cfg.device)
    gen = seeding.generator(cfg.seed, step, "rollouts", cfg.device)
    s = generate(policy, ids, valid, cfg.group_size, cfg.max_new_tokens, cfg.temperature, cfg.top_p, gen)
    targets = target_responses(problems, cfg.max_new_tokens).repeat_interleave(cfg.group_size, dim=0)
    rewards = score(s.responses.cpu(), targets)
    used = int(s.response_mask.any(0).nonzero().max()) + 1  # longest response in the batch
    prompts, prompt_valid = expand_prompts(ids, valid, cfg.group_size)
    return RolloutBatch(
        problems=problems, prompts=prompts, prompt_valid=prompt_valid,
        responses=s.responses[:, :used], response_mask=s.response_mask[:, :used],
        old_logp=s.logprobs[:, :used], entropy=s.entropies[:, :used],
        rewards=rewards.to(cfg.device),
        group_ids=torch.arange(len(problems), device=cfg.device).repeat_interleave(cfg.group_size),
    )
