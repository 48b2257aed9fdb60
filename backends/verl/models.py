"""Where a verl preset's base model comes from: a local folder, the Hugging Face cache, or the Hub.

Checked before Ray starts (``VerlBackend.prepare`` via ``check_model_source``) and reported by
``asym doctor``: a path that does not exist, or a model that is not cached while the Hub is off
(``HF_HUB_OFFLINE=1``), is one line naming what is missing and how to fetch it. The flash-attention
choice (``attention_implementation``) lives here too: flash-attention 2 when importable, else sdpa.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from common.errors import UserError
from experiments.presets.machine import visible_gpus

FLASH_ATTENTION = "flash_attention_2"
SDPA = "sdpa"


def hub_offline(environ=os.environ) -> bool:
    return any(environ.get(k, "").strip().lower() in ("1", "true", "yes", "on")
               for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def looks_like_path(name: str) -> bool:
    """A local path rather than a Hub id (``org/name``): absolute, relative, or ``~``."""
    return name.startswith(("/", "./", "../", "~")) or name.count("/") > 1


def hub_cache(environ=os.environ) -> Path:
    """The Hugging Face hub cache as the environment names it now (huggingface_hub reads it once, at import)."""
    if environ.get("HF_HUB_CACHE"):
        return Path(environ["HF_HUB_CACHE"]).expanduser()
    home = environ.get("HF_HOME") or os.path.join(environ.get("XDG_CACHE_HOME", "~/.cache"), "huggingface")
    return Path(home).expanduser() / "hub"


def cached_snapshot(repo_id: str) -> Path | None:
    """The cached snapshot folder of ``repo_id`` holding its config.json, if the HF cache has one."""
    try:
        from huggingface_hub import try_to_load_from_cache  # deferred: huggingface_hub
    except ImportError:
        return None
    found = try_to_load_from_cache(repo_id, "config.json", cache_dir=hub_cache())
    return Path(found).parent if isinstance(found, str) else None


def locate(name: str) -> tuple[str, str]:
    """(where, detail): ``local`` / ``cache`` / ``hub`` (to be downloaded) / ``missing``."""
    if looks_like_path(name) or Path(name).expanduser().is_dir():
        path = Path(name).expanduser()
        if (path / "config.json").is_file():
            return "local", str(path)
        return "missing", f"{path} is not a folder with a config.json"
    snapshot = cached_snapshot(name)
    if snapshot is not None:
        return "cache", str(snapshot)
    if hub_offline():
        return "missing", f"{name} is not in the Hugging Face cache and HF_HUB_OFFLINE=1"
    return "hub", f"{name} will be downloaded from the Hugging Face Hub"


def check_model_source(name: str, model: str = "") -> None:
    """One line (UserError) when the base model can be neither read nor fetched."""
    where, detail = locate(name)
    if where != "missing":
        return
    label = f"model '{model}' ({name})" if model and model != name else f"model {name}"
    how = (f"fetch it with `huggingface-cli download {name}` on a machine online (or unset HF_HUB_OFFLINE)"
           if not looks_like_path(name) else "point hf_path at a folder holding the model (config.json, weights)")
    raise UserError(f"{label} not found: {detail}; {how}")


def attention_implementation() -> str:
    """flash-attention 2 when the ``flash_attn`` package is importable, else PyTorch's sdpa."""
    return FLASH_ATTENTION if importlib.util.find_spec("flash_attn") is not None else SDPA


def attention_override(settings) -> tuple[list[str], str]:
    """(the override, one line for the trial's log) for a GPU trial whose preset sets no attention."""
    if settings.get("attn_implementation"):
        return [], f"asym: attention {settings['attn_implementation']} (the preset's)"
    chosen = attention_implementation()
    why = "flash_attn importable" if chosen == FLASH_ATTENTION else "flash_attn not importable; pip install flash-attn for flash-attention 2"
    return [f"+actor_rollout_ref.model.override_config.attn_implementation={chosen}"], f"asym: attention {chosen} ({why})"


def check_gpus(needed: int, trial: str, environ=os.environ) -> None:
    """One line when a one-node trial needs more GPUs than this machine shows. Only for a local Ray
    (no RAY_ADDRESS): a cluster's nodes are checked by admission once Ray runs."""
    if environ.get("RAY_ADDRESS"):
        return

    have = visible_gpus(environ)
    if needed > have:
        hint = ("; on a CPU machine use --model cpu-tiny (verl's CPU mode)" if have == 0
                else f"; pass --gpus-per-trial {have} or fewer")
        raise UserError(f"verl trial '{trial}' needs {needed} GPUs on one node; this machine shows {have}{hint}")
