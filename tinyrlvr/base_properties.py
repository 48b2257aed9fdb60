"""What a base model offers RL, measured on its own rollouts (issue 24's properties of a testbed).

- the histogram of k (correct of G) over the groups of the RL prompt stream at step 0;
- kappa-hat (App E) on those rollouts: > 0 when correct rollouts are the likelier ones where they
  are the majority and the less likely ones where they are the minority (the paper's regime);
- Avg@k on the evaluation protocol's benchmarks (tiers and the hard split) at the eval temperature.

The RL stream is drawn exactly as a run of seed s draws its step-1 prompts (``rollout.collect``), so
"held-out seeds" mean seeds never used while the base was designed.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from estimators import diagnostics
from tinyrlvr.evaluate import Evaluator
from tinyrlvr.model import Policy
from tinyrlvr.rollout import collect


@dataclass(frozen=True)
class BaseProperties:
    k_histogram: tuple[float, ...]  # fraction of groups with k = 0..G correct
    kappa: float  # mean over the seeds' batches of kappa-hat
    accuracy: dict[str, float]  # eval metrics at step 0 (eval/<benchmark>/accuracy, pass@k, ...)

    def share(self, lo: int, hi: int) -> float:
        """Fraction of groups with lo <= k <= hi."""
        return float(sum(self.k_histogram[lo:hi + 1]))


@torch.no_grad()
def measure(policy: Policy, cfg, seeds: tuple[int, ...], steps_per_seed: int = 1, with_eval: bool = True) -> BaseProperties:
    """Rollouts of the first ``steps_per_seed`` steps' prompts of each seed, from the same weights."""
    counts = torch.zeros(cfg.group_size + 1)
    kappas = []
    for seed in seeds:
        run = cfg.replace(seed=seed)
        for step in range(1, steps_per_seed + 1):
            batch = collect(policy, run, step)
            k = batch.rewards.view(-1, cfg.group_size).sum(-1).long()
            counts += torch.bincount(k, minlength=cfg.group_size + 1).float()
            c = diagnostics.sequence_mean_logprob(batch.old_logp, batch.response_mask)
            kappas.append(diagnostics.kappa(batch.rewards, batch.group_ids, c))
    accuracy = Evaluator(cfg.replace(seed=seeds[0])).metrics(policy, 0) if with_eval else {}
    hist = tuple(float(x) for x in counts / counts.sum())
    return BaseProperties(hist, float(torch.tensor(kappas).nanmean()), accuracy)


def describe(props: BaseProperties) -> str:
    hist = " ".join(f"{x:.2f}" for x in props.k_histogram)
    acc = ", ".join(f"{k.split('/')[1]} {v:.3f}" for k, v in props.accuracy.items() if k.endswith("/accuracy"))
    return (f"k histogram [{hist}] (k=0 {props.share(0, 0):.2f}, 1-3 {props.share(1, 3):.2f}, "
            f"4-7 {props.share(4, 7):.2f}); kappa-hat {props.kappa:+.4f}; Avg@k {acc}")
