"""The verl overrides and environment of a CPU trial, and of the embedded task on verl.

GPU-only settings of a CPU preset are refused at plan time by ``experiments.presets`` (one line, exit 2).

``task_overrides`` points a rendered trial (``render.render_overrides``) at the embedded task: the
exported model and task files, the exact reward, float32 (any device: ``cpu-tiny`` on one GPU is
``scripts/gpu_check.sh``'s sweep). ``cpu_overrides`` adds verl's CPU mode: FSDP2, one process of each
kind, a private Ray with one logical GPU (a multi-node trial joins the cluster's logical GPUs, one
training process per node). Everything else stays as rendered for a GPU.
"""

from __future__ import annotations

import os
from typing import Mapping, Sequence

from backends.verl.cpu import ENABLE_ENV, PLATFORM_NAME, PLUGIN_MODULE, ROLLOUT_ONLY_ENV
from backends.verl.cpu.assets import TRAIN_SOURCE, VERL_ARCHITECTURE, assets_for, engine_config

REWARD_MODULE = "pkg://backends.verl.cpu.reward"
RAY_LOGICAL_CPUS = 16
# verl's token budgets per micro-batch (use_dynamic_bsz), rendered for GPU memory as 2x / 3x one
# sequence: on the CPU that splits cpu-tiny's 16 rollouts into 8 update and 6 log-prob micro-batches,
# each paying FSDP's fixed cost. [ours] a CPU preset's batch goes in one micro-batch (same gradient:
# verl weighs micro-batches by their tokens); 16k tokens of a small model is little memory.
CPU_TOKEN_BUDGET = 16384
TOKEN_BUDGET_KEYS = ("actor_rollout_ref.actor.ppo_max_token_len_per_gpu",
                     "actor_rollout_ref.rollout.log_prob_max_token_len_per_gpu")


def _replace(overrides: Sequence[str], changes: Mapping[str, str]) -> list[str]:
    """Overrides with the values of ``changes`` keys replaced in place (a key must exist)."""
    out, seen = [], set()
    for item in overrides:
        key = item.split("=", 1)[0]
        if key in changes:
            item = f"{key}={changes[key]}"
            seen.add(key)
        out.append(item)
    missing = sorted(set(changes) - seen)
    if missing:
        raise KeyError(f"CPU rendering expected rendered keys {', '.join(missing)}")
    return out


def task_overrides(overrides: Sequence[str], model_dir: str, data_dir: str, train_source: str,
                   val_sources: Sequence[str]) -> list[str]:
    """The embedded task on verl (any device): the exported model, the task files, the exact reward."""

    data = data_dir.rstrip("/")
    out = _replace(overrides, {
        "actor_rollout_ref.model.path": model_dir,
        "actor_rollout_ref.model.enable_gradient_checkpointing": "false",  # tiny model: not worth it
        "actor_rollout_ref.model.use_remove_padding": "false",  # verl's unpadding patches cover other models
        "data.train_files": f"[{data}/{train_source}.parquet]",
        "data.val_files": "[" + ",".join(f"{data}/{s}.parquet" for s in sorted(val_sources)) + "]",
        "reward.custom_reward_function.path": REWARD_MODULE,
    })
    return out + [
        f"+actor_rollout_ref.model.override_config.architectures=[{VERL_ARCHITECTURE}]",
        # float32 throughout: the export's pinned PAD/BOS logits (-1e4, assets.py) need it to stay
        # far below the real ones (bf16 rounding lets them through), and bf16 on a CPU is slow anyway
        "+actor_rollout_ref.actor.fsdp_config.mixed_precision={param_dtype:fp32,reduce_dtype:fp32,buffer_dtype:fp32}",
        "actor_rollout_ref.rollout.dtype=float32",
    ]


def cpu_overrides(overrides: Sequence[str], multi_node: bool = False) -> list[str]:
    """verl's CPU mode on top of a rendered trial (see the module docstring). A multi-node trial's
    job joins the cluster, whose nodes declare their own (logical) CPUs and GPUs: Ray refuses
    ``num_cpus`` / ``num_gpus`` when ``ray.init`` connects to an existing cluster."""
    budgets = {key: str(CPU_TOKEN_BUDGET) for key in TOKEN_BUDGET_KEYS}
    out = _replace(overrides, budgets) + [
        "actor_rollout_ref.actor.strategy=fsdp2",  # FSDP1's sync_module_states needs a GPU
        "actor_rollout_ref.ref.strategy=fsdp2",
        "critic.strategy=fsdp2",
        "actor_rollout_ref.actor.fsdp_config.use_torch_compile=false",
        "actor_rollout_ref.actor.use_torch_compile=false",
        "actor_rollout_ref.rollout.agent.num_workers=1",
        "reward.num_workers=1",
        "data.dataloader_num_workers=0",
        "trainer.device=cpu",
        "transfer_queue.backend.SimpleStorage.num_data_storage_units=1",  # default 8 actors
    ]
    if not multi_node:  # a private Ray (rendered address=local)
        out += [
            "+ray_kwargs.ray_init.num_gpus=1",  # logical: verl places its worker on a GPU bundle
            # logical CPUs: verl's ~10 actors each ask for one to be scheduled; two real cores run them all
            f"ray_kwargs.ray_init.num_cpus={RAY_LOGICAL_CPUS}",
            "+ray_kwargs.ray_init.include_dashboard=false",
        ]
    return out


def cpu_env() -> dict[str, str]:
    """What every process of a CPU trial needs: the platform switch and a loud plugin import."""
    from backends.verl.execution import ESTIMATOR_PLUGIN  # deferred: numpy, torch

    return {ENABLE_ENV: PLATFORM_NAME, "VERL_USE_EXTERNAL_MODULES": f"{ESTIMATOR_PLUGIN},{PLUGIN_MODULE}",
            "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}


def rollout_only_env() -> dict[str, str]:
    """A GPU trial served by our rollout (the embedded task, ``gpu_check.sh``): the rollout's
    registrations without the CPU platform, in every verl process."""
    from backends.verl.execution import ESTIMATOR_PLUGIN  # deferred: numpy, torch

    return {ROLLOUT_ONLY_ENV: "1", "VERL_USE_EXTERNAL_MODULES": f"{ESTIMATOR_PLUGIN},{PLUGIN_MODULE}"}


def render_embedded_task(benchmarks: Sequence[str], overrides: Sequence[str]) -> list[str]:
    """``task_overrides`` with the cached export of the engine's base model (``assets.assets_for``);
    ``benchmarks``: the trial's validation sets (the renderer's ``val_n`` keys)."""

    assets = assets_for(engine_config())
    return task_overrides(overrides, str(assets.model_dir), str(assets.data_dir), TRAIN_SOURCE, sorted(benchmarks))


def trial_cpus() -> float:
    """What a CPU trial reserves on the sweep's Ray: its ~10 processes share two cores, so two trials
    never share a 2-core machine; a bigger machine runs several at once."""

    return float(min(2, os.cpu_count() or 1))
