"""tinyrlvr.config: EngineConfig.create accepts the documented settings and rejects bad input with
one-line ValueErrors; the module imports without torch."""

import subprocess
import sys

import pytest

from tinyrlvr.config import DEFAULT_SETTINGS, SMOKE_OVERRIDES, EngineConfig


def test_create_resolves_alphas_and_accepts_presets():
    cfg = EngineConfig.create(estimator="asym", alpha_pos=0.9, alpha_neg=0.4, seed=3, steps=5)
    assert (cfg.alpha_pos, cfg.alpha_neg) == (0.9, 0.4)
    assert EngineConfig.create(estimator="grpo").alpha_pos == 0.5  # the estimator's fixed value
    assert EngineConfig.create(estimator="pos-only", alpha_pos=0.7).alpha_neg == 0.0
    smoke = EngineConfig.create(estimator="reinforce", **{**DEFAULT_SETTINGS, **SMOKE_OVERRIDES, "tiers": [1, 2]})
    assert smoke.tiers == (1, 2)  # lists from YAML presets become tuples
    assert smoke.base_model_key() != EngineConfig.create(estimator="reinforce").base_model_key()
    assert smoke.base_model_key() == smoke.replace(estimator="grpo", seed=9, lr=1e-3).base_model_key()
    assert set(DEFAULT_SETTINGS).isdisjoint({"estimator", "alpha_pos", "alpha_neg", "seed", "steps", "entropy_coeff",
                                             "clip_low", "clip_high", "loss_agg", "device", "threads", "cache_dir"})


@pytest.mark.parametrize("kwargs, fragment", [
    ({"estimator": "nope"}, "unknown estimator 'nope'"),
    ({"estimator": "grpo", "stepz": 3}, "unknown engine setting(s) stepz"),
    ({"estimator": "grpo", "steps": 0}, "steps must be >= 1"),
    ({"estimator": "grpo", "steps": "10"}, "steps must be an integer"),
    ({"estimator": "grpo", "steps": 2.5}, "steps must be an integer"),
    ({"estimator": "grpo", "lr": "fast"}, "lr must be a number"),
    ({"estimator": "grpo", "zero_uniform_groups": 1}, "must be true or false"),
    ({"estimator": "asym", "alpha_pos": -0.1}, "alpha_pos must be a finite number >= 0"),
    ({"estimator": "asym", "alpha_neg": float("nan")}, "alpha_neg must be a finite number >= 0"),
    ({"estimator": "grpo", "alpha_pos": 0.9}, "fixes alpha_pos=0.5"),
    ({"estimator": "grpo", "loss_agg": "seq-mean"}, "loss_agg must be one of"),
    ({"estimator": "grpo", "group_size": 1}, "group_size must be >= 2"),
    ({"estimator": "grpo", "tiers": [1, 9]}, "tiers must be distinct digit counts"),
    ({"estimator": "grpo", "tiers": (1, 2)}, "warmup_tier_weights needs one positive weight per tier"),
    ({"estimator": "grpo", "tiers": (1, 2), "warmup_tier_weights": (1, 1)}, "warmup_corrupt_frac needs one value in [0, 1] per tier"),
    ({"estimator": "grpo", "warmup_corrupt_frac": (0.1, 0.2, 0.3, 1.5)}, "warmup_corrupt_frac needs one value in [0, 1] per tier"),
    ({"estimator": "grpo", "clip_low": 1.5}, "clip_low must be in [0, 1]"),
    ({"seed": 1}, "'estimator' is required"),
])
def test_create_rejects_bad_input_with_one_line(kwargs, fragment):
    with pytest.raises(ValueError) as err:
        EngineConfig.create(**kwargs)
    assert fragment in str(err.value)
    assert "\n" not in str(err.value)


def test_config_module_does_not_import_torch():
    code = "import sys, tinyrlvr.config; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)
