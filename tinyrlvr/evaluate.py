"""Held-out evaluation by the declared protocol (``tinyrlvr.protocol``): Avg@k per tier, the hard
split's Avg@k, pass@k on the hard split, and the running area under the hard split's curve.

The evaluation sets are fixed (drawn once from the held-out split with constant seeds), so every seed
and every configuration is scored on the same problems; only the sampling randomness follows the
run's seed and step.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from common import metric_names
from estimators.diagnostics import masked_mean
from estimators.eval_measures import normalized_area, pass_at_k_curve
from tinyrlvr import seeding
from tinyrlvr.difficulty import HARD_BENCHMARK, sample_hard_problems
from tinyrlvr.model import Policy, response_logprobs
from tinyrlvr.protocol import PASS_TEMPERATURE, EvalProtocol
from tinyrlvr.sampler import generate
from tinyrlvr.task import PAD, Problems, encode_prompts, sample_problems, score, target_responses, tier_name

EVAL_SET_SEED = 20260604  # constant: the same held-out problems for every run
HARD_SET_SEED = 20261207  # constant, its own stream: adding the hard split left the tier sets as they were
PROBE_SET_SEED = 20261207  # constant: the entropy probe's held-out problems (ours), apart from the eval set


def problem_set(tiers: tuple[int, ...], per_tier: int, heldout: bool, seed: int = EVAL_SET_SEED) -> Problems:
    """``per_tier`` problems of every tier, tier-major order."""
    tier_of_row = torch.tensor(tiers, dtype=torch.long).repeat_interleave(per_tier)
    return sample_problems(tier_of_row, seeding.generator(seed, 0, "eval-set"), heldout=heldout)


def hard_set(protocol: EvalProtocol) -> Problems | None:
    if not protocol.has_hard:
        return None
    return sample_hard_problems(protocol.tiers, protocol.hard_prompts, protocol.hard_min_carries,
                                seeding.generator(HARD_SET_SEED, 0, "eval-set"))


@torch.no_grad()
def correct_counts(policy: Policy, problems: Problems, prompt_len: int, max_new_tokens: int, k: int,
                   temperature: float, generator: torch.Generator) -> torch.Tensor:
    """(n,) number of correct of ``k`` samples per prompt."""
    device = next(policy.parameters()).device
    ids, valid = encode_prompts(problems, prompt_len)
    samples = generate(policy, ids.to(device), valid.to(device), k, max_new_tokens, temperature, 1.0, generator)
    rewards = score(samples.responses.cpu(), target_responses(problems, max_new_tokens).repeat_interleave(k, dim=0))
    return rewards.view(-1, k).sum(-1)


def accuracy_by_tier(policy: Policy, problems: Problems, prompt_len: int, max_new_tokens: int, k: int,
                     temperature: float, generator: torch.Generator) -> dict[int, float]:
    """Avg@k per tier: mean exact-match reward over the tier's prompts and k samples each."""
    correct = correct_counts(policy, problems, prompt_len, max_new_tokens, k, temperature, generator)
    return {int(t): float(correct[problems.tier == t].sum() / (k * (problems.tier == t).sum()))
            for t in torch.unique(problems.tier).tolist()}


class Evaluator:
    """Evaluates one run by its protocol; keeps the hard split's curve for its running area."""

    def __init__(self, cfg, curve: list[tuple[int, float]] | None = None):
        self.cfg = cfg
        self.protocol = EvalProtocol.from_config(cfg)
        self.tier_set = problem_set(self.protocol.tiers, self.protocol.prompts_per_tier, heldout=True)
        self.hard = hard_set(self.protocol)
        self.curve = list(curve or [])  # (step, eval/hard/accuracy): travels in the run's checkpoint

    def metrics(self, policy: Policy, step: int) -> dict[str, float]:
        """``eval/<tier>/accuracy``, ``eval/mean_accuracy`` (unweighted over the tiers, not the hard
        split), and with a hard split ``eval/hard/accuracy`` (and its ``accuracy_se``), ``eval/hard/auc`` and, at the protocol's
        evaluation steps, ``eval/hard/pass_at_<k>``."""
        cfg, p = self.cfg, self.protocol
        gen = seeding.generator(cfg.seed, step, "eval", cfg.device)
        acc = accuracy_by_tier(policy, self.tier_set, cfg.max_prompt_len, cfg.max_new_tokens, p.samples,
                               p.temperature, gen)
        metrics = {metric_names.eval_accuracy(tier_name(t)): a for t, a in acc.items()}
        metrics[metric_names.EVAL_MEAN_ACCURACY] = sum(acc.values()) / len(acc)
        if self.hard is None:
            return metrics
        gen = seeding.generator(cfg.seed, step, "eval-hard", cfg.device)
        correct = correct_counts(policy, self.hard, cfg.max_prompt_len, cfg.max_new_tokens, p.hard_samples,
                                 p.temperature, gen)
        per_prompt = correct.double() / p.hard_samples
        hard_acc = float(per_prompt.mean())
        metrics[metric_names.eval_accuracy(HARD_BENCHMARK)] = hard_acc
        # the evaluation's own standard error (prompts and samples both random): sd over prompts / sqrt(n)
        metrics[metric_names.eval_accuracy_se(HARD_BENCHMARK)] = float(per_prompt.std() / per_prompt.numel() ** 0.5)
        self.curve = [(s, a) for s, a in self.curve if s < step] + [(step, hard_acc)]
        metrics[metric_names.eval_auc(HARD_BENCHMARK)] = normalized_area(*zip(*self.curve))
        if p.passes(step, cfg.steps):
            gen = seeding.generator(cfg.seed, step, "eval-pass", cfg.device)
            correct = correct_counts(policy, self.hard, cfg.max_prompt_len, cfg.max_new_tokens, p.pass_samples,
                                     PASS_TEMPERATURE, gen)
            for k, value in pass_at_k_curve(correct, p.pass_samples, p.pass_k).items():
                metrics[metric_names.eval_pass_at_k(HARD_BENCHMARK, k)] = value
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
