"""analysis.aggregate on small hand-computed arrays: EMA, seed mean + bootstrap interval,
checkpoint selection, kappa-bar over the first steps (App E)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from analysis import aggregate as agg


def test_ema_hand_computed():
    # s0 = 0; s1 = .5*0 + .5*1 = .5; s2 = .5*.5 + .5*1 = .75; s3 = .5*.75 + .5*0 = .375
    np.testing.assert_allclose(agg.ema(np.array([0.0, 1.0, 1.0, 0.0]), 0.5), [0.0, 0.5, 0.75, 0.375])
    # factor 0.8: s1 = .8*2 + .2*4 = 2.4
    np.testing.assert_allclose(agg.ema(np.array([2.0, 4.0]), 0.8), [2.0, 2.4])
    np.testing.assert_allclose(agg.ema(np.array([3.0, 1.0, 2.0]), 0.0), [3.0, 1.0, 2.0])


def test_ema_skips_nan_and_rejects_bad_factor():
    out = agg.ema(np.array([np.nan, 2.0, np.nan, 4.0]), 0.5)
    assert math.isnan(out[0]) and math.isnan(out[2])
    np.testing.assert_allclose(out[[1, 3]], [2.0, 3.0])  # 0.5*2 + 0.5*4
    for bad in (1.0, -0.1):
        with pytest.raises(ValueError, match=r"EMA factor must be in \[0, 1\)"):
            agg.ema(np.ones(3), bad)


def test_bootstrap_two_seeds_hand_computed():
    # Resampling {0, 1} twice: means 0 (p=1/4), 0.5 (p=1/2), 1 (p=1/4): the 95% interval is [0, 1].
    interval = agg.bootstrap_mean(np.array([0.0, 1.0]), n_boot=4000, seed=0)
    assert interval.point == 0.5 and interval.n == 2
    assert (interval.low, interval.high) == (0.0, 1.0)
    # At 40% confidence the 30% and 70% quantiles of {0, .5, .5, 1} both sit at 0.5.
    narrow = agg.bootstrap_mean(np.array([0.0, 1.0]), confidence=0.4, n_boot=4000, seed=0)
    assert (narrow.low, narrow.high) == (0.5, 0.5)


def test_bootstrap_matrix_per_step_with_nan_single_and_constant_columns():
    samples = np.array([[1.0, 2.0, 5.0, np.nan],
                        [3.0, 2.0, np.nan, np.nan],
                        [5.0, 2.0, np.nan, np.nan]])  # (S=3 seeds, T=4 steps)
    interval = agg.bootstrap_mean(samples, seed=1)
    np.testing.assert_allclose(interval.point[:3], [3.0, 2.0, 5.0])
    assert math.isnan(interval.point[3])
    np.testing.assert_array_equal(interval.n, [3, 3, 1, 0])
    assert 1.0 <= interval.low[0] < 3.0 < interval.high[0] <= 5.0
    assert interval.low[1] == interval.high[1] == 2.0  # constant column: no width
    assert interval.low[2] == interval.high[2] == 5.0  # one seed: the interval is the point
    again = agg.bootstrap_mean(samples, seed=1)
    np.testing.assert_array_equal(interval.low, again.low)  # seeded: reproducible


def test_bootstrap_rejects_bad_input():
    with pytest.raises(ValueError, match="at least one seed"):
        agg.bootstrap_mean(np.zeros((0,)))
    with pytest.raises(ValueError, match="confidence"):
        agg.bootstrap_mean(np.ones(3), confidence=1.0)


def test_select_checkpoint_best_last_ties_and_nan():
    steps = np.array([20, 0, 10, 30])
    scores = np.array([0.7, 0.2, 0.7, np.nan])
    assert agg.select_checkpoint(steps, scores, "best") == 20  # the later of the tied peaks
    assert agg.select_checkpoint(steps, scores, "last") == 20  # last step with a score
    with pytest.raises(ValueError, match="one of best, last"):
        agg.select_checkpoint(steps, scores, "median")
    with pytest.raises(ValueError, match="no evaluated checkpoint"):
        agg.select_checkpoint(np.array([1]), np.array([np.nan]))


def test_select_checkpoint_never_returns_step_0_for_a_trained_run():
    # the base model scores best (a solved easy benchmark): a trained run still reports a trained step
    steps, scores = np.array([0, 10, 20]), np.array([1.0, 0.9, 0.95])
    assert agg.select_checkpoint(steps, scores, "best") == 20
    assert agg.select_checkpoint(steps, scores, "last") == 20
    with pytest.raises(ValueError, match="after step 0"):
        agg.select_checkpoint(np.array([0]), np.array([1.0]))


def test_kappa_bar_first_steps_skips_nan_and_ignores_later_steps():
    steps = np.arange(1, 26)
    values = np.concatenate([np.arange(1, 21, dtype=float), np.full(5, 100.0)])
    assert agg.first_steps_mean(steps, values, 20) == pytest.approx(10.5)  # mean of 1..20
    values[2] = np.nan  # step 3 had no mixed group: (210 - 3) / 19
    assert agg.first_steps_mean(steps, values, 20) == pytest.approx(207 / 19)
    shuffled = np.random.default_rng(0).permutation(25)
    assert agg.first_steps_mean(steps[shuffled], values[shuffled], 20) == pytest.approx(207 / 19)
    assert math.isnan(agg.first_steps_mean(np.array([1, 2]), np.array([np.nan, np.nan]), 20))
