"""The comparator estimators against their sources' formulas: hand-computed small cases, a plain
loop reference on random batches for the vectorized ones (Zhu et al. 2506.01347, He et al.
2506.02355, Cheng et al. 2506.14758), the registry's optional input and token shaping, the verl
adapter path with those inputs, and the per-channel telemetry (``estimators.channels``) by hand."""

from __future__ import annotations

import math
import random
import statistics

import numpy as np
import pytest
import torch

from estimators import channels, compute_advantages, compute_token_advantages, get_estimator
from common import metric_names as M
from estimators.comparators import entropy_shaping, unlikeliness

R = torch.tensor([1.0, 0.0, 1.0, 1.0, 0.0])
G = torch.tensor([7, 7, 7, 3, 3])


def test_psr_nsr_w_reinforce_by_hand():
    assert compute_advantages("psr", R, G).tolist() == [1.0, 0.0, 1.0, 1.0, 0.0]
    assert compute_advantages("nsr", R, G).tolist() == [0.0, -1.0, 0.0, 0.0, -1.0]
    assert compute_advantages("w-reinforce", R, G).tolist() == pytest.approx([0.1, -1.0, 0.1, 0.1, -1.0])
    # no group normalisation: a uniform group keeps its signal (unlike GRPO)
    ones = torch.ones(4)
    assert compute_advantages("w-reinforce", ones, torch.zeros(4, dtype=torch.long)).tolist() == pytest.approx([0.1] * 4)


def test_unlikeliness_by_hand():
    # He et al.'s release: every rollout ranked among all G = 4 by old log-prob, least likely first:
    # logp [-0.5, -2.0, -1.0, -1.5] -> ranks [3, 0, 2, 1]; r(1 - 0.25 rank / 4); (r - mean) / (std + 1e-6), unbiased std
    rewards = torch.tensor([1.0, 1.0, 0.0, 1.0])
    logp = torch.tensor([-0.5, -2.0, -1.0, -1.5])
    shaped = [1 - 0.25 * 3 / 4, 1.0, 0.0, 1 - 0.25 * 1 / 4]
    mean, std = statistics.fmean(shaped), statistics.stdev(shaped)
    got = compute_advantages("unlikeliness", rewards, torch.zeros(4, dtype=torch.long), seq_logprob=logp)
    assert got.tolist() == pytest.approx([(s - mean) / (std + 1e-6) for s in shaped], rel=1e-6)
    # all-correct and all-wrong groups are dropped (advantage 0), as the released trainer filters them
    ids = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])
    uniform = unlikeliness(torch.tensor([1.0] * 4 + [0.0] * 4), ids, seq_logprob=torch.tensor([-3.0, -1, -2, -4] * 2))
    assert uniform.tolist() == [0.0] * 8


def test_unlikeliness_with_beta_zero_is_grpo_up_to_the_unbiased_std_and_needs_logprobs():
    rng = random.Random(1)
    rewards = torch.tensor([float(rng.random() < 0.5) for _ in range(40)])
    ids = torch.arange(5).repeat_interleave(8)
    got = unlikeliness(rewards, ids, seq_logprob=torch.randn(40), beta=0.0)
    assert torch.allclose(got, compute_advantages("grpo", rewards, ids) * (7 / 8) ** 0.5, atol=1e-5)
    with pytest.raises(ValueError, match="needs seq_logprob"):
        compute_advantages("unlikeliness", rewards, ids)


def _unlikeliness_loop(rewards, ids, logp, beta=0.25):
    """The released trainer's loop (ray_lean_trainer.py), plainly: rank all G, shape, drop uniform groups."""
    out = [0.0] * len(rewards)
    for g in set(ids):
        idx = [i for i in range(len(ids)) if ids[i] == g]
        k = sum(rewards[i] for i in idx)
        if k == 0 or k == len(idx):
            continue
        ranked = sorted(idx, key=lambda i: (logp[i], i))
        shaped = {i: rewards[i] * (1 - beta * ranked.index(i) / len(idx)) for i in idx}
        values = [shaped[i] for i in idx]
        mean, std = statistics.fmean(values), statistics.stdev(values)
        for i in idx:
            out[i] = (shaped[i] - mean) / (std + 1e-6)
    return out


def test_unlikeliness_matches_loop_reference():
    rng = random.Random(7)
    for _ in range(30):
        ids = [g for g in rng.sample(range(-20, 500), rng.randint(1, 6)) for _ in range(rng.randint(1, 9))]
        rng.shuffle(ids)
        rewards = [int(rng.random() < rng.choice([0.0, 0.5, 1.0, 0.8])) for _ in ids]
        logp = [rng.choice([-1.0, -2.0, rng.uniform(-5, 0)]) for _ in ids]  # ties included
        got = compute_advantages("unlikeliness", torch.tensor(rewards, dtype=torch.float32), torch.tensor(ids),
                                 seq_logprob=torch.tensor(logp))
        np.testing.assert_allclose(got.numpy(), _unlikeliness_loop(rewards, ids, logp), rtol=1e-5, atol=1e-6)


def test_entropy_shaping_by_hand():
    adv = torch.tensor([[1.0, 1.0, 1.0], [-0.5, -0.5, -0.5]])
    ent = torch.tensor([[0.5, 3.0, 9.0], [1.0, 0.1, 9.0]])
    mask = torch.tensor([[1, 1, 0], [1, 1, 0]])
    got = entropy_shaping(adv, ent, mask)  # alpha 0.4, kappa 2: + min(0.4 H, |A| / 2)
    assert torch.allclose(got, torch.tensor([[1.2, 1.5, 1.0], [-0.25, -0.46, -0.5]]))


def test_entropy_adv_is_grpo_plus_token_shaping_through_the_registry():
    mask = torch.ones(5, 3, dtype=torch.bool)
    ent = torch.rand(5, 3, generator=torch.Generator().manual_seed(0))
    got = compute_token_advantages("entropy-adv", R, G, mask, token_entropy=ent)
    grpo = compute_token_advantages("grpo", R, G, mask)
    bonus = torch.minimum(0.4 * ent, grpo.abs() / 2)
    assert torch.allclose(got, grpo + bonus)
    assert get_estimator("entropy-adv").needs_token_entropy and not get_estimator("grpo").needs_token_entropy
    with pytest.raises(ValueError, match="token entropies"):
        compute_token_advantages("entropy-adv", R, G, mask)


def test_verl_adapter_passes_the_inputs():
    pytest.importorskip("verl")
    from omegaconf import OmegaConf

    from backends.verl.adapter import compute_asym_grpo_advantage, rollout_inputs

    mask = torch.ones(5, 3)
    scores = torch.zeros(5, 3)
    scores[:, -1] = R
    uids = np.array(["a", "a", "a", "b", "b"], dtype=object)
    logp = torch.randn(5, 3, generator=torch.Generator().manual_seed(2))
    cfg = OmegaConf.create({"asym": {"variant": "unlikeliness"}})
    with pytest.raises(ValueError, match="needs verl's old_log_probs"):
        compute_asym_grpo_advantage(scores, mask, uids, cfg)
    with rollout_inputs(old_log_probs=logp):
        adv, _ = compute_asym_grpo_advantage(scores, mask, uids, cfg)
    want = compute_token_advantages("unlikeliness", R, torch.tensor([0, 0, 0, 1, 1]), mask, old_logprob=logp)
    assert torch.allclose(adv, want)
    ent = torch.rand(5, 3)
    adv, _ = compute_asym_grpo_advantage(scores, mask, uids, OmegaConf.create({"asym": {"variant": "entropy-adv"}}),
                                         entropy=ent)
    assert torch.allclose(adv, compute_token_advantages("entropy-adv", R, torch.tensor([0, 0, 0, 1, 1]), mask,
                                                        token_entropy=ent))


def test_channel_telemetry_by_hand():
    adv = torch.tensor([[1.0, 1.0], [-1.0, -1.0], [0.0, 0.0]])  # rollout 0 positive, 1 negative, 2 neither
    mask = torch.tensor([[1, 1], [1, 0], [1, 1]])
    old = torch.tensor([[-1.0, -3.0], [-2.0, 0.0], [-2.0, -2.0]])
    ent = torch.tensor([[0.2, 0.4], [1.0, 0.0], [0.7, 0.7]])
    pre = channels.pre_update(adv, old, ent, mask)
    assert pre[M.ENTROPY_POS] == pytest.approx(0.3) and pre[M.ENTROPY_NEG] == pytest.approx(1.0)
    # tokens (A, logp): (1,-1) (1,-3) (-1,-2) (0,-2) (0,-2); mean A = 0.2, mean logp = -2
    products = [(a - 0.2) * (lp + 2) for a, lp in [(1, -1), (1, -3), (-1, -2), (0, -2), (0, -2)]]
    assert pre[M.COV_LOGP_ADV] == pytest.approx(statistics.fmean(products))
    assert pre[M.COV_LOGP_ADV_Q50] == pytest.approx(statistics.median(products))
    new = old + torch.tensor([[0.5, 0.1], [-0.4, 9.0], [0.0, 0.0]])
    post = channels.post_update(adv, mask, old, new, ent, ent - 0.1)
    assert post[M.LOGP_CHANGE_POS] == pytest.approx(0.3) and post[M.LOGP_CHANGE_NEG] == pytest.approx(-0.4)
    assert post[M.ENTROPY_CHANGE] == pytest.approx(-0.1)
    assert set(pre) | set(post) == set(M.CHANNEL_METRICS) - {M.CLIP_FRAC_UPPER, M.CLIP_FRAC_LOWER}
    empty = channels.pre_update(adv.abs(), old, ent, mask)  # no negative rollout this step
    assert math.isnan(empty[M.ENTROPY_NEG])


def test_estimators_list_shows_the_comparators_with_sources():
    from typer.testing import CliRunner

    from orchestrator.cli import app

    result = CliRunner().invoke(app, ["estimators", "list"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for name, source in [("psr", "2506.01347"), ("nsr", "2506.01347"), ("w-reinforce", "2506.01347"),
                         ("unlikeliness", "2506.02355"), ("entropy-adv", "2506.14758")]:
        line = next(line for line in result.output.splitlines() if f" {name} " in line)
        assert source in line, line


def test_engine_trains_with_the_covariance_losses(tmp_path):
    from tinyrlvr.config import SMOKE_OVERRIDES, EngineConfig
    from tinyrlvr.trainer import train

    for policy_loss in ("clip_cov", "kl_cov"):  # one smoke base model (warmed up once in tmp_path)
        seen = {}
        cfg = EngineConfig.create(estimator="grpo", policy_loss=policy_loss, steps=1, threads=1, cache_dir=str(tmp_path),
                                  **{**SMOKE_OVERRIDES, "mini_batches": 2, "eval_every": 100})
        train(cfg, lambda step, metrics: seen.update({step: metrics}))
        assert set(M.CHANNEL_METRICS) <= set(seen[1])
        assert 0 < seen[1][M.CLIP_FRAC] <= 0.5  # the mode's own share: detached / penalised tokens (at least one)
    with pytest.raises(ValueError, match="policy_loss must be one of"):
        cfg.replace(policy_loss="dual_clip")
