"""Uncertainty over seeds: point estimates with standard errors and intervals, and paired gaps.

Pure functions over plain sequences (one value per seed), in the spirit of rliable: the report and
the benchmarks compute numbers here and only draw them elsewhere. Seeds are paired across
configurations (common random numbers: the same seed gives every configuration the same prompts
and sampler draws), so a gap between two configurations is estimated from per-seed differences,
whose spread is far smaller than either configuration's own.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Sequence

# Two-sided 95% Student-t quantiles for n - 1 degrees of freedom (n seeds); beyond 30, the normal's.
_T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262,
        10: 2.228, 12: 2.179, 15: 2.131, 20: 2.086, 30: 2.042}


def t95(dof: int) -> float:
    """The 97.5% quantile of Student's t with ``dof`` degrees of freedom (table, rounded down)."""
    if dof < 1:
        return math.nan
    known = [d for d in _T95 if d <= dof]
    return _T95[max(known)] if dof <= 30 else 1.96


@dataclass(frozen=True)
class Estimate:
    """Mean over seeds, its standard error and a 95% t interval (NaN spread for a single seed)."""

    mean: float
    se: float
    n: int

    @property
    def half_width(self) -> float:
        return t95(self.n - 1) * self.se if self.n > 1 else math.nan

    @property
    def low(self) -> float:
        return self.mean - self.half_width

    @property
    def high(self) -> float:
        return self.mean + self.half_width

    def text(self, digits: int = 3) -> str:
        """"0.512 ± 0.004" (the 95% half-width), or just the mean for one seed."""
        if self.n < 2 or math.isnan(self.se):
            return f"{self.mean:.{digits}f}"
        return f"{self.mean:.{digits}f} ± {self.half_width:.{digits}f}"


def estimate(values: Sequence[float]) -> Estimate:
    """Mean, standard error (sample sd / sqrt(n)) of the finite values; NaN values are dropped."""
    xs = [float(v) for v in values if v is not None and not math.isnan(float(v))]
    if not xs:
        return Estimate(math.nan, math.nan, 0)
    se = statistics.stdev(xs) / math.sqrt(len(xs)) if len(xs) > 1 else math.nan
    return Estimate(statistics.fmean(xs), se, len(xs))


def paired_gap(a: Sequence[float], b: Sequence[float]) -> Estimate:
    """The gap a - b from per-seed differences (a[i] and b[i] share seed i)."""
    if len(a) != len(b):
        raise ValueError(f"paired_gap needs one value per seed on both sides, got {len(a)} and {len(b)}")
    return estimate([x - y for x, y in zip(a, b)])


def exceeds_noise(gap: Estimate, k: float | None = None) -> bool:
    """True when |gap| > k standard errors (False when there is no spread to judge by). ``k`` defaults
    to the 95% Student-t quantile for the gap's seeds (its t interval excludes 0): with few seeds two
    standard errors are a narrower interval than they look (~82% at n = 3, ~88% at n = 5)."""
    if gap.n < 2 or math.isnan(gap.se):
        return False
    return abs(gap.mean) > (t95(gap.n - 1) if k is None else k) * gap.se
