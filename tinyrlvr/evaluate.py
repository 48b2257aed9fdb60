"""Held-out evaluation: Avg@k accuracy per tier (k samples per prompt at the evaluation temperature).

The evaluation set is fixed (drawn once from the held-out split with a constant seed), so every seed
and every configuration is scored on the same problems; only the sampling randomness follows the
run's seed and step.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from common import metric_names
from estimators.diagnostics import masked_mean
from tinyrlvr import seeding
from tinyrlvr.model import Policy, response_logprobs
from tinyrlvr.sampler import generate
from tinyrlvr.task import PAD, Problems, encode_prompts, sample_problems, score, target_responses, tier_name

EVAL_SET_SEED = 20260604  # constant: the same held-out problems for every run
PROBE_SET_SEED = 20261207  # constant: the entropy probe's held-out problems (ours), apart from the eval set


def problem_set(tiers: tuple[int, ...], per_tier: int, heldout: bool, seed: int = EVAL_SET_SEED) -> Problems:
    """``per_tier`` problems of every tier, tier-major order."""
    tier_of_row = torch.tensor(tiers, dtype=torch.long).repeat_interleave(per_tier)
    return sample_problems(tier_of_row, seeding.generator(seed, 0, "eval-set"), heldout=heldout)


@torch.no_grad()
def accuracy_by_tier(policy: Policy, problems: Problems, prompt_len: int, max_new_tokens: int, k: int,
                     temperature: float, generator: torch.Generator) -> dict[int, float]:
    """Avg@k per tier: mean exact-match reward over the tier's prompts and k samples each."""
    device = next(policy.parameters()).device
    ids, valid = encode_prompts(problems, prompt_len)
    samples = generate(policy, ids.to(device), valid.to(device), k, max_new_tokens, temperature, 1.0, generator)
    rewards = score(samples.responses.cpu(), target_responses(problems, max_new_tokens).repeat_interleave(k, dim=0))
    tier_of_row = problems.tier.repeat_interleave(k)
    return {int(t): float(rewards[tier_of_row == t].mean()) for t in torch.unique(problems.tier).tolist()}


def eval_metrics(policy: Policy, cfg, step: int, problems: Problems) -> dict[str, float]:
    """``eval/<tier>/accuracy`` for every tier and ``eval/mean_accuracy`` (unweighted over tiers)."""
    gen = seeding.generator(cfg.seed, step, "eval", cfg.device)
    acc = accuracy_by_tier(policy, problems, cfg.max_prompt_len, cfg.max_new_tokens, cfg.eval_samples,
                           cfg.eval_temperature, gen)
    metrics = {metric_names.eval_accuracy(tier_name(t)): a for t, a in acc.items()}
    metrics[metric_names.EVAL_MEAN_ACCURACY] = sum(acc.values()) / len(acc)
    return metrics


@dataclass(frozen=True)
class EntropyProbeSet:
    """Fixed held-out prompts with their correct answers: the same tokens for every run and method."""

    prompts: torch.Tensor  # (B, P) left-padded
    prompt_valid: torch.Tensor  # (B, P) bool
    responses: torch.Tensor  # (B, R) the correct answer, PAD after its end token
    response_mask: torch.Tensor  # (B, R) bool


def entropy_probe_set(cfg) -> EntropyProbeSet:
    """``eval_prompts_per_tier`` held-out problems of every tier (seed ``PROBE_SET_SEED``), answers attached."""
    problems = problem_set(cfg.tiers, cfg.eval_prompts_per_tier, heldout=True, seed=PROBE_SET_SEED)
    ids, valid = encode_prompts(problems, cfg.max_prompt_len)
    targets = target_responses(problems, cfg.max_new_tokens)
    return EntropyProbeSet(ids.to(cfg.device), valid.to(cfg.device), targets.to(cfg.device),
                           (targets != PAD).to(cfg.device))


@torch.no_grad()
def probe_entropy(policy: Policy, probe: EntropyProbeSet, temperature: float) -> float:
    """``train/entropy_probe``: token-mean entropy (eq 7) along the correct answers, teacher-forced."""
    _, entropy = response_logprobs(policy, probe.prompts, probe.prompt_valid, probe.responses, probe.response_mask,
                                   temperature, with_entropy=True)
    return masked_mean(entropy, probe.response_mask)
