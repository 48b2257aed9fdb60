"""Shared pytest fixtures (keep minimal: modules' own fixtures live in their test files)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def clean_env() -> dict[str, str]:
    """os.environ for a child process: no inherited Ray address or verl plugin switches."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("RAY_ADDRESS", "VERL_USE_EXTERNAL_MODULES", "VERL_USE_EXTERNAL_PLUGINS")}
    env["PYTHONUNBUFFERED"] = "1"
    return env


@pytest.fixture
def python_exe() -> str:
    """The interpreter running the tests (the project's venv)."""
    return sys.executable
