"""Ray clusters on this machine, for the cluster tests and the makespan benchmark.

`simulated_cluster`: a multi-node cluster in this process.

`ray.cluster_utils.Cluster` starts a real head and real worker nodes (each its own raylet) that
declare logical GPUs, so Ray Tune's packing, Ray's CUDA_VISIBLE_DEVICES assignment and node loss
behave as on a real cluster; only the GPUs are logical. Ray writes the newest cluster's address to
`<temp>/ray/ray_current_cluster`, which a plain `ray.init()` elsewhere would join: RAY_TMPDIR points
at a private directory while the cluster lives, so no other process on the machine finds it.

`local_head`: a `ray start --head` on loopback with its dashboard and job server and token
authentication (Ray's default for clusters), as a cluster's head to submit sweeps to. It is stopped
by its own process group and temp folder (never `ray stop`, which stops every Ray on the machine).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psutil

from common.net import free_port


@dataclass
class SimulatedCluster:
    cluster: object  # ray.cluster_utils.Cluster
    workers: list  # ray._private.node.Node, in the order they were added
    dashboard: str | None = None  # http://127.0.0.1:PORT: the head's dashboard and job server, when started

    @property
    def address(self) -> str:
        return self.cluster.address

    def worker_node_ids(self) -> list[str]:
        return [node.node_id for node in self.workers]

    def remove_worker(self, node_id: str) -> None:
        """Kill one worker node's processes (its raylet and the trials on it), as a lost machine."""
        node = next(n for n in self.workers if n.node_id == node_id)
        self.cluster.remove_node(node, allow_graceful=False)
        self.workers.remove(node)


@contextmanager
def simulated_cluster(
    workers: int = 2, gpus_per_worker: int = 4, cpus_per_worker: int = 4, head_cpus: int = 1, connect: bool = True,
    dashboard: bool = False, head_resources: Mapping[str, float] | None = None,
) -> Iterator[SimulatedCluster]:
    """A head with no GPUs and `workers` nodes with `gpus_per_worker` logical GPUs each; torn down on exit.

    `dashboard`: the head also runs Ray's dashboard with its job server (Ray Jobs, without token
    authentication); `head_resources`: custom resources the head declares (the verl backend's
    admission units, `backends.verl.admission`)."""
    import ray  # deferred: ray
    from ray.cluster_utils import Cluster  # deferred: ray

    if ray.is_initialized():
        ray.shutdown()
    private_tmp = tempfile.mkdtemp(prefix="asc", dir="/tmp")  # short: Ray's socket paths must fit 107 bytes
    previous = {k: os.environ.get(k) for k in ("RAY_TMPDIR", "PATH")}
    os.environ["RAY_TMPDIR"] = private_tmp
    # the interpreter's bin folder leads PATH, as on a node with the environment activated: a Ray
    # Job's entrypoint (`python -m ...`) finds this interpreter
    os.environ["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), previous["PATH"] or ""])
    cluster = None
    try:
        node_defaults = {"object_store_memory": 80 * 1024 * 1024, "include_dashboard": False}
        # the head's dashboard agent on a free port, not Ray's fixed 52365: another Ray on this machine (a
        # user's `ray start --head`, a second simulated cluster) already listens there, and then this
        # cluster's job server never comes up ("No available agent to submit job")
        head_args = {"num_cpus": head_cpus, "num_gpus": 0, **node_defaults, "resources": dict(head_resources or {}),
                     "dashboard_agent_listen_port": free_port()}
        dashboard_url = None
        if dashboard:
            port = free_port()
            head_args.update(include_dashboard=True, dashboard_host="127.0.0.1", dashboard_port=port)
            dashboard_url = f"http://127.0.0.1:{port}"
        cluster = Cluster(initialize_head=True, head_node_args=head_args)
        added = [cluster.add_node(num_cpus=cpus_per_worker, num_gpus=gpus_per_worker, **node_defaults)
                 for _ in range(workers)]
        cluster.wait_for_nodes()
        sim = SimulatedCluster(cluster=cluster, workers=added, dashboard=dashboard_url)
        if dashboard_url:
            _wait_for_job_server(dashboard_url)
        if connect:
            ray.init(address=cluster.address, log_to_driver=False, logging_level="ERROR")
            _wait_for_gpus(workers * gpus_per_worker)
        yield sim
    finally:
        if ray.is_initialized():
            ray.shutdown()
        if cluster is not None:
            cluster.shutdown()
        for key, value in previous.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        shutil.rmtree(private_tmp, ignore_errors=True)


def _wait_for_job_server(dashboard: str, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(dashboard + "/api/jobs/", timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"the simulated head's job server {dashboard} did not come up in {timeout_s:.0f} s")


def _wait_for_gpus(expected: int, timeout_s: float = 60.0) -> None:
    import ray  # deferred: ray

    deadline = time.monotonic() + timeout_s
    while ray.cluster_resources().get("GPU", 0) < expected:
        if time.monotonic() > deadline:
            raise TimeoutError(f"the simulated cluster shows {ray.cluster_resources().get('GPU', 0)} of {expected} GPUs")
        time.sleep(0.2)


def sleep_trial(config: dict) -> None:
    """A Tune trial that sleeps `config["seconds"]` and reports where, when and on which GPUs it ran.

    The settings may sit under `config["trial"]` (a sweep's trial dict), top-level keys winning.
    """

    import ray  # deferred: ray
    from ray import tune  # deferred: ray

    config = {**config.get("trial", {}), **{k: v for k, v in config.items() if k != "trial"}}
    start = time.time()
    node = ray.get_runtime_context().get_node_id()
    time.sleep(config["seconds"])
    tune.report({"node": node, "cvd": os.environ.get("CUDA_VISIBLE_DEVICES", ""), "start": start, "end": time.time()})


@dataclass(frozen=True)
class LocalHead:
    dashboard: str  # http://127.0.0.1:PORT
    address: str  # 127.0.0.1:PORT of the head's GCS (what RAY_ADDRESS names to join it)
    client_env: dict  # what a job client needs: RAY_AUTH_MODE=token and the token file's path
    temp_dir: Path
    log_path: Path


@contextmanager
def local_head(num_cpus: int = 2, num_gpus: int = 0, head_env: Mapping[str, str] | None = None,
               timeout_s: float = 120.0) -> Iterator[LocalHead]:
    """A Ray head on 127.0.0.1 with its dashboard, in its own process group; stopped on exit.

    `head_env`: extra variables of the head's processes (as `VAR=... ray start` would set them).
    The interpreter's bin folder leads PATH, as an activated virtual environment does on a node.
    """
    from cluster.head import ray_executable  # deferred: omegaconf

    temp = Path(tempfile.mkdtemp(prefix="ash", dir="/tmp"))
    token = temp / "auth_token"
    token.write_text(uuid.uuid4().hex)
    token.chmod(0o600)
    client_env = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token)}
    gcs_port, dashboard_port = free_port(), free_port()
    env = {**os.environ, **client_env, **(head_env or {}), "RAY_TMPDIR": str(temp), "RAY_USAGE_STATS_ENABLED": "0",
           "PATH": os.pathsep.join([str(Path(ray_executable()).parent), os.environ.get("PATH", "")])}
    env.pop("RAY_ADDRESS", None)
    command = [
        ray_executable(), "start", "--head", "--block", "--node-ip-address=127.0.0.1", f"--port={gcs_port}",
        "--dashboard-host=127.0.0.1", f"--dashboard-port={dashboard_port}", f"--ray-client-server-port={free_port()}",
        f"--dashboard-agent-listen-port={free_port()}", f"--num-cpus={num_cpus}", f"--num-gpus={num_gpus}",
        f"--temp-dir={temp / 'ray'}", "--include-dashboard=true", "--disable-usage-stats",
    ]
    log_path = temp / "head.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   start_new_session=True)
    dashboard = f"http://127.0.0.1:{dashboard_port}"
    try:
        _wait_for_dashboard(dashboard, process, log_path, timeout_s)
        yield LocalHead(dashboard=dashboard, address=f"127.0.0.1:{gcs_port}", client_env=client_env, temp_dir=temp,
                        log_path=log_path)
    finally:
        _stop_head(process, temp, gcs_port)
        shutil.rmtree(temp, ignore_errors=True)


def _wait_for_dashboard(dashboard: str, process: subprocess.Popen, log_path: Path, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"ray start exited with {process.returncode}: {log_path.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(dashboard + "/api/version", timeout=2):
                return
        except urllib.error.HTTPError:  # 401: up, and asking for Ray's token
            return
        except OSError:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"the head's dashboard {dashboard} did not come up in {timeout_s:.0f} s")


def _stop_head(process: subprocess.Popen, temp: Path, gcs_port: int) -> None:
    """Stop this head only: its process group, then any of its processes that left the group."""

    for sig, wait_s in ((signal.SIGTERM, 8), (signal.SIGKILL, 10)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            break
        try:
            process.wait(timeout=wait_s)
            break
        except subprocess.TimeoutExpired:
            continue
    kill_processes_naming((str(temp), f":{gcs_port} "))


def kill_processes_naming(marks: tuple[str, ...], timeout_s: float = 10) -> None:
    """Kill every process (but this one) whose command line contains one of ``marks``, and wait."""

    leftovers = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        cmdline = " ".join(proc.info["cmdline"] or []) + " "
        if proc.pid != os.getpid() and any(mark in cmdline for mark in marks):
            leftovers.append(proc)
    for proc in leftovers:
        try:
            proc.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(leftovers, timeout=timeout_s)
