"""tinyrlvr.trainer end to end on the smoke settings: every metric every step, parameters move,
determinism for a seed, common random numbers across estimators, exact resume from a checkpoint.

The smoke base model is the one shipped with the package (the cache is an empty temporary folder,
as on a new machine); it is calibrated so that smoke batches hold mixed groups, which the
cross-estimator checks need (on uniform groups REINFORCE and Pos-Only coincide).
"""

import math

import pytest
import torch

from estimators import ESTIMATORS
from common import metric_names as M
from tinyrlvr.base_model import get_base_model, load_policy
from tinyrlvr.config import SMOKE_OVERRIDES, EngineConfig
from tinyrlvr.trainer import CHECKPOINT_NAME, train


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    """A factory of smoke configs sharing one cached base model."""
    cache = str(tmp_path_factory.mktemp("asym-cache"))

    def make(**changes):
        return EngineConfig.create(**{"estimator": "grpo", "steps": 3, "seed": 0, "threads": 1, "cache_dir": cache,
                                      **SMOKE_OVERRIDES, **changes})

    get_base_model(make())
    return make


def run(cfg, **kwargs):
    seen = {}

    def on_step(step, metrics):
        assert step not in seen
        seen[step] = dict(metrics)

    train(cfg, on_step, **kwargs)
    return seen


def same(a, b):
    return a.keys() == b.keys() and all(
        a[k].keys() == b[k].keys() and all((math.isnan(x) and math.isnan(b[k][n])) or x == b[k][n]
                                           for n, x in a[k].items()) for k in a)


def test_steps_report_every_metric_and_change_parameters(smoke, tmp_path):
    cfg = smoke(steps=3, eval_every=2)
    metrics = run(cfg, checkpoint_dir=tmp_path)
    assert sorted(metrics) == [0, 1, 2, 3]
    tiers = [M.eval_accuracy(f"tier{t}") for t in cfg.tiers]
    hard = {M.eval_accuracy("hard"), M.eval_accuracy_se("hard"), M.eval_auc("hard")}
    hard |= {M.eval_pass_at_k("hard", k) for k in range(1, cfg.eval_pass_k + 1)}  # the protocol's hard split
    assert set(metrics[0]) == set(tiers) | {M.EVAL_MEAN_ACCURACY} | hard
    assert hard <= set(metrics[2]) and hard <= set(metrics[3]) and not hard & set(metrics[1])
    for step in (1, 2, 3):
        assert set(M.TRAIN_METRICS) <= set(metrics[step])
        for name, value in metrics[step].items():
            mixed = metrics[step][M.NONE_SOLVED] + metrics[step][M.ALL_SOLVED] < 1
            ok_nan = (name == M.KAPPA and not mixed) or (name == M.LOGP_GAIN_CORRECT and metrics[step][M.REWARD_MEAN] == 0)
            assert math.isfinite(value) or ok_nan, (step, name, value)
        assert 0 < metrics[step][M.ENTROPY] < math.log(13)
        assert 1 <= metrics[step][M.RESPONSE_LENGTH] <= cfg.max_new_tokens
    assert set(tiers) <= set(metrics[2]) and set(tiers) <= set(metrics[3]) and not set(tiers) & set(metrics[1])
    base = load_policy(get_base_model(cfg)).state_dict()
    final = torch.load(tmp_path / CHECKPOINT_NAME, weights_only=True)["model"]
    assert any(not torch.equal(base[k], final[k]) for k in base)


def test_kappa_is_finite_when_groups_are_mixed(smoke):
    metrics = run(smoke(steps=2, prompts_per_step=16, group_size=8, eval_every=100))
    for step in (1, 2):
        m = metrics[step]
        assert m[M.NONE_SOLVED] + m[M.ALL_SOLVED] < 1  # this seed has mixed groups at every step
        assert math.isfinite(m[M.KAPPA])
        assert m[M.ADV_MASS_POS] > 0 and m[M.ADV_MASS_NEG] > 0


def test_same_seed_same_metrics_and_common_prompts_across_estimators(smoke):
    cfg = smoke(steps=2, estimator="reinforce")
    first, second = run(cfg), run(cfg)
    assert same(first, second)
    assert first[1][M.NONE_SOLVED] + first[1][M.ALL_SOLVED] < 1, "no mixed group at step 1: the estimators cannot differ"
    other = run(smoke(steps=2, estimator="pos-only", alpha_pos=0.5))
    # step 1 starts from the same base model with the same prompts and sampler draws
    for name in (M.REWARD_MEAN, M.ENTROPY, M.KAPPA, M.RESPONSE_LENGTH, M.NONE_SOLVED):
        assert other[1][name] == first[1][name] or (math.isnan(other[1][name]) and math.isnan(first[1][name]))
    assert other[1][M.ADV_MASS_POS] != first[1][M.ADV_MASS_POS] or other[1][M.ADV_MASS_NEG] != first[1][M.ADV_MASS_NEG]
    assert run(smoke(steps=1, seed=1, estimator="reinforce"))[1] != first[1]


def test_resume_from_checkpoint_reproduces_the_uninterrupted_run(smoke, tmp_path):
    cfg = smoke(steps=4, eval_every=2, estimator="asym", alpha_pos=0.9, alpha_neg=0.4)
    full = run(cfg)
    partial = run(cfg.replace(steps=2), checkpoint_dir=tmp_path, checkpoint_every=1)
    assert same(partial, {k: v for k, v in full.items() if k <= 2})
    resumed = run(cfg, checkpoint_dir=tmp_path, checkpoint_every=1)
    assert sorted(resumed) == [3, 4]
    assert same(resumed, {k: v for k, v in full.items() if k > 2})
    with pytest.raises(ValueError, match="another configuration"):
        run(cfg.replace(lr=1e-3), checkpoint_dir=tmp_path)


@pytest.mark.parametrize("name", sorted(ESTIMATORS))
def test_every_estimator_trains_through_the_same_path(smoke, name):
    extra = {"entropy_coeff": 0.01, "clip_high": 0.28, "loss_agg": "seq-mean-token-sum-norm"} if name == "dr-grpo" else {}
    metrics = run(smoke(steps=1, estimator=name, **extra))
    assert set(M.TRAIN_METRICS) <= set(metrics[1])
    assert math.isfinite(metrics[1][M.ENTROPY]) and math.isfinite(metrics[1][M.CLIP_FRAC])


def test_zero_uniform_groups_removes_the_signal_of_uniform_groups(smoke):
    plain = run(smoke(steps=1, estimator="reinforce"))[1]
    zeroed = run(smoke(steps=1, estimator="reinforce", zero_uniform_groups=True))[1]
    assert plain[M.NONE_SOLVED] > 0  # REINFORCE gives all-wrong groups -1 each ...
    assert zeroed[M.ADV_MASS_NEG] < plain[M.ADV_MASS_NEG]  # ... which the switch removes
    assert zeroed[M.REWARD_MEAN] == plain[M.REWARD_MEAN]  # same rollouts (common random numbers)


def test_center_groups_subtracts_each_groups_mean_advantage(smoke):
    centred = run(smoke(steps=1, estimator="reinforce", center_groups=True))[1]
    dr = run(smoke(steps=1, estimator="dr-grpo"))[1]
    # REINFORCE centred: 2r - 1 - (2p - 1) = 2 (r - p), twice Dr.GRPO's r - p, on the same rollouts
    assert centred[M.ADV_MASS_POS] == pytest.approx(2 * dr[M.ADV_MASS_POS], rel=1e-5)
    assert centred[M.ADV_MASS_NEG] == pytest.approx(2 * dr[M.ADV_MASS_NEG], rel=1e-5)


def test_entropy_probe_is_the_same_fixed_set_for_every_estimator(smoke):
    first = {name: run(smoke(steps=2, estimator=name)) for name in ("reinforce", "neg-only")}
    a, b = first["reinforce"], first["neg-only"]
    assert math.isfinite(a[1][M.ENTROPY_PROBE]) and a[1][M.ENTROPY_PROBE] > 0
    assert a[1][M.ENTROPY_PROBE] == b[1][M.ENTROPY_PROBE]  # step 1 is measured before any update
    assert a[2][M.ENTROPY_PROBE] != b[2][M.ENTROPY_PROBE]  # step 2 after different updates


def test_token_shaping_reads_the_entropy_of_the_policy_being_updated(smoke):
    import torch

    from estimators.advantages import broadcast_to_tokens
    from tinyrlvr.base_model import get_base_model, load_policy
    from tinyrlvr.rollout import collect
    from tinyrlvr.update import ppo_update

    cfg = smoke(steps=1, estimator="entropy-adv", mini_batches=2)
    policy = load_policy(get_base_model(cfg), cfg.device)
    optimizer = torch.optim.AdamW(policy.parameters(), lr=cfg.lr)
    batch = collect(policy, cfg, 1)
    seen = []

    def shaping(adv, entropy, mask):
        seen.append(entropy)
        return adv

    ppo_update(policy, optimizer, batch, broadcast_to_tokens(batch.rewards * 2 - 1, batch.response_mask), cfg, 1,
               token_shaping=shaping)
    assert len(seen) == 2 and not any(e.requires_grad for e in seen)
    from tinyrlvr import seeding

    first, second = torch.randperm(batch.rewards.numel(), generator=seeding.generator(cfg.seed, 1, "shuffle")).chunk(2)
    mask = batch.response_mask
    # the first mini-batch runs on the sampling policy: its entropies are the sampler's (to round-off);
    # the second runs after one optimizer step: the policy being updated has moved
    assert torch.allclose(seen[0][mask[first]], batch.entropy[first][mask[first]], atol=1e-4)
    assert (seen[1][mask[second]] - batch.entropy[second][mask[second]]).abs().max() > 1e-4
