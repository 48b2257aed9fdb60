"""The evaluation protocol: one declared object the engine evaluates by (and the report can read).

Benchmarks: one per tier (``tier<t>``, Avg@``samples`` on ``prompts_per_tier`` held-out prompts)
and the hard split (``hard``, Avg@``hard_samples`` on ``hard_prompts`` held-out prompts with at
least ``hard_min_carries`` carries; ``tinyrlvr.difficulty``), all at ``temperature``, every
``every`` steps, at step 0 and at the last step. pass@k for k = 1..``pass_k`` on the hard split at
``PASS_TEMPERATURE`` from ``pass_samples`` samples per prompt at the same evaluations, so the report
finds it at whichever checkpoint it selects (the costly part: 4,096 samples for 256 prompts x 16,
about 1.3x the rest of an evaluation; benchmarks/RESULTS.md). ``eval/hard/auc``, the running
normalized area under the hard split's curve, at every evaluation. The evaluation sets are fixed (constant seeds):
every run is scored on the same prompts.
"""

from __future__ import annotations

from dataclasses import dataclass

from tinyrlvr.difficulty import HARD_BENCHMARK
from tinyrlvr.task import tier_name

PASS_TEMPERATURE = 1.0  # pass@k at the rollout temperature, as the entropy literature measures exploration


@dataclass(frozen=True)
class EvalProtocol:
    tiers: tuple[int, ...]
    prompts_per_tier: int
    samples: int  # k of Avg@k on the tiers
    temperature: float  # 0 = greedy
    every: int
    hard_prompts: int  # 0: no hard split (and no pass@k)
    hard_samples: int
    hard_min_carries: int
    pass_samples: int  # n of the unbiased pass@k estimator
    pass_k: int  # pass@1..pass@pass_k

    @classmethod
    def from_config(cls, cfg) -> "EvalProtocol":
        return cls(tuple(cfg.tiers), cfg.eval_prompts_per_tier, cfg.eval_samples, cfg.eval_temperature,
                   cfg.eval_every, cfg.eval_hard_prompts, cfg.eval_hard_samples, cfg.eval_hard_min_carries,
                   cfg.eval_pass_samples, cfg.eval_pass_k)

    @property
    def has_hard(self) -> bool:
        return self.hard_prompts > 0

    @property
    def benchmarks(self) -> tuple[str, ...]:
        """The benchmark names, easy to hard: tier1..tierN, then ``hard`` when there is a hard split."""
        return tuple(tier_name(t) for t in self.tiers) + ((HARD_BENCHMARK,) if self.has_hard else ())

    def evaluates(self, step: int, last: int) -> bool:
        return step == 0 or step % self.every == 0 or step == last

    def passes(self, step: int, last: int) -> bool:
        """pass@k is measured at every evaluation when there is a hard split."""
        return self.has_hard and self.evaluates(step, last)
