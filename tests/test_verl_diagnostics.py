"""The verl trainer's diagnostics on a real ``verl.DataProto`` built on the CPU.

Checked against: verl's own ``compute_advantage`` (ray_trainer) running our registered
``asym_grpo`` and verl's ``grpo``; the ``estimators`` functions on the unpadded rows; padding rows
(verl's ``pad...`` uids with zero masks) that must change nothing; the key mapping of ``metrics.py``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

pytest.importorskip("verl")

from omegaconf import OmegaConf  # noqa: E402
from verl.protocol import DataProto  # noqa: E402
from verl.trainer.ppo.ray_trainer import compute_advantage  # noqa: E402

import backends.verl.adapter  # noqa: E402,F401  (registers asym_grpo)
from estimators import broadcast_to_tokens, channels  # noqa: E402
from estimators import diagnostics as diag  # noqa: E402
from common import metric_names as names  # noqa: E402
from estimators.advantages import asym  # noqa: E402
from backends.verl.diagnostics import (  # noqa: E402
    batch_diagnostics,
    logp_gain_correct,
    padding_rows,
    verl_key,
)
from backends.verl.metrics import map_metrics  # noqa: E402

G, T = 8, 12


def make_batch(successes_per_group: list[int], pad_rows: int, seed: int = 0) -> DataProto:
    """Groups of G rollouts with k successes each, random lengths, then ``pad_rows`` verl pad rows."""
    gen = torch.Generator().manual_seed(seed)
    rows = []
    for g, k in enumerate(successes_per_group):
        correct = torch.zeros(G)
        correct[torch.randperm(G, generator=gen)[:k]] = 1
        for i in range(G):
            rows.append((f"uid-{g}", float(correct[i])))
    n_real = len(rows)
    lengths = torch.randint(1, T + 1, (n_real,), generator=gen)
    mask = (torch.arange(T).unsqueeze(0) < lengths.unsqueeze(1)).to(torch.float32)  # (N, T)
    scores = torch.zeros(n_real, T)
    for i, (_, r) in enumerate(rows):
        scores[i, int(lengths[i]) - 1] = r  # outcome reward on the last token
    old_log_probs = -torch.rand(n_real, T, generator=gen) * 3 * mask
    entropy = torch.rand(n_real, T, generator=gen) * 2
    # verl's pad rows (padding_utils): zero mask and scores; other fields carry junk
    pad = lambda x, fill: torch.cat([x, torch.full((pad_rows, T), fill)])  # noqa: E731
    mask, scores = pad(mask, 0.0), pad(scores, 0.0)
    old_log_probs, entropy = pad(old_log_probs, -5.0), pad(entropy, 7.0)
    uids = np.array([u for u, _ in rows] + ["pad0123abcd"] * pad_rows, dtype=object)
    batch = DataProto.from_dict(
        tensors={"rm_scores": scores, "token_level_rewards": scores, "response_mask": mask,
                 "old_log_probs": old_log_probs, "entropy": entropy},
        non_tensors={"uid": uids},
    )
    return batch


def algorithm(estimator: str, **asym_cfg) -> OmegaConf:
    cfg = {"adv_estimator": estimator, "norm_adv_by_std_in_grpo": True, "gamma": 1.0, "lam": 1.0}
    if asym_cfg:
        cfg["asym"] = asym_cfg
    return OmegaConf.create(cfg)


def reference(batch: DataProto, alpha_pos: float, alpha_neg: float) -> dict[str, float]:
    """The same numbers from estimators/ alone, on the real rows only."""
    uids = batch.non_tensor_batch["uid"]
    real = np.array([not str(u).startswith("pad") for u in uids])
    rows = torch.as_tensor(np.flatnonzero(real))
    mask = batch.batch["response_mask"][rows]
    rewards = ((batch.batch["rm_scores"][rows] * mask).sum(-1) > 0).float()
    _, inv = np.unique(uids[real].astype(str), return_inverse=True)
    gid = torch.as_tensor(inv)
    none, all_ = diag.solve_fractions(rewards, gid)
    adv = asym(rewards, gid, alpha_pos, alpha_neg)
    pos, neg = diag.advantage_mass(rewards, adv)
    c = diag.sequence_mean_logprob(batch.batch["old_log_probs"][rows], mask)
    telemetry = channels.pre_update(broadcast_to_tokens(adv, mask), batch.batch["old_log_probs"][rows],
                                    batch.batch["entropy"][rows], mask)
    return {
        **{verl_key(k): v for k, v in telemetry.items()},
        verl_key(names.NONE_SOLVED): none, verl_key(names.ALL_SOLVED): all_,
        verl_key(names.KAPPA): diag.kappa(rewards, gid, c),
        verl_key(names.ADV_MASS_POS): pos, verl_key(names.ADV_MASS_NEG): neg,
        verl_key(names.ENTROPY): diag.masked_mean(batch.batch["entropy"][rows], mask),
        verl_key(names.REWARD_MEAN): float(rewards.mean()),
        verl_key(names.RESPONSE_LENGTH): float(mask.sum(-1).mean()),
    }


@pytest.mark.parametrize("pad_rows", [0, 5])
def test_diagnostics_through_verls_compute_advantage_match_estimators(pad_rows):
    batch = make_batch([0, 1, 3, 4, 8, 6, 8, 0], pad_rows)
    config = algorithm("asym_grpo", variant="asym", alpha_pos=0.9, alpha_neg=0.4)
    out = compute_advantage(batch, adv_estimator="asym_grpo", num_repeat=G, config=config)
    got = batch_diagnostics(out)
    want = reference(batch, 0.9, 0.4)
    assert set(got) == set(want)
    for key, value in want.items():
        assert got[key] == pytest.approx(value, rel=1e-5, abs=1e-6), key
    assert got[verl_key(names.NONE_SOLVED)] == pytest.approx(2 / 8)
    assert got[verl_key(names.ALL_SOLVED)] == pytest.approx(2 / 8)
    assert got[verl_key(names.KAPPA)] != 0.0


def test_pad_rows_change_nothing_and_are_found_by_uid_and_mask():
    plain, padded = make_batch([2, 5, 7], 0, seed=3), make_batch([2, 5, 7], 4, seed=3)
    cfg = algorithm("asym_grpo", variant="pos-only", alpha_pos=0.5, alpha_neg=0.0)
    a = batch_diagnostics(compute_advantage(plain, adv_estimator="asym_grpo", num_repeat=G, config=cfg))
    b = batch_diagnostics(compute_advantage(padded, adv_estimator="asym_grpo", num_repeat=G, config=cfg))
    assert a.keys() == b.keys()
    for key in a:
        assert b[key] == pytest.approx(a[key], rel=1e-6, abs=1e-7), key
    flags = padding_rows(padded.non_tensor_batch["uid"], padded.batch["response_mask"])
    assert flags.sum() == 4 and flags[-4:].all()
    # verl's tag flags win when given
    tags = np.zeros(len(flags), dtype=bool)
    tags[0] = True
    assert padding_rows(padded.non_tensor_batch["uid"], padded.batch["response_mask"], tags)[0]


def test_verl_grpo_baseline_and_entropy_independent_of_loss_aggregation():
    batch = make_batch([1, 4, 7, 0], 2, seed=5)
    out = compute_advantage(batch, adv_estimator="grpo", num_repeat=G, config=algorithm("grpo"))
    got = batch_diagnostics(out)
    # verl's grpo uses the unbiased std (+eps): sqrt((G-1)/G) times the closed form (spec section 1)
    closed = reference(batch, 0.5, 0.5)
    scale = math.sqrt((G - 1) / G)
    assert got[verl_key(names.ADV_MASS_POS)] == pytest.approx(closed[verl_key(names.ADV_MASS_POS)] * scale, rel=1e-4)
    # token-mean entropy, not verl's loss-aggregated one: a plain masked mean over real tokens
    mask = batch.batch["response_mask"][:-2]
    want = float((batch.batch["entropy"][:-2] * mask).sum() / mask.sum())
    assert got[verl_key(names.ENTROPY)] == pytest.approx(want, rel=1e-6)


def test_no_mixed_group_leaves_kappa_out():
    batch = make_batch([0, 8], 0)
    out = compute_advantage(batch, adv_estimator="asym_grpo", num_repeat=G, config=algorithm("asym_grpo", variant="asym"))
    got = batch_diagnostics(out)
    assert verl_key(names.KAPPA) not in got
    assert got[verl_key(names.NONE_SOLVED)] == 0.5 and got[verl_key(names.ALL_SOLVED)] == 0.5


def test_metric_mapping_of_verl_keys():
    record = {
        "asym/kappa": 0.12, "asym/entropy": 0.7, "asym/none_solved_frac": 0.25,
        "actor/entropy": 99.0, "actor/pg_clipfrac": 0.01, "timing_s/step": 10.0,
        "val-core/math500/acc/mean@5": 0.8, "val-core/aime24/acc/mean@10": 0.3,
        "val-aux/math500/acc/best@5/mean": 0.9, "val-core/amc23/acc/mean_at_10": 0.5,
        "critic/score/mean": float("nan"), "note": "text",
    }
    got = map_metrics(record)
    assert got == {
        names.KAPPA: 0.12, names.ENTROPY: 0.7, names.NONE_SOLVED: 0.25, names.CLIP_FRAC: 0.01,
        names.eval_accuracy("math500"): 0.8, names.eval_accuracy("aime24"): 0.3,
        names.eval_accuracy("amc23"): 0.5, names.EVAL_MEAN_ACCURACY: pytest.approx((0.8 + 0.3 + 0.5) / 3),
    }
    # verl's loss-aggregated entropy only when our token-mean one is missing
    assert map_metrics({"actor/entropy": 0.4}) == {names.ENTROPY: 0.4}
    assert map_metrics({"timing_s/gen": 3.0}) == {}


def test_logp_gain_correct_is_the_mean_change_of_c_on_correct_real_rows():
    """Fig 2 (d,h): c_new - c_old (App E's length-normalised log-prob) averaged over correct rollouts
    only; pad rows (junk log-probs) and failed rollouts do not count; none correct -> nothing logged."""
    batch = make_batch([2, 8, 0, 5], pad_rows=3, seed=4)
    mask = batch.batch["response_mask"]
    gen = torch.Generator().manual_seed(9)
    new = batch.batch["old_log_probs"] + torch.randn(mask.shape, generator=gen) * mask
    new[-3:] = 50.0  # pad rows: junk that must not reach the mean
    got = logp_gain_correct(batch, new)[verl_key(names.LOGP_GAIN_CORRECT)]
    real = len(batch) - 3
    correct = (batch.batch["rm_scores"][:real] * mask[:real]).sum(-1) > 0
    c = lambda lp: (lp[:real] * mask[:real]).sum(-1) / mask[:real].sum(-1)  # noqa: E731
    expected = (c(new) - c(batch.batch["old_log_probs"]))[correct].mean()
    assert int(correct.sum()) == 15 and got == pytest.approx(float(expected), abs=1e-6)
    wrong_only = (c(new) - c(batch.batch["old_log_probs"]))[~correct].mean()
    assert abs(got - float(wrong_only)) > 1e-3  # the selection matters on this batch
    none = make_batch([0, 0], pad_rows=0)
    assert logp_gain_correct(none, none.batch["old_log_probs"]) == {}
