"""The CUDA GPUs this machine shows, counted without importing torch (the planner stays fast).

A verl preset that leaves ``n_gpus_per_node`` unset gets this machine's count (a one-GPU workstation
plans one-GPU trials); with none visible (a CPU machine, CI, a cluster's GPU-less head) the paper's
4 (one node of 4x H100 [v2, App G]) stays, as before.
"""

from __future__ import annotations

import os
import shutil
import subprocess

PAPER_GPUS_PER_NODE = 4  # "4x NVIDIA H100", one node [v2, App G]


def visible_gpus(environ=os.environ) -> int:
    """CUDA_VISIBLE_DEVICES when set (Ray sets it for a trial), else the GPUs ``nvidia-smi -L`` lists."""
    given = environ.get("CUDA_VISIBLE_DEVICES")
    if given is not None:
        ids = [part for part in given.split(",") if part.strip()]
        return 0 if not ids or ids[0].strip() == "-1" else len(ids)
    if not shutil.which("nvidia-smi"):
        return 0
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return 0
    return sum(1 for line in out.stdout.splitlines() if line.startswith("GPU ")) if out.returncode == 0 else 0


def gpus_per_node_default(environ=os.environ) -> int:
    return visible_gpus(environ) or PAPER_GPUS_PER_NODE
