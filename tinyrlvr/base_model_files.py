"""Where base models live, and their content hashes, without torch.

The sweep driver needs a base model's path (is it made yet?) and its content hash (a trial's
identity: design, "Trial identity") for every sweep; the hash reads the weights with torch, a
second of import on 2 cores. So the hash of one file version (path, mtime, size) is computed once
per machine and kept under ``<cache_dir>/content-hashes/``; later sweeps read it back.
"""

from __future__ import annotations

import functools
import hashlib
import os
import tempfile
from pathlib import Path

SHIPPED_DIR = Path(__file__).resolve().parent / "base_models"


def shipped_base_model_path(cfg) -> Path:
    """Where the package ships the base model for ``cfg`` (it may not exist for custom settings)."""
    return SHIPPED_DIR / f"base-{cfg.base_model_key()}.pt"


def base_model_path(cfg) -> Path:
    """Where the base model for ``cfg`` is found: the shipped file if any, else the cache (may not exist yet)."""
    shipped = shipped_base_model_path(cfg)
    if shipped.exists():
        return shipped
    return Path(cfg.cache_dir).expanduser() / f"base-{cfg.base_model_key()}.pt"


def content_hash(path: Path) -> str:
    """sha256 of the base model's tensors (not of the file: torch.save's zip layout is not canonical)."""
    import torch  # deferred: torch; here only: the cached hash below is read without it

    blob = torch.load(path, map_location="cpu", weights_only=True)
    digest = hashlib.sha256()
    for name in sorted(blob["state_dict"]):
        tensor = blob["state_dict"][name].contiguous()
        digest.update(name.encode())
        digest.update(str(tensor.dtype).encode() + str(tuple(tensor.shape)).encode())
        digest.update(tensor.numpy().tobytes())
    return digest.hexdigest()[:16]


def cached_content_hash(path: Path, cache_dir: str | Path) -> str:
    """``content_hash(path)``, computed once per version of the file (a sweep stamps many trials of
    one base model; the next sweep's driver reads it back without torch)."""
    stat = Path(path).stat()
    return _hash_of_version(str(Path(path).resolve()), stat.st_mtime_ns, stat.st_size, str(cache_dir))


@functools.lru_cache(maxsize=None)
def _hash_of_version(path: str, mtime_ns: int, size: int, cache_dir: str) -> str:
    version = hashlib.sha256(f"{path}|{mtime_ns}|{size}".encode()).hexdigest()[:24]
    record = Path(cache_dir).expanduser() / "content-hashes" / version
    try:
        return record.read_text().strip()
    except OSError:
        pass
    value = content_hash(Path(path))
    try:
        record.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=record.parent)
        with os.fdopen(fd, "w") as fp:
            fp.write(value)
        os.replace(tmp, record)  # whole or not at all: concurrent sweeps may write it too
    except OSError:
        pass  # a read-only cache: the hash is right, only not kept
    return value
