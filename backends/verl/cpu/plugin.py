"""Registers the CPU mode in verl's registries, in every verl process, when ``VERL_PLATFORM=asym_cpu``.

Loaded on ``import verl`` through the ``verl.plugins`` entry point (which swallows errors) and,
for a CPU trial, ``VERL_USE_EXTERNAL_MODULES`` (which does not: a broken registration fails the
process that needs it). Without ``VERL_PLATFORM=asym_cpu`` importing it does nothing, so GPU runs
never see the CPU mode; ``ASYM_CPU_ROLLOUT_ONLY=1`` registers our rollout alone (``register_rollout``)
for a GPU trial of the embedded task (``scripts/gpu_check.sh``: verl on CUDA without vLLM).
"""

from __future__ import annotations

import os

from backends.verl.cpu import ENABLE_ENV, PLATFORM_NAME, ROLLOUT_ONLY_ENV, patch


def enabled() -> bool:
    return os.environ.get(ENABLE_ENV, "").strip().lower() == PLATFORM_NAME


def rollout_only() -> bool:
    return os.environ.get(ROLLOUT_ONLY_ENV, "").strip() == "1"


def register_rollout() -> str:
    """Our rollout replica and its worker-side adapter as ``rollout.name=asym_cpu`` (idempotent)."""
    from verl.workers.rollout import base as rollout_base  # deferred: verl
    from verl.workers.rollout.replica import RolloutReplicaRegistry  # deferred: verl

    RolloutReplicaRegistry.register(PLATFORM_NAME, _load_replica)
    rollout_base._ROLLOUT_REGISTRY[(PLATFORM_NAME, "async")] = "backends.verl.cpu.rollout.CPUServerAdapter"
    return rollout_base._ROLLOUT_REGISTRY[(PLATFORM_NAME, "async")]


def register() -> dict[str, str]:
    """All four registrations (idempotent); returns what is registered, for checks and logs."""
    # Order matters: the platform before any verl module that resolves it at import time
    # (verl.workers.engine's FSDP module reads get_device_name() at import).
    from verl.plugin.platform import PlatformRegistry  # deferred: verl

    from backends.verl.cpu.platform import PlatformCPU  # deferred: torch, verl

    patch.apply()  # checks verl's version first
    if PlatformRegistry.get(PLATFORM_NAME) is not PlatformCPU:
        PlatformRegistry.register(PLATFORM_NAME)(PlatformCPU)

    import verl.workers.engine.fsdp.transformer_impl as fsdp_impl  # deferred: verl
    from verl.workers.engine.base import EngineRegistry  # deferred: verl

    engines = EngineRegistry._engines
    for model_type, cls in (("language_model", fsdp_impl.FSDPEngineWithLMHead),
                            ("value_model", fsdp_impl.FSDPEngineWithValueHead)):
        for backend in ("fsdp", "fsdp2"):
            if "cpu" not in engines.get(model_type, {}).get(backend, {}):
                EngineRegistry.register(model_type=model_type, backend=backend, device="cpu")(cls)
    register_rollout()
    return registered()


def _load_replica():
    """Lazy, as verl's own loaders: ``rollout`` imports verl, whose import runs this plugin."""
    from backends.verl.cpu.rollout import CPURolloutReplica  # deferred: ray, torch, verl

    return CPURolloutReplica


def registered() -> dict[str, str]:
    """What verl's registries resolve for the CPU mode in this process (raises when something is missing)."""
    import verl.utils.distributed as dist_utils  # deferred: verl
    from verl.plugin.platform import PlatformRegistry  # deferred: verl
    from verl.workers.engine.base import EngineRegistry  # deferred: verl
    from verl.workers.rollout import base as rollout_base  # deferred: verl
    from verl.workers.rollout.replica import RolloutReplicaRegistry  # deferred: verl

    platform = PlatformRegistry.get(PLATFORM_NAME)
    engine = EngineRegistry._engines["language_model"]["fsdp2"].get("cpu")
    if platform is None or engine is None or (PLATFORM_NAME, "async") not in rollout_base._ROLLOUT_REGISTRY:
        raise RuntimeError("verl's registries lack the asym CPU mode in this process")
    if not getattr(dist_utils.initialize_global_process_group_ray, "_asym_cpu", False):
        raise RuntimeError("verl's process-group backend patch is not applied in this process")
    return {"platform": platform.__name__, "engine": engine.__name__,
            "replica": RolloutReplicaRegistry._registry[PLATFORM_NAME].__name__,
            "adapter": rollout_base._ROLLOUT_REGISTRY[(PLATFORM_NAME, "async")]}


if enabled():
    register()
elif rollout_only():
    register_rollout()
