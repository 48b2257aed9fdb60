"""verl's real trainer on a CPU: the CPU mode of the verl backend (CPU presets only, e.g. ``cpu-tiny``).

A CPU trial runs verl 0.9.1's own ``main_ppo`` (TaskRunnerV1, our trainer subclass, agent loop,
reward loop, FSDP2 actor update, naive weight sync) with four registrations made through verl's
extension points in every verl process (``plugin.register``, loaded by the ``verl.plugins`` entry
point and ``VERL_USE_EXTERNAL_MODULES``, active only when ``VERL_PLATFORM=asym_cpu``):

- ``platform.PlatformCPU`` in ``PlatformRegistry`` (device "cpu", gloo, logical Ray GPUs);
- verl's FSDP engines in ``EngineRegistry`` for device "cpu" (registered for cuda/npu only);
- ``rollout.CPURolloutReplica`` in ``RolloutReplicaRegistry`` and ``rollout.CPUServerAdapter`` in
  the rollout adapter table, as ``rollout.name=asym_cpu``;
- the one patch (``patch.py``): the process-group backend string, guarded by verl's version.

``assets`` makes the ``cpu-tiny`` model (the embedded engine's base model exported to GPT-2) and its
task (verl parquet); ``reward`` scores it exactly; ``settings`` renders the CPU overrides and rejects
GPU-only settings. This package's ``__init__`` imports neither verl nor torch.
"""

from experiments.presets.schema import CPU_ROLLOUT_NAME as PLATFORM_NAME  # VERL_PLATFORM and rollout.name
ENABLE_ENV = "VERL_PLATFORM"
# our rollout alone (no CPU platform): a GPU trial of the embedded task served by it (gpu_check.sh)
ROLLOUT_ONLY_ENV = "ASYM_CPU_ROLLOUT_ONLY"
PLUGIN_MODULE = "backends.verl.cpu.plugin"
__all__ = ["ENABLE_ENV", "PLATFORM_NAME", "PLUGIN_MODULE", "ROLLOUT_ONLY_ENV"]
