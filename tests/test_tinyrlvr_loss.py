"""tinyrlvr.loss: eq 12 (PPO clip, clip-higher, entropy bonus) against a hand computation."""

import math

import pytest
import torch

from tinyrlvr.loss import ppo_clip_loss

# Two sequences: the first has 2 tokens, the second 3; one padded slot.
OLD = torch.log(torch.tensor([[0.5, 0.5, 0.5], [0.5, 0.5, 0.5]]))
RATIOS = torch.tensor([[1.5, 0.7, 1.0], [1.1, 0.6, 1.25]])
NEW = OLD + torch.log(RATIOS)
ADV = torch.tensor([[2.0, 2.0, 2.0], [-1.0, -1.0, -1.0]])
MASK = torch.tensor([[True, True, False], [True, True, True]])


def hand_token_losses(eps_low, eps_high):
    # -min(r A, clip(r) A), token by token
    # seq 0, A=+2: r=1.5 -> min(3.0, (1+eh)*2); r=0.7 -> min(1.4, max(0.7, 1-el)*2)
    # seq 1, A=-1: r=1.1 -> min(-1.1, -min(1.1, 1+eh)); r=0.6 -> min(-0.6, -max(0.6, 1-el)); r=1.25 -> ...
    def term(r, a):
        return -min(r * a, min(max(r, 1 - eps_low), 1 + eps_high) * a)

    return [[term(1.5, 2), term(0.7, 2)], [term(1.1, -1), term(0.6, -1), term(1.25, -1)]]


@pytest.mark.parametrize("eps_high", [0.2, 0.28])
def test_token_mean_matches_hand_computation(eps_high):
    t = hand_token_losses(0.2, eps_high)
    expected = (sum(t[0]) + sum(t[1])) / 5
    loss, clip_frac = ppo_clip_loss(NEW, OLD, ADV, MASK, 0.2, eps_high, "token-mean", 3)
    assert loss.item() == pytest.approx(expected, abs=1e-6)
    # clipped-and-active tokens: r=1.5 (A>0, above 1+eh); r=0.6 (A<0, below 1-el); r=1.25 not (A<0 above)
    assert clip_frac.item() == pytest.approx(2 / 5)
    if eps_high == 0.2:  # write one case out fully: -min(3.0, 2.4) = -2.4 etc.
        assert t[0] == pytest.approx([-2.4, -1.4])
        assert t[1] == pytest.approx([1.1, 0.8, 1.25])


def test_seq_mean_token_sum_norm_matches_hand_computation():
    t = hand_token_losses(0.2, 0.28)
    max_len = 4  # a constant, not the batch's longest response
    expected = (sum(t[0]) / max_len + sum(t[1]) / max_len) / 2
    loss, _ = ppo_clip_loss(NEW, OLD, ADV, MASK, 0.2, 0.28, "seq-mean-token-sum-norm", max_len)
    assert loss.item() == pytest.approx(expected, abs=1e-6)


def test_entropy_bonus_is_subtracted_with_the_same_aggregation():
    entropy = torch.tensor([[1.0, 2.0, 9.0], [3.0, 4.0, 5.0]])
    base, _ = ppo_clip_loss(NEW, OLD, ADV, MASK, 0.2, 0.2, "token-mean", 3)
    bonus, _ = ppo_clip_loss(NEW, OLD, ADV, MASK, 0.2, 0.2, "token-mean", 3, entropy, 0.1)
    assert (base - bonus).item() == pytest.approx(0.1 * 15 / 5, abs=1e-6)  # padded 9.0 ignored


def test_gradient_is_zero_where_clipped():
    new = NEW.clone().requires_grad_(True)
    loss, _ = ppo_clip_loss(new, OLD, ADV, MASK, 0.2, 0.2, "token-mean", 3)
    loss.backward()
    g = new.grad
    assert g[0, 0] == 0 and g[1, 1] == 0 and g[0, 2] == 0  # clipped, clipped, padding
    # unclipped token: d/dlogp of -(A r)/5 = -A r / 5
    assert g[0, 1].item() == pytest.approx(-2 * 0.7 / 5, rel=1e-5)
    assert math.isfinite(g.sum().item())
