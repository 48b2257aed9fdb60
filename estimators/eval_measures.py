"""Evaluation measures beyond Avg@k, pure torch: the unbiased pass@k and the area under an eval curve.

pass@k (Chen et al. 2021, "Evaluating Large Language Models Trained on Code", arXiv 2107.03374,
Sec. 2.1, the unnumbered estimator): from n samples of a prompt of which c are correct,
``pass@k = 1 - C(n - c, k) / C(n, k)``, averaged over prompts; unbiased for the probability that at
least one of k fresh samples is correct. It is computed as ``1 - prod_{i = n-c+1}^{n} (1 - k / i)``
(Chen et al.'s numerically stable form), never with factorials.

Area under the eval curve (ours, issue 24): the trapezoid area of (step, accuracy) divided by the
step span, so it is an accuracy (in [0, 1] when the accuracies are) that rewards being good early,
not only at the end; one point alone is its own area.
"""

from __future__ import annotations

import torch
from torch import Tensor


def pass_at_k(correct: Tensor, samples: int, k: int) -> float:
    """Mean over prompts of the unbiased pass@k; ``correct`` (m,) counts of correct of ``samples`` each."""
    if not 1 <= k <= samples:
        raise ValueError(f"pass@k needs 1 <= k <= samples per prompt, got k = {k} with {samples} samples")
    c = correct.to(torch.float64).reshape(-1, 1)
    if c.numel() == 0:
        raise ValueError("pass@k of no prompts is undefined")
    if bool(((c < 0) | (c > samples)).any()):
        raise ValueError(f"correct counts must lie in 0..{samples}, got {correct.min().item()}..{correct.max().item()}")
    i = torch.arange(1, samples + 1, dtype=torch.float64).unsqueeze(0)  # (1, n)
    factor = torch.where(i > samples - c, 1.0 - k / i, torch.ones_like(i))  # only i in n-c+1..n
    return float((1.0 - factor.prod(-1)).mean())


def pass_at_k_curve(correct: Tensor, samples: int, k_max: int) -> dict[int, float]:
    """``pass_at_k`` for k = 1..k_max."""
    return {k: pass_at_k(correct, samples, k) for k in range(1, k_max + 1)}


def normalized_area(steps: list[int] | Tensor, values: list[float] | Tensor) -> float:
    """Trapezoid area under (steps, values) divided by the step span (the value itself for one point)."""
    s = torch.as_tensor(steps, dtype=torch.float64)
    v = torch.as_tensor(values, dtype=torch.float64)
    if s.numel() == 0 or s.shape != v.shape:
        raise ValueError(f"need as many values as steps (>= 1), got {s.numel()} steps and {v.numel()} values")
    if s.numel() == 1:
        return float(v[0])
    if bool((s[1:] <= s[:-1]).any()):
        raise ValueError("steps must increase")
    return float(torch.trapezoid(v, s) / (s[-1] - s[0]))
