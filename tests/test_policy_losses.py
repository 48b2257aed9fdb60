"""tinyrlvr's Clip-Cov / KL-Cov against verl 0.9.1's own ``compute_policy_loss_clip_cov`` /
``compute_policy_loss_kl_cov`` (same inputs, same loss and gradient; Clip-Cov's random draw made
equal by seeding torch's global RNG before each call, the RNG verl draws from), the on-policy
property of KL-Cov the source states, the side-split clip fractions by hand, and the render."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("verl")

from verl.trainer.ppo.core_algos import get_policy_loss_fn  # noqa: E402
from verl.workers.config.actor import FSDPActorConfig, PolicyLossConfig  # noqa: E402

from tinyrlvr.policy_losses import clip_cov_loss, clip_sides, kl_cov_loss  # noqa: E402


def verl_config(mode: str, **loss) -> FSDPActorConfig:
    return FSDPActorConfig(strategy="fsdp", rollout_n=4, clip_ratio=0.2, clip_ratio_low=0.2, clip_ratio_high=0.28,
                           ppo_micro_batch_size_per_gpu=1, policy_loss=PolicyLossConfig(loss_mode=mode, **loss))


def inputs(seed: int, n: int = 24, t: int = 7, drift: float = 0.3):
    """Advantages of size ~2 and spread log-probs, so many C_t fall in Clip-Cov's (1, 5) window."""
    g = torch.Generator().manual_seed(seed)
    old = -torch.rand(n, t, generator=g) * 4  # (N, T)
    logp = (old + drift * torch.randn(n, t, generator=g)).requires_grad_(True)
    adv = (2 * torch.randn(n, 1, generator=g)).expand(n, t).contiguous()
    mask = (torch.rand(n, t, generator=g) < 0.85).float()
    mask[:, 0] = 1.0
    return old, logp, adv, mask


def grads(loss: torch.Tensor, logp: torch.Tensor) -> torch.Tensor:
    (g,) = torch.autograd.grad(loss, logp)
    return g


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("ratio", [2e-4, 0.1])  # the source's value (one token) and a many-token draw
def test_clip_cov_equals_verl(seed, ratio):
    old, logp, adv, mask = inputs(seed)
    fn = get_policy_loss_fn("clip_cov")  # verl's registry
    torch.manual_seed(100 + seed)
    want, metrics = fn(old, logp, adv, mask, "token-mean", verl_config("clip_cov", clip_cov_ratio=ratio))
    torch.manual_seed(100 + seed)
    got, detached = clip_cov_loss(logp, old, adv, mask, 0.2, 0.28, "token-mean", 7, ratio_frac=ratio)
    assert torch.allclose(got, want, rtol=1e-6, atol=1e-7)
    assert torch.allclose(grads(got, logp), grads(want, logp), rtol=1e-6, atol=1e-7)
    assert float(detached) == pytest.approx(metrics["actor/pg_clipfrac"], abs=1e-7)
    assert float(detached) > 0  # some tokens were detached: the comparison covers the selection


def test_clip_cov_draw_depends_on_the_generator_and_detaches_gradient():
    old, logp, adv, mask = inputs(3)
    runs = [clip_cov_loss(logp, old, adv, mask, 0.2, 0.28, "token-mean", 7, ratio_frac=0.05,
                          generator=torch.Generator().manual_seed(s)) for s in (0, 0, 1)]
    g0, g0b, g1 = (grads(loss, logp) for loss, _ in runs)
    assert torch.equal(g0, g0b) and not torch.equal(g0, g1)
    zeroed = (g0 == 0) & (mask > 0)
    assert int(zeroed.sum()) >= max(int(0.05 * mask.sum()), 1)  # the chosen tokens carry no gradient


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("agg", ["token-mean", "seq-mean-token-sum-norm"])
def test_kl_cov_equals_verl(seed, agg):
    old, logp, adv, mask = inputs(seed)
    cfg = verl_config("kl_cov", kl_cov_ratio=0.05, ppo_kl_coef=1.0)
    cfg.global_batch_info["loss_scale_factor"] = 7  # our horizon is the max response length
    want, _ = get_policy_loss_fn("kl_cov")(old, logp, adv, mask, agg, cfg)
    got, penalised = kl_cov_loss(logp, old, adv, mask, agg, 7, ratio_frac=0.05, coef=1.0)
    assert torch.allclose(got, want, rtol=1e-6, atol=1e-7)
    assert torch.allclose(grads(got, logp), grads(want, logp), rtol=1e-6, atol=1e-7)
    assert float(penalised) * float(mask.sum()) == pytest.approx(max(1, int(mask.sum() * 0.05)))


def test_kl_cov_term_vanishes_on_policy():
    """rho = 1: |log rho| = 0 with zero gradient, so KL-Cov is the plain surrogate -A * rho."""
    old, _, adv, mask = inputs(4)
    logp = old.clone().requires_grad_(True)
    loss, _ = kl_cov_loss(logp, old, adv, mask, "token-mean", 7, ratio_frac=0.5, coef=10.0)
    plain = -(adv * torch.exp(logp - old) * mask).sum() / mask.sum()
    assert torch.allclose(loss, plain) and torch.allclose(grads(loss, logp), grads(plain, logp))


def test_clip_sides_by_hand():
    ratio = torch.tensor([[1.5, 0.5, 1.1, 0.7], [1.3, 0.6, 1.0, 2.0]])
    adv = torch.tensor([[1.0, 1.0, 1.0, -1.0], [-1.0, -1.0, 0.0, 1.0]])
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 1, 0]])
    upper, lower = clip_sides(ratio, adv, mask, clip_low=0.2, clip_high=0.28)
    # upper: A > 0 and rho > 1.28 -> (0,0) only ((1,3) is masked); lower: A < 0 and rho < 0.8 -> (0,3), (1,1)
    assert float(upper) == pytest.approx(1 / 7) and float(lower) == pytest.approx(2 / 7)


def test_render_writes_verls_loss_modes():
    from experiments.plan import plan
    from backends.verl.entry import compose_config
    from backends.verl.render import RenderPaths, render_overrides

    trials = {t.label: t for t in plan("comparators", backend="verl")}
    paths = RenderPaths("/data", "/ckpt")
    cfg = compose_config(render_overrides(trials["KL-Cov"], paths))
    assert cfg.actor_rollout_ref.actor.policy_loss.loss_mode == "kl_cov"
    assert cfg.actor_rollout_ref.actor.policy_loss.ppo_kl_coef == 1.0
    assert cfg.actor_rollout_ref.actor.policy_loss.kl_cov_ratio == 2e-3  # the 7B recipe (k_percent 0.2)
    assert not any("policy_loss" in o for o in render_overrides(trials["GRPO"], paths))
    clip = render_overrides(trials["Clip-Cov"], paths)
    assert "actor_rollout_ref.actor.policy_loss.loss_mode=clip_cov" in clip
    assert "actor_rollout_ref.actor.policy_loss.clip_cov_ub=5.0" in clip
