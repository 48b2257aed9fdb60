"""Diagnostics on small hand-computed cases: solve fractions, advantage mass, kappa (spec section 3,
App E), token entropy (eq 7), Proposition 2 pressure (eqs 9-11)."""

from __future__ import annotations

import math

import pytest
import torch

from estimators import diagnostics as diag


def test_solve_fractions_count_groups_not_rollouts():
    # groups: 7 -> all wrong (size 3), 2 -> all right (size 1), 9 -> mixed, 4 -> all wrong (size 2)
    rewards = torch.tensor([0.0, 0, 0, 1, 1, 0, 0, 0])
    ids = torch.tensor([7, 7, 7, 2, 9, 9, 4, 4])
    assert diag.solve_fractions(rewards, ids) == (0.5, 0.25)
    assert diag.solve_fractions(torch.zeros(0), torch.zeros(0, dtype=torch.long)) == (0.0, 0.0)


def test_advantage_mass_per_channel():
    rewards = torch.tensor([1.0, 0.0, 0.0, 1.0])
    adv = torch.tensor([2.0, -0.5, -1.5, 0.0])
    assert diag.advantage_mass(rewards, adv) == (0.5, 0.5)  # (2+0)/4, (0.5+1.5)/4
    with pytest.raises(ValueError, match="must match"):
        diag.advantage_mass(rewards, adv[:3])


def test_kappa_by_hand_two_mixed_groups():
    # group 0: p = 1/4, c = [-1 | -2, -3, -4]  -> Delta = -1 - (-3) = 2
    # group 1: p = 2/3, c = [-0.5, -1.0 | -2.0] -> Delta = -0.75 - (-2) = 1.25
    # group 2: all correct -> dropped (App E)
    rewards = torch.tensor([1.0, 0, 0, 0, 1, 1, 0, 1, 1])
    ids = torch.tensor([0, 0, 0, 0, 1, 1, 1, 2, 2])
    c = torch.tensor([-1.0, -2, -3, -4, -0.5, -1.0, -2.0, -9.0, -9.0])
    term0 = 0.25 * 0.75 * 2.0 * math.log(0.25 / 0.75)
    term1 = (2 / 3) * (1 / 3) * 1.25 * math.log((2 / 3) / (1 / 3))
    assert diag.kappa(rewards, ids, c) == pytest.approx((term0 + term1) / 2, rel=1e-12)


def test_kappa_sign_and_undefined_cases():
    # correct rollouts more confident, on a hard prompt (p < 1/2): log-odds < 0 -> kappa < 0
    assert diag.kappa(torch.tensor([1.0, 0, 0]), torch.tensor([5, 5, 5]), torch.tensor([-0.1, -1.0, -1.0])) < 0
    assert diag.kappa(torch.tensor([1.0, 1, 0, 1]), torch.tensor([5, 5, 5, 5]), torch.tensor([-0.1, -0.1, -1.0, -0.1])) > 0
    assert math.isnan(diag.kappa(torch.tensor([1.0, 1, 0, 0]), torch.tensor([1, 1, 2, 2]), torch.zeros(4)))
    with pytest.raises(ValueError, match="one value per rollout"):
        diag.kappa(torch.tensor([1.0, 0]), torch.tensor([0, 0]), torch.zeros(2, 3))


def test_sequence_mean_logprob_is_length_normalized():
    logp = torch.tensor([[-1.0, -3.0, -100.0], [-2.0, -2.0, -2.0], [-5.0, -5.0, -5.0]])
    mask = torch.tensor([[1, 1, 0], [1, 1, 1], [0, 0, 0]])
    assert diag.sequence_mean_logprob(logp, mask).tolist() == [-2.0, -2.0, 0.0]


def test_token_entropy_uniform_and_peaked_and_masked():
    vocab = 37
    logits = torch.zeros(2, 3, vocab)
    assert torch.allclose(diag.token_entropy(logits), torch.full((2, 3), math.log(vocab)))
    peaked = torch.full((vocab,), -1e4)
    peaked[0] = 0.0
    assert float(diag.token_entropy(peaked)) == pytest.approx(0.0, abs=1e-6)
    two = torch.tensor([0.0, 0.0, float("-inf"), float("-inf")])  # masked vocabulary entries
    assert float(diag.token_entropy(two)) == pytest.approx(math.log(2))
    values = torch.tensor([[1.0, 2.0, 100.0], [3.0, 100.0, 100.0]])
    assert diag.masked_mean(values, torch.tensor([[1, 1, 0], [1, 0, 0]])) == pytest.approx(2.0)
    assert diag.masked_mean(values, torch.zeros(2, 3)) == 0.0


def test_pressure_equations_9_10():
    p = torch.tensor([0.1, 0.25, 0.5, 0.8], dtype=torch.float64)
    a_pos, a_neg = 0.9, 0.4
    assert torch.allclose(diag.pressure_pos(p, a_pos), p * ((1 - p) / p) ** a_pos)
    assert torch.allclose(diag.pressure_neg(p, a_neg), (1 - p) * (p / (1 - p)) ** a_neg)
    # endpoints follow 0**0 = 1: alpha = 0 gives W_pos = p and W_neg = 1 - p exactly
    ends = torch.tensor([0.0, 1.0], dtype=torch.float64)
    assert diag.pressure_pos(ends, 0.0).tolist() == [0.0, 1.0]
    assert diag.pressure_neg(ends, 0.0).tolist() == [1.0, 0.0]


@pytest.mark.parametrize("a_pos, a_neg", [(0.9, 0.4), (0.5, 0.5), (0.2, 0.75)])
def test_pressure_peaks_eq11_are_the_argmax(a_pos, a_neg):
    pos, neg = diag.pressure_peaks(a_pos, a_neg)
    assert pos == pytest.approx(1 - a_pos) and neg == pytest.approx(a_neg)
    grid = torch.linspace(0.001, 0.999, 999, dtype=torch.float64)
    assert float(grid[diag.pressure_pos(grid, a_pos).argmax()]) == pytest.approx(pos, abs=1e-3)
    assert float(grid[diag.pressure_neg(grid, a_neg).argmax()]) == pytest.approx(neg, abs=1e-3)


@pytest.mark.parametrize("a_pos, a_neg", [(0.0, 0.0), (1.0, 1.0), (1.5, 0.0)])
def test_pressure_peaks_on_the_boundary_are_none(a_pos, a_neg):
    assert diag.pressure_peaks(a_pos, a_neg) == (None, None)
