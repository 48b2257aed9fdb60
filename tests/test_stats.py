"""analysis.stats: seed-level estimates, paired gaps and when a gap is beyond its noise."""

from __future__ import annotations

import math
import statistics

import pytest

from analysis.stats import estimate, exceeds_noise, paired_gap, t95


def test_estimate_is_the_mean_and_its_standard_error():
    est = estimate([1.0, 2.0, 4.0])
    assert est.mean == pytest.approx(7 / 3) and est.n == 3
    assert est.se == pytest.approx(statistics.stdev([1.0, 2.0, 4.0]) / math.sqrt(3))
    assert est.half_width == pytest.approx(4.303 * est.se)  # t with 2 degrees of freedom
    assert math.isnan(estimate([5.0]).se) and estimate([]).n == 0


def test_paired_gap_uses_per_seed_differences():
    gap = paired_gap([1.0, 2.0, 3.0], [0.9, 1.9, 2.8])
    assert gap.mean == pytest.approx(0.1 + 0.1 / 3) and gap.se < 0.05
    with pytest.raises(ValueError, match="one value per seed"):
        paired_gap([1.0], [1.0, 2.0])


def test_a_gap_beyond_noise_is_judged_by_the_t_quantile_of_its_seeds():
    """2.5 standard errors over 3 seeds: beyond the old 2-SE bar, inside the 95% t interval (4.30)."""
    diffs = [0.0, 0.5, 1.0]
    gap = estimate(diffs)
    scaled = estimate([d + 2.5 * gap.se - gap.mean for d in diffs])  # same spread, mean = 2.5 SE
    assert scaled.mean == pytest.approx(2.5 * scaled.se)
    assert exceeds_noise(scaled, k=2.0) and not exceeds_noise(scaled)
    wide = estimate([d + 5.0 * gap.se - gap.mean for d in diffs])  # 5 SE > t(2) = 4.303
    assert exceeds_noise(wide) and t95(2) == pytest.approx(4.303)
    assert not exceeds_noise(estimate([3.0]))  # one seed: no spread to judge by
