"""The suite's Ray-starting helpers, and the sweep driver's, beside a user's own Ray: a live
`ray start --head` on this machine (the README's "Starting fast" leaves one running) must neither
break them nor receive their work.

The head runs under its own RAY_TMPDIR, so its ``ray_current_cluster`` file is this test's alone
(other Ray users of the machine are untouched) while every child process here would find it exactly
as it would find a user's head in /tmp/ray. It is stopped by its processes' ids, never `ray stop`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from cluster.local_sim import kill_processes_naming
from common.net import free_port
from ray_local import LOCAL_RAY_INIT

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[1]

CHILD = """
import json, ray
{init}
context = ray.get_runtime_context()
print(json.dumps({{"gcs": context.gcs_address, "cpus": ray.cluster_resources().get("CPU")}}))
ray.shutdown()
"""


@pytest.fixture
def user_head():
    """A live `ray start --head` (1 CPU), found by a bare ray.init() through RAY_TMPDIR/ray/ray_current_cluster."""
    root = tempfile.mkdtemp(prefix="rh", dir="/tmp")  # short: Ray's socket paths must fit 107 bytes
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env["RAY_TMPDIR"] = root
    port = free_port()
    ray_cli = Path(sys.executable).with_name("ray")
    head = [str(ray_cli)] if ray_cli.exists() else [sys.executable, "-m", "ray.scripts.scripts"]
    started = subprocess.run([*head, "start", "--head", f"--port={port}", "--num-cpus=1", "--include-dashboard=false",
                              "--disable-usage-stats"], env=env, capture_output=True, text=True, timeout=120)
    try:
        assert started.returncode == 0, started.stderr[-2000:]
        assert (Path(root) / "ray" / "ray_current_cluster").exists()
        yield env, port
    finally:
        kill_processes_naming((root,), timeout_s=30)  # this head's processes only (its own RAY_TMPDIR)
        shutil.rmtree(root, ignore_errors=True)


def _child(code: str, env: dict) -> dict:
    import json

    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, env={**env, "PYTHONPATH": f"{REPO}:{REPO / 'tests'}"},
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_bare_ray_init_would_join_the_users_head(user_head):
    """The hazard is real: what the suite used to do connects to (or fails on) the user's cluster."""
    env, port = user_head
    seen = _child(CHILD.format(init="ray.init(include_dashboard=False, log_to_driver=False)"), env)
    assert seen["gcs"].endswith(f":{port}") and seen["cpus"] == 1.0
    failed = subprocess.run([sys.executable, "-c", CHILD.format(init="ray.init(num_cpus=1)")], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=180)
    assert failed.returncode != 0 and "num_cpus and num_gpus must not be provided" in failed.stderr


def test_the_suites_and_the_drivers_ray_start_their_own_beside_it(user_head):
    env, port = user_head
    for init, cpus in ((LOCAL_RAY_INIT.format(num_cpus=2), 2),  # tests/test_live.py, tests/test_verl_plugin.py
                       ("from ray_local import start_local_ray; start_local_ray(num_cpus=2)", 2),  # test_verl_ray.py
                       ("from orchestrator.sweep_launch import init_ray; assert init_ray()", os.cpu_count())):  # the driver
        seen = _child(CHILD.format(init=init), env)
        assert not seen["gcs"].endswith(f":{port}") and seen["cpus"] == cpus, (init, seen)  # its own, not the head
