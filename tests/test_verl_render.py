"""Rendering a verl trial into Hydra overrides, checked against verl 0.9.1's own config.

- golden files (tests/golden/verl/<study>-<model>.json) pin every override of every trial the
  declared studies plan on their default verl models (ASYM_UPDATE_GOLDEN=1 rewrites them);
- composition: for every study x every verl preset, each distinct override skeleton is composed
  with Hydra from ``verl.trainer.config`` and passed through verl's ``validate_config``; every
  trial's overrides are then parsed with Hydra's own parser and must name keys of that config;
- the estimator mapping, Dr.GRPO's settings, bad input.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from pathlib import Path

import pytest

pytest.importorskip("verl")

from experiments.plan import default_models, plan  # noqa: E402
from experiments.presets import VERL_MODELS  # noqa: E402
from experiments.studies import STUDIES  # noqa: E402
from backends.verl.entry import compose_config, validate  # noqa: E402
from backends.verl.render import RenderPaths, dry_run_fields, render_overrides  # noqa: E402

GOLDEN = Path(__file__).parent / "golden" / "verl"
PATHS = RenderPaths("/data/asym", "/checkpoints")


def rendered(study: str, model: str) -> list[dict]:
    return [{"name": t.name, "label": t.label, "overrides": render_overrides(t, PATHS)}
            for t in plan(study, backend="verl", models=[model])]


CASES = [(s, m) for s in STUDIES for m in default_models(STUDIES[s], "verl")]


@pytest.mark.parametrize("study,model", CASES, ids=[f"{s}-{m}" for s, m in CASES])
def test_golden(study, model):
    path = GOLDEN / f"{study}-{model}.json"
    got = rendered(study, model)
    if os.environ.get("ASYM_UPDATE_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(got, indent=1) + "\n")
    assert path.exists(), f"missing {path}; run with ASYM_UPDATE_GOLDEN=1"
    assert got == json.loads(path.read_text())


def _skeleton(overrides: list[str]) -> tuple:
    """Override keys plus non-numeric values: trials sharing it differ only in numbers/names."""
    out = []
    for item in overrides:
        key, value = item.split("=", 1)
        numeric = re.fullmatch(r"-?[0-9.e+-]+", value) is not None
        out.append((key, None if numeric or key.endswith(("experiment_name", "default_local_dir", "namespace")) else value))
    return tuple(out)


def test_every_trial_of_every_study_and_preset_composes_with_verls_config():
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from omegaconf import OmegaConf

    parser = OverridesParser.create()
    composed: dict[tuple, object] = {}
    checked = 0
    for study in STUDIES:
        for model in VERL_MODELS:
            for trial in plan(study, backend="verl", models=[model]):
                overrides = render_overrides(trial, PATHS)
                skeleton = _skeleton(overrides)
                if skeleton not in composed:
                    config = compose_config(overrides)  # Hydra refuses unknown keys here
                    validate(config)  # verl's own start-up checks
                    composed[skeleton] = config
                config = composed[skeleton]
                for override in parser.parse_overrides(overrides):
                    assert OmegaConf.select(config, override.key_or_group, default="<absent>") != "<absent>", override
                checked += 1
    assert checked == sum(len(plan(s, backend="verl", models=[m])) for s in STUDIES for m in VERL_MODELS)
    assert 3 <= len(composed) <= 90  # distinct skeletons: estimators x loss modes x schedules x models (cpu-tiny adds its own)


def test_composed_values_land_where_verl_reads_them():
    asym = next(t for t in plan("main", backend="verl", models=["qwen3-4b"]) if t.estimator == "asym" and t.alpha_neg == 0.4)
    cfg = compose_config(render_overrides(asym, PATHS))
    assert cfg.algorithm.adv_estimator == "asym_grpo"
    assert dict(cfg.algorithm.asym) == {"variant": "asym", "alpha_pos": 0.9, "alpha_neg": 0.4}
    assert cfg.actor_rollout_ref.actor.optim.lr == 2e-6
    assert cfg.data.train_batch_size == 128 and cfg.actor_rollout_ref.actor.ppo_mini_batch_size == 64
    assert cfg.data.max_response_length == 4096 and cfg.actor_rollout_ref.rollout.n == 8
    assert cfg.actor_rollout_ref.actor.loss_agg_mode == "token-mean"
    assert not cfg.actor_rollout_ref.actor.use_kl_loss and not cfg.algorithm.use_kl_in_reward
    assert list(cfg.trainer.logger) == ["console", "mlflow", "file"]
    assert cfg.trainer.test_freq == 10 and cfg.trainer.resume_mode == "auto"
    assert cfg.trainer.v1.trainer_mode == "asym_sync" and cfg.trainer.use_v1
    assert cfg.actor_rollout_ref.rollout.val_kwargs.temperature == 0.4
    assert dict(cfg.data.asym_val_n) == {"aime24": 10, "aime25": 10, "amc23": 10, "math500": 5, "olympiadbench": 5}
    assert cfg.data.apply_chat_template_kwargs.enable_thinking is False
    assert cfg.ray_kwargs.ray_init.address == "local"
    assert cfg.reward.custom_reward_function.path == "pkg://backends.verl.verifier"


def test_baselines_use_verls_own_settings():
    trials = {t.label: t for t in plan("main", backend="verl", models=["qwen3-4b"])}
    dr = render_overrides(trials["Dr.GRPO"], PATHS)
    assert "algorithm.adv_estimator=grpo" in dr and "algorithm.norm_adv_by_std_in_grpo=false" in dr
    assert "actor_rollout_ref.actor.loss_agg_mode=seq-mean-token-sum-norm" in dr
    assert "actor_rollout_ref.actor.loss_scale_factor=4096" in dr
    grpo = render_overrides(trials["GRPO"], PATHS)
    assert "algorithm.adv_estimator=grpo" in grpo and not any("algorithm.asym" in o for o in grpo)
    assert "actor_rollout_ref.actor.clip_ratio_high=0.28" in render_overrides(trials["Clip-higher"], PATHS)
    assert "actor_rollout_ref.actor.entropy_coeff=0.001" in render_overrides(trials["GRPO + entropy bonus"], PATHS)
    pos = render_overrides(trials["Pos-Only"], PATHS)
    assert "+algorithm.asym.variant=pos-only" in pos and "+algorithm.asym.alpha_neg=0.0" in pos


def test_multi_node_trial_joins_the_cluster_in_its_own_namespace_and_bad_input_is_refused():
    trial = plan("main", backend="verl", models=["qwen3-4b"])[0]
    settings = {**trial.settings_dict(), "nnodes": 2, "gpus_per_trial": 8}
    multi = dataclasses.replace(trial, settings=tuple(sorted(settings.items())))
    overrides = render_overrides(multi, PATHS)
    assert "trainer.nnodes=2" in overrides and not any("address=local" in o for o in overrides)
    assert f"+ray_kwargs.ray_init.namespace=asym-{multi.key}" in overrides
    fields = dry_run_fields(trial, PATHS)
    assert fields["entrypoint"] == ["python", "-m", "backends.verl.entry"]
    assert fields["overrides"] == render_overrides(trial, PATHS)
    with pytest.raises(ValueError, match="backend 'embedded'"):
        render_overrides(dataclasses.replace(trial, backend="embedded"), PATHS)
    with pytest.raises(ValueError, match="lacks verl settings"):
        render_overrides(dataclasses.replace(trial, settings=()), PATHS)


def test_a_cpu_trial_over_two_nodes_joins_the_clusters_logical_gpus():
    """cpu-tiny with nnodes=2: one training process per node, no private Ray (Ray refuses num_cpus /
    num_gpus when joining a cluster); save_every is verl's save_freq; two processes on one node refused."""
    from experiments.parse import parse_set

    (one,) = plan("grid", backend="verl", models=["cpu-tiny"], alpha_pos=[1.0], alpha_neg=[1.0])
    (two,) = plan("grid", backend="verl", models=["cpu-tiny"], alpha_pos=[1.0], alpha_neg=[1.0],
                  axes=(parse_set("nnodes=2"), parse_set("save_every=1")))
    single, multi = render_overrides(one, PATHS), render_overrides(two, PATHS)
    assert "+ray_kwargs.ray_init.address=local" in single and "ray_kwargs.ray_init.num_cpus=16" in single
    assert "trainer.save_freq=50" in single and "trainer.save_freq=1" in multi
    assert "trainer.nnodes=2" in multi and "trainer.n_gpus_per_node=1" in multi and "trainer.device=cpu" in multi
    assert not any(o.split("=")[0].lstrip("+").startswith("ray_kwargs.ray_init.") and "namespace" not in o
                   for o in multi), multi
    assert "save_every" not in dict(one.settings)  # quiet at its default: existing trial keys stay
    with pytest.raises(ValueError, match="one training process per node"):
        plan("grid", backend="verl", models=["cpu-tiny"], alpha_pos=[1.0], alpha_neg=[1.0],
             axes=(parse_set("n_gpus_per_node=2"),))
