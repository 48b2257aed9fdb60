"""The verl adapter: ``asym_grpo`` reaches verl's registry through the installed ``verl.plugins``
entry point (fresh process, and inside a Ray actor as verl's TaskRunner), through
``VERL_USE_EXTERNAL_MODULES``, and computes our estimators over verl's real inputs: uid strings,
+-1 / 0-1 scores, padding rows, Hydra's ``+algorithm.asym.*`` config."""

from __future__ import annotations

import importlib
import json
import math
import subprocess
import textwrap

import numpy as np
import pytest
from ray_local import LOCAL_RAY_INIT
import torch

core_algos = pytest.importorskip("verl.trainer.ppo.core_algos")
from omegaconf import OmegaConf  # noqa: E402

import backends.verl.adapter as adapter  # noqa: E402
from estimators import broadcast_to_tokens, compute_advantages  # noqa: E402

LOOKUP = textwrap.dedent(
    """
    import json, os, sys
    from importlib.metadata import entry_points
    plugins = {ep.name: ep.value for ep in entry_points(group="verl.plugins")}
    before = "backends.verl.adapter" in sys.modules
    import verl
    from verl.trainer.ppo.core_algos import get_adv_estimator_fn
    fn = get_adv_estimator_fn("asym_grpo")
    print(json.dumps({"module": fn.__module__, "plugins": plugins, "imported_before_verl": before,
                      "external_modules": os.environ.get("VERL_USE_EXTERNAL_MODULES")}))
    """
)


def _run(code: str, env: dict[str, str], python: str, timeout: float = 120) -> dict:
    proc = subprocess.run([python, "-c", code], env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_fresh_process_finds_asym_grpo_through_entry_point_and_external_modules(clean_env, python_exe):
    """Two fresh interpreters side by side that only import verl: one with the installed entry
    point alone, one with entry points switched off and VERL_USE_EXTERNAL_MODULES instead."""
    envs = {
        "entry_point": clean_env,
        "external_modules": {**clean_env, "VERL_USE_EXTERNAL_PLUGINS": "none",
                             "VERL_USE_EXTERNAL_MODULES": "backends.verl.adapter"},
    }
    procs = {k: subprocess.Popen([python_exe, "-c", LOOKUP], env=env, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True) for k, env in envs.items()}
    results = {}
    for key, proc in procs.items():
        out, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, err[-2000:]
        results[key] = json.loads(out.strip().splitlines()[-1])
    entry = results["entry_point"]
    assert entry["plugins"].get("asym_grpo") == "backends.verl.adapter"  # pyproject's entry point
    assert entry["module"] == "backends.verl.adapter"
    assert entry["imported_before_verl"] is False and entry["external_modules"] is None
    assert results["external_modules"]["module"] == "backends.verl.adapter"


RAY_ACTOR = textwrap.dedent(
    """
    import json, ray
    {local_ray_init}

    @ray.remote(num_cpus=1)
    class TaskRunnerLike:
        def advantages(self):
            import numpy as np, torch, verl
            from omegaconf import OmegaConf
            from verl.trainer.ppo.core_algos import get_adv_estimator_fn
            fn = get_adv_estimator_fn("asym_grpo")
            rewards = torch.tensor([[0.0, 1.0], [0.0, -1.0], [-1.0, 0.0], [1.0, 0.0]])
            cfg = OmegaConf.create({"asym": {"variant": "asym", "alpha_pos": 0.9, "alpha_neg": 0.4}})
            adv, _ = fn(token_level_rewards=rewards, response_mask=torch.ones(4, 2),
                        index=np.array(["a", "a", "a", "a"], dtype=object), config=cfg)
            return fn.__module__, adv[:, 0].tolist()

    try:
        actor = TaskRunnerLike.remote()
        print(json.dumps(ray.get(actor.advantages.remote(), timeout=120)))
    finally:
        ray.shutdown()
    """
).replace("{local_ray_init}", LOCAL_RAY_INIT.format(num_cpus=1))


@pytest.mark.slow
def test_registered_inside_a_ray_actor(clean_env, python_exe):
    module, values = _run(RAY_ACTOR, clean_env, python_exe, timeout=240)
    assert module == "backends.verl.adapter"
    assert values == pytest.approx([1.0, -1.0, -1.0, 1.0])  # p = 1/2: (1)**alpha = 1


# ------------------------------------------------------------------------------- in process
def _config(**asym) -> "OmegaConf":
    cfg = OmegaConf.create({"adv_estimator": "asym_grpo", "gamma": 1.0, "asym": asym})
    OmegaConf.set_struct(cfg, True)  # as verl's composed config is
    return cfg


def _verl_batch(seed: int = 0, groups: int = 6, size: int = 4, length: int = 7, pads: int = 3,
                scores: tuple[float, float] = (1.0, -1.0)):
    """verl-shaped inputs: score at each row's last response token, uuid-like uids, pad rows last."""
    gen = torch.Generator().manual_seed(seed)
    bs = groups * size
    lengths = torch.randint(1, length + 1, (bs,), generator=gen)
    mask = (torch.arange(length)[None] < lengths[:, None]).to(torch.int64)
    success = torch.rand(bs, generator=gen) < torch.rand(groups, generator=gen).repeat_interleave(size)
    success[:size] = True  # one all-solved group
    success[size:2 * size] = False  # one none-solved group
    rewards = torch.zeros(bs, length)
    rewards[torch.arange(bs), lengths - 1] = torch.where(success, scores[0], scores[1])
    uids = [f"{g:08x}-prompt" for g in range(groups) for _ in range(size)]
    if pads:
        rewards = torch.cat([rewards, torch.zeros(pads, length)])
        mask = torch.cat([mask, torch.zeros(pads, length, dtype=torch.int64)])
        uids += ["pad5f3c9e"] * pads  # verl: pad{uuid4().hex}, one uid for all padding rows
    perm = torch.randperm(len(uids), generator=gen)  # rows of a group need not be adjacent
    return rewards[perm], mask[perm], np.array(uids, dtype=object)[perm.numpy()], success, perm


@pytest.mark.parametrize("variant, alphas", [("asym", {"alpha_pos": 0.9, "alpha_neg": 0.4}), ("grpo", {}),
                                             ("pos-only", {"alpha_pos": 0.7}), ("ent-increase", {}),
                                             ("reinforce", {}), ("dr-grpo", {})])
def test_registered_fn_equals_our_estimators_with_pad_rows(variant, alphas):
    rewards, mask, uids, _, _ = _verl_batch()
    fn = core_algos.get_adv_estimator_fn("asym_grpo")
    adv, returns = fn(token_level_rewards=rewards, response_mask=mask, index=uids, config=_config(variant=variant, **alphas))
    assert adv.shape == rewards.shape and adv.dtype == torch.float32 and returns is adv
    assert bool(torch.isfinite(adv).all())
    is_pad = np.array([u.startswith("pad") for u in uids])
    assert adv[torch.from_numpy(is_pad)].abs().max() == 0
    real = torch.from_numpy(~is_pad)
    success = (rewards[real].sum(-1) > 0).float()
    ids = torch.tensor([int(u.split("-")[0], 16) for u in uids[~is_pad]])
    per_rollout = compute_advantages(variant, success, ids, alphas.get("alpha_pos"), alphas.get("alpha_neg"))
    torch.testing.assert_close(adv[real], broadcast_to_tokens(per_rollout, mask[real]))


def test_scores_map_by_sign_and_match_verl_grpo():
    """math_dapo +-1 and MATH 0/1 scores give the same advantages; variant grpo is verl's grpo
    times sqrt(G/(G-1)) on the same inputs."""
    fn = core_algos.get_adv_estimator_fn("asym_grpo")
    plus_minus = _verl_batch(seed=3, pads=0, scores=(1.0, -1.0))
    zero_one = _verl_batch(seed=3, pads=0, scores=(1.0, 0.0))
    cfg = _config(variant="grpo")
    adv_pm, _ = fn(token_level_rewards=plus_minus[0], response_mask=plus_minus[1], index=plus_minus[2], config=cfg)
    adv_01, _ = fn(token_level_rewards=zero_one[0], response_mask=zero_one[1], index=zero_one[2], config=cfg)
    torch.testing.assert_close(adv_pm, adv_01)
    verl_adv, _ = core_algos.compute_grpo_outcome_advantage(zero_one[0], zero_one[1], zero_one[2])
    torch.testing.assert_close(adv_01, verl_adv * math.sqrt(4 / 3), rtol=2e-5, atol=2e-5)
    # an all-solved group (+1 each) and a none-solved group (-1 each) carry no GRPO signal
    success, perm = plus_minus[3], plus_minus[4]
    uniform = torch.isin(perm, torch.arange(8))
    assert adv_pm[uniform].abs().max() == 0 and bool(success[:4].all()) and not bool(success[4:8].any())


def test_defaults_and_hydra_plus_overrides():
    """The config verl builds from `+algorithm.asym.*` reaches the estimator; no section = asym defaults."""
    from hydra import compose, initialize_config_module

    with initialize_config_module(config_module="verl.trainer.config", version_base=None):
        cfg = compose("ppo_trainer", overrides=["algorithm.adv_estimator=asym_grpo", "+algorithm.asym.variant=asym",
                                                "+algorithm.asym.alpha_pos=0.3", "+algorithm.asym.alpha_neg=0.75"])
    assert adapter.read_asym_config(cfg.algorithm) == ("asym", 0.3, 0.75)
    assert adapter.read_asym_config(OmegaConf.create({"gamma": 1.0})) == ("asym", 0.9, 0.4)
    assert adapter.read_asym_config(None) == ("asym", 0.9, 0.4)
    assert adapter.read_asym_config(_config(variant="neg-only")) == ("neg-only", 0.0, 0.5)


@pytest.mark.parametrize("asym, match", [({"variant": "nope"}, "unknown estimator 'nope'; known:"),
                                         ({"variant": "grpo", "alpha_pos": 0.9}, "fixes alpha_pos"),
                                         ({"alpha_neg": -1}, "alpha_neg must be")])
def test_bad_config_raises_one_line(asym, match):
    rewards, mask, uids, _, _ = _verl_batch(pads=0)
    with pytest.raises(ValueError, match=match):
        adapter.compute_asym_grpo_advantage(rewards, mask, index=uids, config=_config(**asym))


def test_bad_inputs_raise():
    rewards, mask, uids, _, _ = _verl_batch(pads=0)
    with pytest.raises(ValueError, match="uid"):
        adapter.compute_asym_grpo_advantage(rewards, mask, index=None, config=_config())
    missing = uids.copy()
    missing[1] = None
    with pytest.raises(ValueError, match="missing uid"):
        adapter.compute_asym_grpo_advantage(rewards, mask, index=missing, config=_config())
    with pytest.raises(ValueError, match="uids for"):
        adapter.compute_asym_grpo_advantage(rewards, mask, index=uids[:-1], config=_config())
    with pytest.raises(ValueError, match="must both be"):
        adapter.compute_asym_grpo_advantage(rewards, mask[:, :-1], index=uids, config=_config())
    bad = rewards.clone()
    bad[0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        adapter.compute_asym_grpo_advantage(bad, mask, index=uids, config=_config())


def test_only_pad_rows_give_zero_without_nan():
    adv, _ = adapter.compute_asym_grpo_advantage(torch.zeros(3, 4), torch.zeros(3, 4), index=np.array(["pad1"] * 3, dtype=object),
                                                 config=_config())
    assert adv.abs().max() == 0


def test_registration_is_idempotent_and_guarded():
    registry = core_algos.ADV_ESTIMATOR_REGISTRY
    adapter.register()  # again: a no-op
    assert registry["asym_grpo"] is adapter.compute_asym_grpo_advantage
    reloaded = importlib.reload(adapter)  # a reload replaces our own older function
    assert registry["asym_grpo"] is reloaded.compute_asym_grpo_advantage
    original = registry["asym_grpo"]
    registry["asym_grpo"] = lambda **kw: None  # someone else's estimator under our name
    try:
        with pytest.raises(ValueError, match="already has an advantage estimator 'asym_grpo'"):
            adapter.register()
    finally:
        registry["asym_grpo"] = original
