"""`asym doctor`'s checks: what this machine can run, and why not.

Each check is a small function returning a ``Check`` (name, ok, detail); ``CHECKS`` names them.
Backends declare which checks each of their modes needs (``doctor_needs`` on the backend class:
``embedded``; ``verl-cpu`` and ``verl`` for verl's CPU mode and its vLLM path on GPUs), and
``verdicts`` says per mode whether every needed check passed, with the failed ones as reasons.
Checks that no mode needs (Ray, tracking, the HF cache) only inform. Nothing here starts a
process or writes a file; a running Ray is only joined to read its resources.
"""

from __future__ import annotations

import importlib
import importlib.metadata as md
import importlib.util
import os
import platform
import shutil
import subprocess
import sys
import urllib.request
from dataclasses import asdict, dataclass
from typing import Callable

import psutil

from backends import BACKENDS
from common.redact import redact
from experiments.tracking_names import default_tracking_uri

PYTHON_RANGE = ((3, 11), (3, 13))  # pyproject's requires-python: >=3.11,<3.13
VERL_VERSION = "0.9.1"  # the one verl the backend (and the CPU mode's patch) supports
VERL_CPU_MODULES = ("transfer_queue", "hydra", "tensordict", "transformers", "torchdata", "datasets", "peft")
GPU_INSTALL = "on a GPU host: pip install -e '.[gpu]'"


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


def _version(dist: str) -> str | None:
    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return None


def _import(module: str):
    """The module, or the one-line reason it does not import."""
    try:
        return importlib.import_module(module)
    except Exception as exc:  # ImportError, or a broken install failing at import
        return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}".strip()


def check_python() -> Check:
    low, high = PYTHON_RANGE
    ok = low <= sys.version_info[:2] < high
    return Check("python", ok, f"{platform.python_version()} ({'supported' if ok else 'asym needs >=3.11,<3.13'})")


def check_torch() -> Check:
    torch = _import("torch")
    if isinstance(torch, str):
        return Check("torch", False, f"not importable ({torch}); pip install torch==2.13.0 (CPU) first")
    build = f"CUDA {torch.version.cuda}" if torch.version.cuda else "CPU build"
    return Check("torch", True, f"{torch.__version__} ({build})")


def check_torch_cuda() -> Check:
    torch = _import("torch")
    if isinstance(torch, str) or not torch.version.cuda:
        return Check("torch CUDA build", False, "torch is a CPU build (or absent): vLLM and FSDP on GPUs need a "
                                                f"CUDA build; {GPU_INSTALL}")
    return Check("torch CUDA build", True, f"CUDA {torch.version.cuda}")


def check_gpus() -> Check:
    torch = _import("torch")
    count = 0 if isinstance(torch, str) else torch.cuda.device_count()
    if not count:
        return Check("GPUs", False, "no CUDA GPU visible" + ("" if isinstance(torch, str) or torch.version.cuda
                                                             else " (CPU torch cannot see one)"))
    cards = []
    for i in range(count):
        props = torch.cuda.get_device_properties(i)
        cards.append(f"{props.name} {props.total_memory / 2**30:.0f} GiB")
    return Check("GPUs", True, f"{count}: " + ", ".join(cards))


def check_driver() -> Check:
    version_file = "/proc/driver/nvidia/version"
    if os.path.exists(version_file):
        with open(version_file) as f:
            return Check("NVIDIA driver", True, f.readline().strip()[:120])
    if shutil.which("nvidia-smi"):
        out = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=20)
        if out.returncode == 0 and out.stdout.strip():
            return Check("NVIDIA driver", True, out.stdout.strip().splitlines()[0])
    return Check("NVIDIA driver", False, "none found (no /proc/driver/nvidia, no nvidia-smi)")


def _package(name: str, dist: str, why_missing: str) -> Check:
    if importlib.util.find_spec(name) is None:
        return Check(name, False, f"not installed; {why_missing}")
    return Check(name, True, f"{_version(dist) or 'installed'}")


def check_vllm() -> Check:
    return _package("vllm", "vllm", f"verl's GPU rollouts need it ({GPU_INSTALL})")


def check_flash_attn() -> Check:
    from backends.verl.models import attention_implementation  # deferred: omegaconf

    found = importlib.util.find_spec("flash_attn") is not None
    return Check("flash-attn", found, f"{_version('flash-attn') or 'installed'}; verl trials use flash_attention_2"
                 if found else f"not installed; verl trials use {attention_implementation()} instead")


def check_verl() -> Check:
    verl = _import("verl")
    if isinstance(verl, str):
        return Check("verl", False, f"not importable ({verl}); pip install -e '.[verl]' (CPU) or '.[gpu]' (GPU)")
    version = _version("verl") or getattr(verl, "__version__", "?")
    if version != VERL_VERSION:
        return Check("verl", False, f"{version} installed; asym supports verl {VERL_VERSION} only")
    return Check("verl", True, version)


def check_verl_cpu_stack() -> Check:
    missing = [m for m in VERL_CPU_MODULES if importlib.util.find_spec(m) is None]
    if missing:
        return Check("verl CPU stack", False, f"missing {', '.join(missing)}; pip install -e '.[verl]'")
    return Check("verl CPU stack", True, "TransferQueue, Hydra, tensordict, transformers, ... importable")


def check_verl_pins() -> Check:
    """Installed versions against verl's own requirements (its vllm extra where vLLM is installed)."""
    from backends.verl import pins  # deferred: omegaconf

    if _version("verl") is None:
        return Check("verl pins", False, "verl is not installed")
    gpu = _version("vllm") is not None
    wanted = pins.verl_requirements((pins.VERL_GPU_EXTRA,) if gpu else pins.VERL_CPU_EXTRAS)
    wrong, _missing = pins.installed_clashes(wanted)
    scope = "verl[vllm]" if gpu else "verl's CPU requirements"
    if wrong:
        return Check("verl pins", False, f"against {scope}: " + "; ".join(wrong))
    return Check("verl pins", True, f"installed versions satisfy {scope}")


def check_hf_cache() -> Check:
    from backends.verl.models import hub_cache, hub_offline  # deferred: omegaconf

    offline = " (HF_HUB_OFFLINE=1: nothing is downloaded)" if hub_offline() else ""
    cache = hub_cache()
    return Check("HF cache", True, f"{cache} ({'exists' if cache.is_dir() else 'not created yet'}){offline}")


def check_preset_models() -> Check:
    """Where each GPU preset's base model would come from (missing is a failure only offline)."""
    from backends.verl.models import locate  # deferred: omegaconf
    from experiments.presets import VERL_MODELS, resolve_preset  # deferred: omegaconf

    lines, ok = [], True
    for model in VERL_MODELS:
        settings = resolve_preset(model).settings_dict()
        if settings.get("device") == "cpu":
            continue  # made on first use from the embedded base model
        where, detail = locate(str(settings["hf_path"]))
        ok &= where != "missing"
        lines.append(f"{model}: {where}" + (f" ({detail})" if where == "missing" else ""))
    return Check("preset models", ok, "; ".join(lines))


def check_ray() -> Check:
    """A running Ray (RAY_ADDRESS, or one started on this node) and its resources; none is fine:
    a sweep starts its own local one."""
    address = os.environ.get("RAY_ADDRESS")
    if not address and not os.path.exists("/tmp/ray/ray_current_cluster"):
        return Check("Ray", True, f"{_version('ray')}; no running cluster (a sweep starts a local one)")
    import ray  # deferred: ray

    try:
        ray.init(address=address or "auto", logging_level="ERROR", log_to_driver=False, configure_logging=False)
        resources = ray.cluster_resources()
    except Exception as exc:
        return Check("Ray", True, f"{_version('ray')}; a cluster is recorded but does not answer "
                                  f"({type(exc).__name__}); a sweep starts a local one")
    finally:
        ray.shutdown()
    shown = ", ".join(f"{k} {v:g}" for k, v in sorted(resources.items()) if k in ("CPU", "GPU", "memory") or k.startswith("asym"))
    return Check("Ray", True, f"{_version('ray')}; running cluster at {address or 'auto'}: {shown}")


def check_tracking() -> Check:
    uri = default_tracking_uri()
    if not uri.startswith(("http://", "https://")):
        return Check("tracking", True, f"{redact(uri)} (a local store)")
    try:
        with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=5) as reply:
            answered = reply.status == 200
    except Exception as exc:
        return Check("tracking", False, f"{redact(uri)} does not answer ({type(exc).__name__}); start the server "
                                        "or unset MLFLOW_TRACKING_URI")
    return Check("tracking", answered, f"{redact(uri)} answers" if answered else f"{redact(uri)}: /health not OK")


def check_machine() -> Check:
    return Check("machine", True, f"{os.cpu_count()} CPUs, {psutil.virtual_memory().total / 2**30:.0f} GiB RAM, "
                                  f"{platform.system()} {platform.machine()}")


CHECKS: dict[str, Callable[[], Check]] = {
    "python": check_python, "machine": check_machine, "torch": check_torch, "torch CUDA build": check_torch_cuda,
    "GPUs": check_gpus, "NVIDIA driver": check_driver, "vllm": check_vllm, "flash-attn": check_flash_attn,
    "verl": check_verl, "verl CPU stack": check_verl_cpu_stack, "verl pins": check_verl_pins,
    "HF cache": check_hf_cache, "preset models": check_preset_models, "Ray": check_ray, "tracking": check_tracking,
}


def run_checks(names=None) -> list[Check]:
    """Every check (or those named), in ``CHECKS`` order; a check that raises is a failed check."""
    out = []
    for name, check in CHECKS.items():
        if names is not None and name not in names:
            continue
        try:
            out.append(check())
        except Exception as exc:
            out.append(Check(name, False, f"the check failed: {type(exc).__name__}: {exc}"))
    return out


def backend_needs() -> dict[str, tuple[str, ...]]:
    """Each backend mode and the checks it needs, as the backends declare them (``doctor_needs``)."""

    needs: dict[str, tuple[str, ...]] = {}
    for spec in BACKENDS.values():
        module, _, cls = spec.cls.partition(":")
        needs.update(getattr(importlib.import_module(module), cls).doctor_needs)
    unknown = sorted({n for names in needs.values() for n in names} - set(CHECKS))
    if unknown:
        raise RuntimeError(f"a backend needs checks that do not exist: {', '.join(unknown)}")
    return needs


def verdicts(checks: list[Check], needs: dict[str, tuple[str, ...]]) -> dict[str, list[str]]:
    """Per backend mode, the reasons it cannot run here (empty: it can)."""
    by_name = {c.name: c for c in checks}
    return {mode: [f"{n}: {by_name[n].detail}" for n in names if not by_name[n].ok] for mode, names in needs.items()}


def as_json(checks: list[Check], reasons: dict[str, list[str]], chosen: str) -> dict:
    return {"checks": [asdict(c) for c in checks],
            "backends": {mode: {"can_run": not why, "reasons": why} for mode, why in reasons.items()},
            "chosen": chosen, "ok": not reasons[chosen]}
