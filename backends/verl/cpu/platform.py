"""verl's platform for a machine without an accelerator: device "cpu", collectives over gloo.

Registered as ``PlatformRegistry`` platform ``asym_cpu`` (selected by ``VERL_PLATFORM=asym_cpu``)
by ``plugin.register``. What verl asks of a platform and what the CPU answers:

- ``device_name`` "cpu": FSDP2 meshes, ``tensor.to(get_device_name())`` and autocast run on the CPU;
- ``current_device()`` is ``torch.device("cpu")``, not an index: verl moves tensors with
  ``.to(get_device_id())`` and an int there means ``cuda:<int>``;
- ``device_module`` is ``torch.cpu`` plus the few CUDA-only calls verl makes (``empty_cache``,
  ``mem_get_info``, RNG state, memory counters) as CPU equivalents or no-ops;
- Ray resource "GPU": verl places its workers on GPU bundles, so the private Ray of a CPU trial
  declares logical GPUs (``+ray_kwargs.ray_init.num_gpus``); nothing runs on them.
"""

from __future__ import annotations

import contextlib
import time
import types
from typing import Any, Optional

import psutil
import torch
from verl.plugin.platform import PlatformBase

PLATFORM_NAME = "asym_cpu"


def _mem_get_info(device: Any = None) -> tuple[int, int]:
    vm = psutil.virtual_memory()
    return int(vm.available), int(vm.total)


def _zero(*args: Any, **kwargs: Any) -> int:
    return 0


def _none(*args: Any, **kwargs: Any) -> None:
    return None


class _Event:
    """``torch.cuda.Event`` stand-in: timings are wall clock, synchronisation is immediate."""

    def __init__(self, enable_timing: bool = False, **kwargs: Any):
        self._t = None

    def record(self, stream: Any = None) -> None:
        self._t = time.perf_counter()

    def synchronize(self) -> None:
        return None

    def wait(self, stream: Any = None) -> None:
        return None

    def query(self) -> bool:
        return True

    def elapsed_time(self, end: "_Event") -> float:
        return 1000.0 * ((end._t or 0.0) - (self._t or 0.0))


def cpu_device_module() -> types.ModuleType:
    """``torch.cpu`` with the CUDA-only functions verl 0.9.1 calls through ``get_torch_device()``."""
    module = types.ModuleType("asym_cpu_device")
    for name in dir(torch.cpu):
        if not name.startswith("__"):
            setattr(module, name, getattr(torch.cpu, name))
    module.is_available = lambda: True
    module.current_device = lambda: torch.device("cpu")
    module.set_device = _none
    module.empty_cache = _none
    module.ipc_collect = _none
    module.mem_get_info = _mem_get_info
    module.memory_allocated = _zero
    module.memory_reserved = _zero
    module.max_memory_allocated = _zero
    module.max_memory_reserved = _zero
    module.reset_peak_memory_stats = _none
    module.set_per_process_memory_fraction = _none
    module.get_rng_state = lambda device=None: torch.get_rng_state()
    module.set_rng_state = lambda state, device=None: torch.set_rng_state(state)
    module.manual_seed = torch.manual_seed
    module.manual_seed_all = torch.manual_seed
    module.get_device_name = lambda device=None: "cpu"
    module.Event = _Event
    return module


class PlatformCPU(PlatformBase):
    """verl's ``PlatformBase`` for plain CPUs (see the module docstring)."""

    _module = None

    @property
    def device_name(self) -> str:
        return "cpu"

    @property
    def vendor_name(self) -> str:
        return "cpu"

    @property
    def device_module(self) -> types.ModuleType:
        if PlatformCPU._module is None:
            PlatformCPU._module = cpu_device_module()
        return PlatformCPU._module

    def is_available(self) -> bool:
        return True

    def is_platform_available(self, use_smi_check: bool = False) -> bool:
        return False  # never auto-detected: only VERL_PLATFORM=asym_cpu selects it

    def current_device(self) -> torch.device:  # type: ignore[override]
        return torch.device("cpu")

    def device_count(self) -> int:
        return 1

    def set_device(self, device_index: int) -> None:
        return None

    def synchronize(self, device_index: Optional[int] = None) -> None:
        return None

    def manual_seed(self, seed: int) -> None:
        torch.manual_seed(seed)

    def manual_seed_all(self, seed: int) -> None:
        torch.manual_seed(seed)

    def set_allocator_settings(self, settings: str) -> None:
        return None

    def empty_cache(self) -> None:
        return None

    def get_device_capability(self, device_index: int = 0) -> tuple[Optional[int], Optional[int]]:
        return None, None

    def communication_backend_name(self) -> str:
        return "gloo"

    def visible_devices_envvar(self) -> str:
        return "CUDA_VISIBLE_DEVICES"  # Ray sets it for the logical GPUs; torch ignores it here

    @contextlib.contextmanager
    def nvtx_range(self, msg: str):
        yield

    def profiler_start(self) -> None:
        return None

    def profiler_stop(self) -> None:
        return None

    def ray_resource_name(self) -> str:
        return "GPU"

    def ray_resource_options(self, num_gpus: float) -> dict[str, Any]:
        return {"num_gpus": num_gpus}

    def ray_noset_envvars(self) -> list[str]:
        return []

    def is_ipc_supported(self) -> bool:
        return False

    def cudart(self) -> Any:
        return None
