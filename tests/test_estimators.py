"""The vectorized estimators against a plain-loop reference written from spec sections 1-2, the
spec's G=8 tables, the family's invariants, verl's own ``grpo`` estimator, hypothesis properties,
and the one-line errors on bad input. Also ``estimators.curves`` (the `show` table and peaks)."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from estimators import ESTIMATORS, broadcast_to_tokens, compute_advantages, get_estimator
from estimators.curves import advantage_table

G8_PCT = [k / 8 for k in range(9)]


# ---------------------------------------------------------------- plain loop reference (spec 1-2)
def _ref_value(name: str, r: int, k: int, n: int, a_pos: float, a_neg: float) -> float:
    """One rollout's advantage, straight from the spec's formulas with p = k/n."""
    p = k / n
    if name == "reinforce":
        return 1.0 if r else -1.0
    if name == "dr-grpo":
        return r - p
    if name in ("grpo", "asym", "pos-only", "neg-only"):
        a_pos, a_neg = {"grpo": (0.5, 0.5), "pos-only": (a_pos, 0.0), "neg-only": (0.0, a_neg)}.get(name, (a_pos, a_neg))
        if r:  # eq 8 / eq 5; p = 1 gives 0**a (0, or 1 when a = 0)
            return ((1 - p) / p) ** a_pos
        return -((p / (1 - p)) ** a_neg)
    mirrored = lambda q: math.sqrt(q / (1 - q))  # noqa: E731  sqrt(q/(1-q))
    if name == "ent-decrease":
        if r:
            if k == n:  # linear extrapolation through (G-1)/G and (G-2)/G
                return 2 * mirrored((n - 1) / n) - mirrored((n - 2) / n)
            return mirrored(p)
        return -mirrored(p)  # GRPO negative channel
    if name == "ent-increase":
        if not r:
            if k == 0:
                return 2 * -mirrored(1 - 1 / n) - -mirrored(1 - 2 / n)
            return -mirrored(1 - p)
        return mirrored(1 - p)  # GRPO positive channel, 0 at p = 1
    raise AssertionError(name)


def reference(name: str, rewards: list[int], group_ids: list[int], a_pos: float, a_neg: float) -> list[float]:
    groups: dict[int, list[int]] = {}
    for r, g in zip(rewards, group_ids):
        groups.setdefault(g, []).append(r)
    out = []
    for r, g in zip(rewards, group_ids):
        members = groups[g]
        out.append(_ref_value(name, r, sum(members), len(members), a_pos, a_neg))
    return out


def random_batch(rng: random.Random, min_size: int = 1) -> tuple[list[int], list[int]]:
    """Random groups of random sizes, ids non-contiguous and interleaved, random difficulty."""
    ids = rng.sample(range(-50, 10_000), rng.randint(1, 12))
    rewards, group_ids = [], []
    for gid in ids:
        acc = rng.choice([0.0, 1.0, rng.random()])
        for _ in range(rng.randint(min_size, 10)):
            rewards.append(int(rng.random() < acc))
            group_ids.append(gid)
    order = list(range(len(rewards)))
    rng.shuffle(order)
    return [rewards[i] for i in order], [group_ids[i] for i in order]


PAPER_ESTIMATORS = ["reinforce", "grpo", "asym", "pos-only", "neg-only", "ent-decrease", "ent-increase", "dr-grpo"]


@pytest.mark.parametrize("name", PAPER_ESTIMATORS)  # the comparators: tests/test_comparators.py
def test_vectorized_matches_loop_reference(name):
    rng = random.Random(hash(name) % 1000)
    e = get_estimator(name)
    for trial in range(40):
        rewards, group_ids = random_batch(rng, min_size=2 if name.startswith("ent-") else 1)
        a_pos = rng.choice([0.0, 0.25, 0.5, 0.9, 1.0, 1.7]) if "alpha_pos" in e.tunable else e.default_alpha_pos
        a_neg = rng.choice([0.0, 0.4, 0.5, 0.75, 1.3]) if "alpha_neg" in e.tunable else e.default_alpha_neg
        got = compute_advantages(name, torch.tensor(rewards, dtype=torch.float32), torch.tensor(group_ids),
                                 a_pos if e.tunable else None, a_neg if e.tunable else None)
        want = reference(name, rewards, group_ids, a_pos, a_neg)
        assert got.dtype == torch.float32 and got.shape == (len(rewards),)
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-5, atol=1e-6, err_msg=f"{name} trial {trial}")


# ------------------------------------------------------------------------- spec G=8 tables
def _g8(name: str, **alphas) -> tuple[list[float | None], list[float | None]]:
    t = advantage_table(name, 8, **alphas)
    return [r.pos for r in t.rows], [r.neg for r in t.rows]


def test_spec_section1_g8_table():
    pos, neg = _g8("grpo")
    assert pos[1:8] == pytest.approx([2.6458, 1.7321, 1.2910, 1, 0.7746, 0.5774, 0.3780], abs=1e-4)
    assert neg[1:8] == pytest.approx([-0.3780, -0.5774, -0.7746, -1, -1.2910, -1.7321, -2.6458], abs=1e-4)
    pos, neg = _g8("asym", alpha_pos=0.9, alpha_neg=0.4)
    assert pos[1:8] == pytest.approx([5.7622, 2.6879, 1.5837, 1, 0.6314, 0.3720, 0.1735], abs=1e-4)
    assert neg[1:8] == pytest.approx([-0.4592, -0.6444, -0.8152, -1, -1.2267, -1.5518, -2.1779], abs=1e-4)
    # uniform groups, spec section 1: alpha > 0 gives 0 (and +0.0, not -0.0)
    assert pos[8] == 0.0 and neg[0] == 0.0 and math.copysign(1, neg[0]) == 1.0
    assert pos[0] is None and neg[8] is None


def test_spec_section2_flip_tables():
    pos, neg = _g8("ent-decrease")
    assert pos[1:] == pytest.approx([0.37796, 0.57735, 0.77460, 1, 1.29099, 1.73205, 2.64575, 3.55945], abs=1e-5)
    assert neg[0] == 0.0  # untouched GRPO channel keeps its endpoint value
    pos, neg = _g8("ent-increase")
    assert neg[:8] == pytest.approx([-3.55945, -2.64575, -1.73205, -1.29099, -1, -0.77460, -0.57735, -0.37796], abs=1e-5)
    assert pos[8] == 0.0


def test_uniform_group_endpoints_follow_torch_pow_semantics():
    # Pos-Only (alpha_neg = 0) keeps -1 on all-wrong groups; Neg-Only keeps +1 on all-correct groups.
    ids = torch.tensor([0, 0, 0, 1, 1, 1])
    r = torch.tensor([0.0, 0, 0, 1, 1, 1])
    assert compute_advantages("pos-only", r, ids).tolist() == [-1, -1, -1, 0, 0, 0]
    assert compute_advantages("neg-only", r, ids).tolist() == [0, 0, 0, 1, 1, 1]
    assert compute_advantages("reinforce", r, ids).tolist() == [-1, -1, -1, 1, 1, 1]
    assert compute_advantages("asym", r, ids, 0.0, 0.0).tolist() == [-1, -1, -1, 1, 1, 1]


# --------------------------------------------------------------------------------- invariants
def _batch(seed: int, n_groups: int = 64, size: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    acc = torch.rand(n_groups, generator=gen).repeat_interleave(size)
    rewards = (torch.rand(n_groups * size, generator=gen) < acc).float()
    return rewards, torch.arange(n_groups).repeat_interleave(size) * 7 + 3


def test_family_invariants():
    r, g = _batch(0)
    torch.testing.assert_close(compute_advantages("asym", r, g, 0.5, 0.5), compute_advantages("grpo", r, g))
    torch.testing.assert_close(compute_advantages("asym", r, g, 0.0, 0.0), compute_advantages("reinforce", r, g))
    torch.testing.assert_close(compute_advantages("asym", r, g, 0.7, 0.0), compute_advantages("pos-only", r, g, 0.7))
    torch.testing.assert_close(compute_advantages("asym", r, g, 0.0, 0.3), compute_advantages("neg-only", r, g, alpha_neg=0.3))


@pytest.mark.parametrize("size", [2, 5, 8])
def test_grpo_equals_verl_grpo_times_population_correction(size):
    core_algos = pytest.importorskip("verl.trainer.ppo.core_algos")
    r, g = _batch(size, n_groups=50, size=size)
    scores = torch.where(r > 0, 1.0, 0.0)
    token_rewards = torch.zeros(r.numel(), 6)
    token_rewards[:, 2] = scores
    mask = torch.ones_like(token_rewards)
    index = np.array([f"uid-{int(i)}" for i in g], dtype=object)
    verl_adv, _ = core_algos.compute_grpo_outcome_advantage(token_rewards, mask, index)
    ours = compute_advantages("grpo", r, g)
    # verl divides by the unbiased std (+1e-6); the closed form uses the population std.
    torch.testing.assert_close(ours, verl_adv[:, 0] * math.sqrt(size / (size - 1)), rtol=2e-5, atol=2e-5)


def test_dr_grpo_equals_verl_grpo_without_std():
    core_algos = pytest.importorskip("verl.trainer.ppo.core_algos")
    r, g = _batch(3, n_groups=30, size=6)
    index = np.array([str(int(i)) + "x" for i in g], dtype=object)
    verl_adv, _ = core_algos.compute_grpo_outcome_advantage(r.unsqueeze(1), torch.ones(r.numel(), 1), index,
                                                           norm_adv_by_std_in_grpo=False)
    torch.testing.assert_close(compute_advantages("dr-grpo", r, g), verl_adv[:, 0], rtol=1e-6, atol=1e-6)


# ----------------------------------------------------------------------- hypothesis properties
alphas = st.floats(min_value=0.0, max_value=3.0, allow_nan=False)


@st.composite
def grouped_rewards(draw, min_size=2):
    sizes = draw(st.lists(st.integers(min_size, 16), min_size=1, max_size=12))
    ids = draw(st.lists(st.integers(-10**6, 10**6), min_size=len(sizes), max_size=len(sizes), unique=True))
    rewards, group_ids = [], []
    for size, gid in zip(sizes, ids):
        rewards += draw(st.lists(st.integers(0, 1), min_size=size, max_size=size))
        group_ids += [gid] * size
    return torch.tensor(rewards, dtype=torch.float32), torch.tensor(group_ids)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batch=grouped_rewards(), a_pos=alphas, a_neg=alphas)
def test_every_estimator_is_finite(batch, a_pos, a_neg):
    r, g = batch
    for e in ESTIMATORS.values():
        kw = {"alpha_pos": a_pos if "alpha_pos" in e.tunable else None,
              "alpha_neg": a_neg if "alpha_neg" in e.tunable else None}
        adv = e(r, g, **kw, seq_logprob=torch.randn(r.shape))
        assert bool(torch.isfinite(adv).all()), e.name


@settings(max_examples=60, deadline=None)
@given(size=st.integers(1, 32), correct=st.booleans(), a_pos=st.floats(1e-3, 3.0), a_neg=st.floats(1e-3, 3.0))
def test_uniform_groups_carry_no_signal(size, correct, a_pos, a_neg):
    r = torch.full((size,), float(correct))
    g = torch.full((size,), 42)
    assert compute_advantages("grpo", r, g).abs().max() == 0
    assert compute_advantages("asym", r, g, a_pos, a_neg).abs().max() == 0
    assert compute_advantages("dr-grpo", r, g).abs().max() == 0
    assert (compute_advantages("reinforce", r, g) == (1.0 if correct else -1.0)).all()


@settings(max_examples=40, deadline=None)
@given(batch=grouped_rewards(min_size=1), a_pos=alphas, a_neg=alphas)
def test_signs_follow_the_channel(batch, a_pos, a_neg):
    r, g = batch
    adv = compute_advantages("asym", r, g, a_pos, a_neg)
    assert bool((adv[r == 1] >= 0).all()) and bool((adv[r == 0] <= 0).all())


@pytest.mark.parametrize("low, high", [(0, 40), (0, 10**7), (-5, 30)])
def test_group_inverse_matches_torch_unique(low, high):
    from estimators.advantages import group_inverse

    gen = torch.Generator().manual_seed(high)
    for n in (1, 7, 300):
        ids = torch.randint(low, high, (n,), generator=gen)
        assert torch.equal(group_inverse(ids), torch.unique(ids, return_inverse=True)[1])


# -------------------------------------------------------------------------------- broadcast
@pytest.mark.parametrize("dtype", [torch.bool, torch.int64, torch.int32, torch.float32, torch.float64])
def test_broadcast_to_tokens_any_mask_dtype(dtype):
    adv = torch.tensor([1.5, -2.0, 0.25])
    mask = torch.tensor([[1, 1, 0, 0], [1, 0, 1, 0], [0, 0, 0, 0]]).to(dtype)
    out = broadcast_to_tokens(adv, mask)
    assert out.dtype == torch.float32
    assert out.tolist() == [[1.5, 1.5, 0, 0], [-2.0, 0, -2.0, 0], [0, 0, 0, 0]]


def test_broadcast_rejects_bad_shapes():
    with pytest.raises(ValueError, match=r"\(N,\)"):
        broadcast_to_tokens(torch.zeros(3), torch.ones(4, 2))
    with pytest.raises(ValueError):
        broadcast_to_tokens(torch.zeros(3, 1), torch.ones(3, 2))


# --------------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "rewards, ids, match",
    [
        ([0.0, float("nan")], [0, 0], "NaN"),
        ([0.0, 0.5], [0, 0], "binary"),
        ([0.0, 1.0], [0, 0, 1], "same length"),
        ([[0.0, 1.0]], [[0, 0]], "1-D"),
    ],
)
def test_bad_rewards_raise_one_line(rewards, ids, match):
    for name in ESTIMATORS:
        with pytest.raises(ValueError, match=match) as info:
            compute_advantages(name, torch.tensor(rewards), torch.tensor(ids),
                               seq_logprob=torch.zeros(torch.tensor(rewards).shape))
        assert "\n" not in str(info.value)


def test_bad_names_and_alphas_raise():
    r, g = torch.tensor([1.0, 0.0]), torch.tensor([0, 0])
    with pytest.raises(ValueError, match="unknown estimator 'nope'; known: reinforce, grpo, asym"):
        compute_advantages("nope", r, g)
    for bad in (-0.1, float("nan"), float("inf"), "x"):
        with pytest.raises(ValueError, match="alpha_pos must be"):
            compute_advantages("asym", r, g, bad, 0.4)
    with pytest.raises(ValueError, match="'grpo' fixes alpha_pos=0.5"):
        compute_advantages("grpo", r, g, 0.9)
    with pytest.raises(ValueError, match="'pos-only' fixes alpha_neg=0"):
        compute_advantages("pos-only", r, g, 0.5, 0.3)
    # the fixed value itself is accepted (a planner may pass every method its alphas)
    torch.testing.assert_close(compute_advantages("grpo", r, g, 0.5, 0.5), compute_advantages("grpo", r, g))
    with pytest.raises(ValueError, match="at least 2 rollouts"):
        compute_advantages("ent-decrease", torch.tensor([1.0, 0.0, 1.0]), torch.tensor([0, 0, 1]))


# ------------------------------------------------------------------------------------ curves
def test_advantage_table_schema_and_peaks():
    d = advantage_table("asym", 4, 0.9, 0.4).to_dict()
    assert set(d) == {"estimator", "group_size", "alpha_pos", "alpha_neg", "rows", "peaks"}
    assert (d["estimator"], d["group_size"], d["alpha_pos"], d["alpha_neg"]) == ("asym", 4, 0.9, 0.4)
    assert [row["k"] for row in d["rows"]] == [0, 1, 2, 3, 4]
    assert [row["p"] for row in d["rows"]] == [0, 0.25, 0.5, 0.75, 1.0]
    assert d["rows"][0]["pos"] is None and d["rows"][4]["neg"] is None
    assert d["rows"][1]["pos"] == pytest.approx(3 ** 0.9)
    assert d["rows"][3]["neg"] == pytest.approx(-(3 ** 0.4))
    assert d["peaks"] == {"pos": 0.1, "neg": 0.4}
    assert advantage_table("reinforce", 8).peaks == {"pos": None, "neg": None}  # W = p, 1-p: boundary
    assert advantage_table("grpo", 8).peaks == {"pos": 0.5, "neg": 0.5}
    # curves outside the alpha family: peaks read off W = p*A+ and (1-p)*|A-|
    assert advantage_table("ent-decrease", 8).peaks == {"pos": None, "neg": 0.5}
    assert advantage_table("ent-increase", 8).peaks == {"pos": 0.5, "neg": None}
    assert advantage_table("dr-grpo", 8).peaks == {"pos": 0.5, "neg": 0.5}


@pytest.mark.parametrize("size", [1, 0, -3, 2.5])
def test_advantage_table_rejects_bad_group_size(size):
    with pytest.raises(ValueError, match="group size"):
        advantage_table("grpo", size)
