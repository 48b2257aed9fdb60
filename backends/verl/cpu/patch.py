"""The one patch of verl the CPU mode needs, isolated here and guarded by verl's version.

``verl.utils.distributed.initialize_global_process_group_ray`` (verl 0.9.1, line 89) builds the
process-group backend as ``f"cpu:gloo,{get_device_name()}:{get_nccl_backend()}"``. On a CPU
platform that is ``"cpu:gloo,cpu:gloo"``, which ``torch.distributed.init_process_group`` rejects
(a device type may appear once). verl has no setting for it, so the function is wrapped to pass
``backend="cpu:gloo"`` when the caller gave none. ``engine_workers`` imports the function by name,
so the wrapper is bound in both modules (``verl.plugins`` run on ``import verl``, before any worker
module is imported; the second binding covers a module imported earlier).
"""

from __future__ import annotations

import sys

PATCHED_VERL_VERSION = "0.9.1"  # the source read for this patch; another version must be re-checked
CPU_BACKEND = "cpu:gloo"
_MODULES_BINDING_IT = ("verl.utils.distributed", "verl.workers.engine_workers")


def check_verl_version(version: str | None = None) -> None:
    import verl  # deferred: verl

    found = version or verl.__version__
    if found != PATCHED_VERL_VERSION:
        raise RuntimeError(f"asym's verl CPU mode patches verl {PATCHED_VERL_VERSION} "
                           f"(verl.utils.distributed.initialize_global_process_group_ray) but verl {found} "
                           f"is installed; install verl=={PATCHED_VERL_VERSION} or re-check the patch")


def apply() -> None:
    """Wrap ``initialize_global_process_group_ray`` to default to gloo only; idempotent."""
    check_verl_version()
    import verl.utils.distributed as dist_utils  # deferred: verl

    original = dist_utils.initialize_global_process_group_ray
    if getattr(original, "_asym_cpu", False):
        return

    def initialize_global_process_group_ray(timeout_second=None, backend=None):
        return original(timeout_second=timeout_second, backend=backend or CPU_BACKEND)

    initialize_global_process_group_ray._asym_cpu = True  # type: ignore[attr-defined]
    initialize_global_process_group_ray.__wrapped__ = original  # type: ignore[attr-defined]
    for name in _MODULES_BINDING_IT:
        module = sys.modules.get(name)
        if module is not None and hasattr(module, "initialize_global_process_group_ray"):
            module.initialize_global_process_group_ray = initialize_global_process_group_ray
