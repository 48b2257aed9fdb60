"""Declared studies and model presets: the paper's values (spec sections 6-7) and the typed YAML layer.

Checked against ``shared/paper/spec.md`` (App G batch/length values, Table 2 rows) and against the
real OmegaConf schema merge and the embedded engine's own ``EngineConfig`` validation.
"""

from __future__ import annotations

import re

import pytest

from experiments import presets
from experiments.plan import plan
from experiments.spec import Method, Study, TrialSpec
from experiments.studies import STUDIES, get_study, study_sources

VERL_READS = ("hf_path", "train_batch_size", "ppo_mini_batch_size", "rollout_n", "max_prompt_length",
              "max_response_length", "lr", "ppo_epochs", "eval_every", "eval_temperature", "n_gpus_per_node",
              "nnodes", "enable_thinking", "val_n", "gpus_per_trial")


def test_registry_lists_the_studies_and_rejects_unknown_names():
    assert list(STUDIES) == ["isolation", "flip", "grid", "main", "backbones", "kappa", "kappa-flip", "comparators",
                            "schedules"]
    with pytest.raises(ValueError, match=r"unknown study 'nope'; known: isolation, flip, grid, main"):
        get_study("nope")


@pytest.mark.parametrize("name", list(STUDIES))
def test_every_method_has_a_source(name):
    study = get_study(name)
    sources = study_sources(name)
    for method in study.methods:
        assert method.label in sources, f"{name}: no source for {method.label}"
    for label, source in sources.items():
        # [ext]: a value from another paper, named in the source text (the comparators study)
        assert re.search(r"\[(v2|v1\*|der|NF|ext)[],\s]", source), f"{name}: {label}'s source has no spec tag"


def test_paper_backbone_presets_carry_app_g_values():
    q3 = presets.resolve_preset("qwen3-4b").settings_dict()
    assert (q3["train_batch_size"], q3["ppo_mini_batch_size"], q3["max_response_length"]) == (128, 64, 4096)
    assert q3["lr"] == 2e-6 and q3["rollout_n"] == 8 and q3["enable_thinking"] is False
    assert q3["eval_every"] == 10 and q3["eval_temperature"] == 0.4
    assert dict(q3["val_n"]) == {"math500": 5, "olympiadbench": 5, "aime24": 10, "aime25": 10, "amc23": 10}
    assert (q3["n_gpus_per_node"], q3["nnodes"], q3["gpus_per_trial"]) == (4, 1, 4)
    m15 = presets.resolve_preset("qwen2.5-math-1.5b").settings_dict()
    assert (m15["train_batch_size"], m15["ppo_mini_batch_size"], m15["max_response_length"]) == (512, 128, 2560)
    for model in presets.VERL_MODELS:
        settings = presets.resolve_preset(model).settings_dict()
        assert set(VERL_READS) <= set(settings), model
        assert not set(settings) & {"steps", "clip", "entropy_coeff"}  # those are TrialSpec fields


def test_embedded_preset_is_the_engines_default_settings():
    from tinyrlvr.config import DEFAULT_SETTINGS

    preset = presets.resolve_preset("embedded-tiny")
    settings = preset.settings_dict()
    assert set(settings) == set(DEFAULT_SETTINGS)
    for key, value in DEFAULT_SETTINGS.items():
        assert settings[key] == (tuple(value) if isinstance(value, list) else value), key


def _write(tmp_path, text, name="cfg.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_user_yaml_overrides_shared_and_per_model_values(tmp_path):
    cfg = _write(tmp_path, "lr: 1.0e-6\nqwen2.5-math-1.5b:\n  train_batch_size: 256\nval_n:\n  aime24: 16\n")
    trials = plan("isolation", backend="verl", config_file=cfg)
    by_model = {t.model: t.settings_dict() for t in trials}
    assert by_model["qwen3-4b"]["lr"] == 1e-6 and by_model["qwen2.5-math-1.5b"]["lr"] == 1e-6
    assert by_model["qwen2.5-math-1.5b"]["train_batch_size"] == 256
    assert by_model["qwen3-4b"]["train_batch_size"] == 128
    assert dict(by_model["qwen3-4b"]["val_n"])["aime24"] == 16
    assert dict(by_model["qwen3-4b"]["val_n"])["math500"] == 5


def test_user_yaml_overrides_embedded_engine_fields_and_trial_keys(tmp_path):
    cfg = _write(tmp_path, "d_model: 64\ntiers: [1, 2, 3]\nwarmup_tier_weights: [3, 2, 1]\nwarmup_corrupt_frac: [0.1, 0.2, 0.3]\nsteps: 7\nclip: 0.1\n")
    trial = plan("main", config_file=cfg)[0]
    settings = trial.settings_dict()
    assert settings["d_model"] == 64 and settings["tiers"] == (1, 2, 3)
    assert settings["warmup_tier_weights"] == (3.0, 2.0, 1.0)
    assert trial.steps == 7 and trial.clip_low == 0.1 and trial.clip_high == 0.1
    hash(trial)


@pytest.mark.parametrize("text, backend, pattern", [
    ("lr_typo: 1\n", "verl", r"unknown key 'lr_typo' for model 'qwen3-4b'; known: hf_path"),
    ("train_batch_size: many\n", "verl", r"key 'train_batch_size'.*could not be converted to Integer"),
    ("enable_thinking: maybe\n", "verl", r"key 'enable_thinking'"),
    ("qwen3-4b:\n  ppo_mini_batch_size: 1.5\n", "verl", r"cfg.yaml \[qwen3-4b\]: key 'ppo_mini_batch_size'"),
    ("val_n:\n  gsm8k: 4\n", "verl", r"val_n has unknown benchmark 'gsm8k'"),
    ("ppo_mini_batch_size: 48\n", "verl", r"train_batch_size \(128\) must be a multiple of ppo_mini_batch_size \(48\)"),
    ("n_gpus_per_node: 8\ngpus_per_trial: 4\n", "verl", r"gpus_per_trial \(4\) must equal n_gpus_per_node \* nnodes \(8\)"),
    ("d_modle: 64\n", "embedded", r"unknown key 'd_modle' for model 'embedded-carry'"),
    ("d_model: wide\n", "embedded", r"key 'd_model'"),
    ("n_heads: 3\n", "embedded", r"preset embedded-carry: d_model \(128\) must be divisible by n_heads \(3\)"),
    ("steps: 0\n", "embedded", r"steps must be >= 1"),
    ("- 1\n- 2\n", "embedded", r"must be a mapping"),
    ("lr: [1,\n", "embedded", r"cfg.yaml:2: not valid YAML"),
])
def test_bad_user_yaml_is_one_line_naming_the_key(tmp_path, text, backend, pattern):
    cfg = _write(tmp_path, text)
    with pytest.raises(ValueError, match=pattern) as info:
        plan("main", backend=backend, config_file=cfg)
    assert "\n" not in str(info.value)


def test_missing_or_unreadable_config_file(tmp_path):
    with pytest.raises(ValueError, match=r"config file .*nope.yaml does not exist"):
        plan("main", config_file=tmp_path / "nope.yaml")
    with pytest.raises(ValueError, match=r"config file .*"):
        plan("main", config_file=tmp_path)  # a directory
    binary = tmp_path / "bin.yaml"
    binary.write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(ValueError, match=r"config file"):
        plan("main", config_file=binary)


def test_gpus_per_trial_on_one_node_sets_the_nodes_gpus():
    settings = plan("main", backend="verl", overrides={"gpus_per_trial": 2})[0].settings_dict()
    assert settings["gpus_per_trial"] == 2 and settings["n_gpus_per_node"] == 2


def test_model_must_fit_the_backend():
    with pytest.raises(ValueError, match=r"model 'qwen3-4b' does not run on the embedded backend; use one of: embedded-carry, embedded-tiny"):
        plan("main", models=["qwen3-4b"])
    with pytest.raises(ValueError, match=r"model 'embedded-tiny' does not run on the verl backend"):
        plan("main", backend="verl", models=["embedded-tiny"])
    with pytest.raises(ValueError, match=r"unknown model 'llama'; known: embedded-carry, embedded-tiny, embedded-kappa-neg, qwen3-4b"):
        plan("main", backend="verl", models=["llama"])
    with pytest.raises(ValueError, match=r"unknown backend 'tpu'; known: embedded, verl"):
        plan("main", backend="tpu")


def test_spec_objects_reject_bad_values():
    # A Method is checked once, where it enters: by the planner (and a study file's loader).
    def one(method):
        return plan(Study("s", "s", "s", methods=(method,)))
    with pytest.raises(ValueError, match="unknown loss_agg 'sum'"):
        one(Method("x", "grpo", loss_agg="sum"))
    with pytest.raises(ValueError, match="alpha_pos must be a finite number >= 0"):
        one(Method("x", "asym", alpha_pos=float("nan")))
    good = plan("main")[0]
    for change, pattern in (({"steps": 0}, "steps must be"), ({"seed": -1}, "seed must be"),
                            ({"clip_high": 0.1}, "clip_high 0.1 is below")):
        with pytest.raises(ValueError, match=pattern):
            TrialSpec.from_dict({**good.to_dict(), **change})
    assert TrialSpec.from_dict(good.to_dict()).key == good.key


def test_sections_for_models_outside_the_plan_are_checked_too(tmp_path):
    cfg = _write(tmp_path, "qwen2.5-7b-base:\n  lrr: 1\n")
    with pytest.raises(ValueError, match=r"\[qwen2.5-7b-base\]: unknown key 'lrr'"):
        plan("main", backend="verl", config_file=cfg)


def test_the_backend_registry_names_the_backends_the_presets_name():
    """One set of backend names: the registry (classes, capabilities) and the presets (models) agree."""
    from backends import BACKENDS
    from experiments.presets import MODELS_BY_BACKEND

    assert list(BACKENDS) == list(MODELS_BY_BACKEND)
    with pytest.raises(ValueError, match="unknown backend 'gpu'; known: embedded, verl"):
        from backends import get_backend

        get_backend("gpu")
