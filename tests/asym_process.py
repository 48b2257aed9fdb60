"""`asym` as a user runs it, in its own process group, for the tests that kill or interrupt sweeps."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest


def start_asym(argv, cwd: Path, env=None, **kwargs) -> subprocess.Popen:
    """`python -m orchestrator.cli ARGV` in `cwd`, ignoring any tracking server or Ray this shell points at."""
    clean = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "RAY_ADDRESS")}
    return subprocess.Popen([sys.executable, "-m", "orchestrator.cli", *argv], cwd=cwd, env={**clean, **(env or {})},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                            **kwargs)


def finish(proc: subprocess.Popen, timeout: float = 300) -> tuple[int, str]:
    """Exit code and stderr; a process still running after `timeout` has its group killed and fails the test."""
    try:
        _, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        _, err = proc.communicate()
        pytest.fail(f"asym did not finish in {timeout} s:\n{err[-3000:]}")
    return proc.returncode, err
