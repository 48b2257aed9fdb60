"""The task's difficulty structure: carries, the warm-up's systematic error model, the hard split.

Carries: column j >= 1 of a+b (0 = units) receives a carry when the lower j digits overflow,
``a mod 10^j + b mod 10^j >= 10^j``; the i-th carry of a sum is the i-th such column counted from
the units. A t-digit sum has at most t carries (the last one writes the leading 1).

Systematic errors (``drop_carries``, ours): a demonstrator that forgets carries, more often the more
carries it has already handled. The i-th carry is dropped with probability ``drop[min(i, len) - 1]``:
its column is written one less (mod 10), or, for the carry that writes the leading 1, that digit is
left out. Errors are the same kind on every prompt and grow with its number of carries, so on a
prompt with many carries the demonstrations' most common answer is a wrong one and the right one a
minority: the base model learns that distribution, and RL has rare successes to amplify.

The hard split (the testbed's "AIME"): held-out operand pairs (``task.is_heldout``: never in the
warm-up or the RL prompt stream) with at least ``min_carries`` carries, the kind whose
demonstrations were right least often (a product of (1 - drop) over >= 3 carries: 0.8% for the
default base's 0.35 / 0.75 / 0.95, i.e. almost never seen solved).
"""

from __future__ import annotations

import torch
from torch import Tensor

from tinyrlvr.task import EOS, PAD, Problems, sample_problems

HARD_BENCHMARK = "hard"  # the benchmark name of the hard split (metric eval/hard/accuracy)


def carry_columns(a: Tensor, b: Tensor, columns: int) -> Tensor:
    """(n, columns) bool: entry j-1 is True when column j (1..columns) of a+b receives a carry."""
    j = torch.arange(1, columns + 1)
    scale = torch.pow(10, j).unsqueeze(0)  # (1, C)
    return (a.unsqueeze(1) % scale + b.unsqueeze(1) % scale) >= scale


def carry_count(a: Tensor, b: Tensor, columns: int = 6) -> Tensor:
    """(n,) number of carries of a+b (columns 1..``columns``)."""
    return carry_columns(a, b, columns).sum(-1)


def drop_carries(answers: Tensor, problems: Problems, drop: Tensor, generator: torch.Generator) -> Tensor:
    """Demonstrations (n, R) (``task.target_responses``) with carries forgotten as the module says.

    ``drop`` (m,) float: the probability of dropping the i-th carry is ``drop[min(i, m) - 1]``.
    """
    n, length = answers.shape
    columns = length - 1  # the answer has at most length - 1 digits; column j is answer position j
    carry = carry_columns(problems.a, problems.b, columns)  # (n, C): column j at index j-1
    index = carry.long().cumsum(-1).clamp(1, drop.numel()) - 1  # which carry this is, 0-based
    dropped = carry & (torch.rand(n, columns, generator=generator) < drop.to(torch.float64)[index])
    out = answers.clone()
    col = torch.arange(1, columns + 1).unsqueeze(0)  # (1, C) answer positions 1..C
    leading = col == problems.tier.unsqueeze(1)  # the carry that writes the leading 1
    digits = out[:, 1:]
    out[:, 1:] = torch.where(dropped & ~leading, (digits - 1) % 10, digits)
    cut = (dropped & leading).any(-1)  # leading 1 left out: the end token moves one place left
    lead_pos = problems.tier[cut]
    rows = cut.nonzero().squeeze(1)
    out[rows, lead_pos] = EOS
    after = torch.arange(length).unsqueeze(0) > lead_pos.unsqueeze(1)
    out[rows] = torch.where(after, PAD, out[rows])
    return out


def sample_hard_problems(tiers: tuple[int, ...], n: int, min_carries: int, generator: torch.Generator) -> Problems:
    """``n`` held-out problems with >= ``min_carries`` carries, tiers that can have them drawn in turn."""
    eligible = [t for t in tiers if t >= min_carries]
    if not eligible:
        raise ValueError(f"no tier of {tiers} has {min_carries} carries (a t-digit sum has at most t)")
    tier_of_row = torch.tensor(eligible, dtype=torch.long)[torch.arange(n) % len(eligible)]
    out_a, out_b = torch.empty(n, dtype=torch.long), torch.empty(n, dtype=torch.long)
    for tier in eligible:
        rows = (tier_of_row == tier).nonzero().squeeze(1)
        got_a, got_b, need = [], [], rows.numel()
        while need > 0:
            draw = sample_problems(torch.full((max(8 * need, 64),), tier), generator, heldout=True)
            keep = carry_count(draw.a, draw.b) >= min_carries
            got_a.append(draw.a[keep][:need])
            got_b.append(draw.b[keep][:need])
            need -= int(got_a[-1].numel())
        out_a[rows], out_b[rows] = torch.cat(got_a), torch.cat(got_b)
    return Problems(out_a, out_b, tier_of_row)

