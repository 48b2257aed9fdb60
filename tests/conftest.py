"""Shared pytest fixtures (keep minimal: modules' own fixtures live in their test files)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


def pytest_configure(config):
    """Every test run sees what a new machine sees: an empty base-model cache (shipped base models
    only), in this process and in every process it starts (Ray workers, `asym` subprocesses)."""
    import tempfile

    os.environ["ASYM_CACHE_DIR"] = tempfile.mkdtemp(prefix="asym-test-cache-")


def pytest_unconfigure(config):
    """The run's empty-at-start cache goes with the run (nothing in it is meant for the next run)."""
    import shutil
    import tempfile

    cache = os.environ.get("ASYM_CACHE_DIR", "")
    if Path(cache).name.startswith("asym-test-cache-") and Path(cache).parent == Path(tempfile.gettempdir()):
        shutil.rmtree(cache, ignore_errors=True)


# The README's test command runs on two workers (pytest-xdist, --dist loadgroup): a test file is one unit
# of work, so a module's fixtures are made once. The files that start multi-node clusters or Ray heads
# with dashboards share one unit: they run one after another, never two such clusters at once on 2 cores.
CLUSTER_FILES = {"test_cluster_sim.py", "test_cluster_storage.py", "test_cluster_submit.py", "test_job_watch.py",
                 "test_verl_cluster.py"}


def pytest_collection_modifyitems(config, items):
    """Each test's unit of work for the two workers (its file, or the clusters' shared unit)."""
    for item in items:
        item.add_marker(pytest.mark.xdist_group("clusters" if item.path.name in CLUSTER_FILES else item.path.name))


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


@pytest.fixture
def plugin_module(tmp_path):
    """A user's estimator module (``sharp-asym``, parameter ``power`` in [0.25, 4]) written outside the
    package into tmp_path; unregistered and unimported again afterwards so other tests see the
    paper's registry only."""
    from estimators.registry import ESTIMATORS

    source = REPO_ROOT / "tests" / "fixtures" / "plugins" / "my_estimators.py"
    (tmp_path / "my_estimators.py").write_text(source.read_text())
    yield tmp_path / "my_estimators.py"
    ESTIMATORS.pop("sharp-asym", None)
    sys.modules.pop("my_estimators", None)
    if str(tmp_path) in sys.path:
        sys.path.remove(str(tmp_path))
