"""The Proposition 1 probe: its predictions, the instrument on a construction where the theory is exact,
and the engine probe's own invariants.

The construction (ours): a fixed-logit policy, one softmax over K whole responses per prompt, in
Fisher-whitened coordinates at the fork point (z = z0 + theta / sqrt(pi0), theta = 0), and a group of
G rollouts that enumerates pi0 exactly (response a appears G * pi0(a) times). Then
- the 1/G covariance over the group's rollouts is the pi0-weighted covariance over responses;
- plain SGD on theta with the loss -sum_g (1/G) sum_i A_i log pi(o_i) moves the logits by
  dz_a = eta * (A(a) - E_pi A): the natural policy gradient, for which Cui et al.'s
  dH_g = -eta * Cov_g(c, A) is exact to first order (d H / d z_a = -pi_a (log pi_a + H));
so the measured mean entropy change, minus REINFORCE's, must equal the exact within-group
prediction (``estimators.prop1``) up to O(eta^2). The engine's transformer has none of these
properties: that is what the probe measures.
"""

from __future__ import annotations

import math

import pytest
import torch

from estimators import compute_advantages, prop1
from estimators.diagnostics import kappa
from tinyrlvr.probe import one_step

# (counts of each of K = 4 responses among G = 8 rollouts, which responses are correct) per prompt
GROUPS = [((4, 2, 1, 1), (0,)), ((3, 3, 1, 1), (1, 2)), ((1, 2, 2, 3), (3,)), ((5, 1, 1, 1), (1, 2, 3)),
          ((2, 4, 1, 1), (0, 1, 2))]
G, K = 8, 4


class FixedLogitPolicy(torch.nn.Module):
    """pi_g = softmax(z0_g + theta_g / sqrt(pi0_g)), theta = 0 at the fork: SGD on theta is natural PG there."""

    def __init__(self, pi0: torch.Tensor):
        super().__init__()
        self.register_buffer("z0", pi0.log())
        self.register_buffer("scale", pi0.rsqrt())
        self.theta = torch.nn.Parameter(torch.zeros_like(pi0))

    def logp(self) -> torch.Tensor:
        return torch.log_softmax(self.z0 + self.theta * self.scale, dim=-1)  # (B, K)

    def mean_entropy(self) -> float:
        lp = self.logp().detach()
        return float(-(lp.exp() * lp).sum(-1).mean())


def construction():
    counts = torch.tensor([c for c, _ in GROUPS], dtype=torch.float64)
    pi0 = counts / G
    responses = torch.cat([torch.arange(K).repeat_interleave(c.long()) for c in counts])  # (B * G,)
    group_ids = torch.arange(len(GROUPS)).repeat_interleave(G)
    correct = torch.zeros(len(GROUPS), K)
    for g, (_, right) in enumerate(GROUPS):
        correct[g, list(right)] = 1.0
    rewards = correct[group_ids, responses]
    seq_logprob = pi0.log()[group_ids, responses]  # c_i: a one-token response's log-prob
    return pi0, responses, group_ids, rewards, seq_logprob


def measured_change(pi0, responses, group_ids, advantages, eta: float) -> float:
    policy = FixedLogitPolicy(pi0)
    before = policy.mean_entropy()
    loss = -(advantages * policy.logp()[group_ids, responses]).sum() / G  # per-group means, summed over groups
    grads = torch.autograd.grad(loss, [policy.theta])
    return one_step(policy, grads, "sgd", eta, grad_clip=1.0).mean_entropy() - before


METHODS = [("grpo", None, None), ("pos-only", None, None), ("neg-only", None, None), ("asym", 0.9, 0.4),
           ("asym", 0.3, 1.2), ("ent-increase", None, None), ("ent-decrease", None, None), ("dr-grpo", None, None)]


@pytest.mark.parametrize("name,a_pos,a_neg", METHODS, ids=[f"{n}-{p}-{q}" for n, p, q in METHODS])
def test_measured_change_matches_the_exact_prediction_where_the_theory_is_exact(name, a_pos, a_neg):
    pi0, responses, group_ids, rewards, c = construction()
    eta = 1e-4
    adv = compute_advantages(name, rewards, group_ids, a_pos, a_neg).double()
    ref = compute_advantages("reinforce", rewards, group_ids).double()
    measured = measured_change(pi0, responses, group_ids, adv, eta) - measured_change(pi0, responses, group_ids, ref, eta)
    predicted = eta * prop1.covariance_gap(rewards, group_ids, c, adv, ref)  # every group is mixed: |M| = B
    assert abs(predicted) > 1e-6  # a real effect, not two zeros
    assert measured == pytest.approx(predicted, rel=2e-3)
    # and a 10x larger step leaves the first order: the match is the instrument's, not a tautology
    big = (measured_change(pi0, responses, group_ids, adv, 1.0) - measured_change(pi0, responses, group_ids, ref, 1.0))
    assert big != pytest.approx(1.0 * prop1.covariance_gap(rewards, group_ids, c, adv, ref), rel=2e-3)


def test_centring_changes_nothing_in_the_construction_and_nothing_in_the_prediction():
    pi0, responses, group_ids, rewards, c = construction()
    adv = compute_advantages("ent-decrease", rewards, group_ids).double()
    centred = prop1.center_groups(adv, group_ids)
    ref = compute_advantages("reinforce", rewards, group_ids).double()
    assert prop1.covariance_gap(rewards, group_ids, c, centred, ref) == pytest.approx(
        prop1.covariance_gap(rewards, group_ids, c, adv, ref), abs=1e-12)
    assert measured_change(pi0, responses, group_ids, centred, 1e-4) == pytest.approx(
        measured_change(pi0, responses, group_ids, adv, 1e-4), rel=1e-6)
    inverse_means = torch.zeros(len(GROUPS), dtype=torch.float64).index_add_(0, group_ids, centred) / G
    assert inverse_means.abs().max() < 1e-12


@pytest.mark.parametrize("a_pos,a_neg", [(0.5, 0.0), (0.0, 0.5), (0.9, 0.4), (0.5, 0.5), (1.3, 0.2)])
def test_closed_form_equals_the_covariance_form_and_linearises_to_eq6(a_pos, a_neg):
    gen = torch.Generator().manual_seed(3)
    group_ids = torch.arange(40).repeat_interleave(8)
    rewards = (torch.rand(320, generator=gen) < torch.rand(40, generator=gen).repeat_interleave(8)).float()
    c = -torch.rand(320, generator=gen, dtype=torch.float64) * 3
    adv = compute_advantages("asym", rewards, group_ids, a_pos, a_neg).double()
    ref = compute_advantages("reinforce", rewards, group_ids).double()
    exact = prop1.exact_alpha_gap(rewards, group_ids, c, a_pos, a_neg)
    assert exact == pytest.approx(prop1.covariance_gap(rewards, group_ids, c, adv, ref), rel=1e-6, abs=1e-12)  # float32 advantages
    k = kappa(rewards, group_ids, c)
    small = 1e-4  # eq 6 is the first order in alpha
    assert prop1.exact_alpha_gap(rewards, group_ids, c, a_pos * small, a_neg * small) == pytest.approx(
        prop1.linear_alpha_gap(k, a_pos * small, a_neg * small), rel=1e-3, abs=1e-3 * small * abs(k))


def test_no_mixed_group_gives_nan():
    rewards = torch.tensor([1.0, 1, 0, 0])
    ids = torch.tensor([0, 0, 1, 1])
    c = torch.tensor([-1.0, -2, -1, -3])
    assert math.isnan(prop1.exact_alpha_gap(rewards, ids, c, 0.5, 0.0))
    assert math.isnan(prop1.covariance_gap(rewards, ids, c, rewards, rewards))


def test_the_covariance_losses_are_flagged_where_they_select_a_handful_of_tokens():
    from analysis.probe import covariance_loss_note

    assert covariance_loss_note("clip_cov", 2000).startswith("acts on 1 token(s)")
    assert covariance_loss_note("kl_cov", 2000).startswith("acts on 4 token(s)")
    assert covariance_loss_note("vanilla", 2000) == ""


def test_agreement_table_by_hand(tmp_path):
    import pandas as pd

    from analysis.probe import agreement, load_rows, write_report
    from orchestrator.probe import write_csv

    rows = []
    for seed, (pred, meas) in enumerate([(1.0, 2.0), (-1.0, -1.5), (2.0, -0.5), (0.5, 1.0)]):
        for method, est in (("REINFORCE", "reinforce"), ("Pos-Only", "pos-only")):
            ref = est == "reinforce"
            rows.append({"seed": seed, "step": 0, "method": method, "estimator": est, "optimizer": "sgd", "control": "none",
                         "predicted_dh": 0.0 if ref else pred, "predicted_dh_linear": 0.0 if ref else pred / 2,
                         "measured_dh_batch": 0.0 if ref else meas, "measured_dh_probe": 0.0 if ref else -meas,
                         "predicted_gap_per_eta": pred, "linear_gap_per_eta": pred / 2})
    write_csv(rows, tmp_path / "probe.csv")
    frame = load_rows(tmp_path / "probe.csv")
    assert set(frame["method"]) == {"Pos-Only"}
    table = agreement(frame).set_index("measured on")
    assert table.loc["batch tokens", "sign (exact)"] == pytest.approx(0.75)
    assert table.loc["probe set", "sign (exact)"] == pytest.approx(0.25)
    assert table.loc["batch tokens", "r (exact)"] == pytest.approx(
        float(pd.Series([1.0, -1, 2, 0.5]).corr(pd.Series([2.0, -1.5, -0.5, 1.0]))))
    names = {p.name for p in write_report(tmp_path / "probe.csv", tmp_path)}
    assert names == {"probe.png", "probe_probe_set.png", "agreement.md"}
