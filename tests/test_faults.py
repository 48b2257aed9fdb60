"""Faults a user meets, survived, on real Ray, real `mlflow server` processes and the real engine:

- the sweep's own local mlflow server SIGKILLed mid-sweep: the driver restarts it on the same port;
- Ctrl-C (SIGINT to the driver): trials stop, their runs
  end KILLED, no process of the sweep is left, and `asym sweep resume` finishes without re-running
  the finished trials; every step of every trial is in MLflow exactly once;
- a SIGKILLed driver's orphan mlflow server is reaped by the next asym command on the store;
- two processes using a fresh sqlite store at once: both go on, no traceback.

The external-server outage (down 20 s, back on the same address) is in test_ui_e2e.py, which
shares its sweep with the UI and secrets checks.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
from asym_process import check_resumed_sweep, finish, runs_of, start_asym, wait_for

from common import metric_names as M
from experiments import tracking_names as names
from orchestrator.mlflow_server import LocalServer, run_dir, store_paths
from orchestrator.tracking import server_is_up

# A smoke step is ~50 ms and a warm trial process starts in well under a second, so a trial of a few
# dozen steps can start and finish between two polls of the store (metrics land every 2 s): CI once
# saw the second pair of trials come and go unseen. 200 steps keep a trial's first half (what
# "early" means below) several seconds long on any machine; the resume must then log each step once
# whether the interrupted trial had reached a checkpoint (every 10 steps) or not.
STEPS = 200


def store_client(cwd: Path):
    """A client on the sweep's store, through asym's store lock (a plain MlflowClient opening a
    store that the driver is creating would race its migrations: the fault tested below)."""
    from orchestrator.tracking import make_client

    return make_client(store_paths(cwd)[0])


def server_info(cwd: Path) -> dict | None:
    files = sorted(run_dir(cwd).glob("mlflow-server-*.json")) if run_dir(cwd).exists() else []
    return json.loads(files[0].read_text()) if files else None


def gone(pids) -> bool:
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                return False
        except psutil.NoSuchProcess:
            pass
    return True


@pytest.mark.slow
def test_server_killed_then_ctrl_c_then_resume(tmp_path):
    sweep = ["sweep", "grid", "--alpha-pos", "0.5,0.9", "--alpha-neg", "0.4,0.8", "--smoke", "--seeds", "0",
             "--steps", str(STEPS), "--name", "cc", "--max-concurrent", "2"]  # 4 trials
    proc = start_asym(sweep, tmp_path)
    try:
        first = wait_for(lambda: server_info(tmp_path), 120, "the local server's pid file", proc)
        client = store_client(tmp_path)  # the driver made the store before it started its server
        wait_for(lambda: runs_of(client, names.KIND_TRIAL), 180, "a trial to start", proc)
        os.killpg(first["server_pid"], signal.SIGKILL)  # the sweep's own server dies mid-sweep
        uri = f"http://127.0.0.1:{first['port']}"
        wait_for(lambda: (server_info(tmp_path) or first)["server_pid"] != first["server_pid"] and server_is_up(uri),
                 60, "the driver to restart its server", proc)

        def mid_sweep() -> bool:  # one trial done, another in the first half of its run: Ctrl-C must stop it
            runs = runs_of(client, names.KIND_TRIAL)
            early = [r for r in runs if r.info.status == "RUNNING"
                     and max((m.step for m in client.get_metric_history(r.info.run_id, M.ENTROPY)), default=0) < STEPS // 2]
            return any(r.info.status == "FINISHED" for r in runs) and bool(early)

        wait_for(mid_sweep, 240, "one finished trial and one early in its run", proc, every=0.3)
        descendants = [p.pid for p in psutil.Process(proc.pid).children(recursive=True)]
        assert len(descendants) >= 4  # Ray's processes, the trials, the mlflow server and its worker
        os.kill(proc.pid, signal.SIGINT)  # Ctrl-C
        code, err = finish(proc, timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert code == 130, err[-3000:]
    assert "restarted it on the same port" in err
    assert "interrupted" in err and "asym sweep resume cc" in err and "Traceback" not in err, err[-3000:]
    wait_for(lambda: gone(descendants), 30, "every process of the sweep to exit")
    assert not list(run_dir(tmp_path).glob("mlflow-server-*.json"))

    trials = runs_of(client, names.KIND_TRIAL)
    statuses = [r.info.status for r in trials]
    assert set(statuses) == {"FINISHED", "KILLED"}, statuses  # stopped, not failed; nothing left RUNNING
    (parent,) = runs_of(client, names.KIND_SWEEP)
    assert parent.info.status == "KILLED"
    before = {r.info.run_id: r.info.end_time for r in trials if r.info.status == "FINISHED"}
    assert before

    code, err = finish(start_asym(["sweep", "resume", "cc"], tmp_path))
    assert code == 0, err[-3000:]
    tensorboard = list((tmp_path / ".asym" / "sweeps").rglob("events.out.tfevents*"))
    assert not tensorboard, f"Tune's TensorBoard logger came back with the restored sweep: {tensorboard}"
    check_resumed_sweep(client, before, n_trials=4, steps=STEPS)
    (parent,) = runs_of(client, names.KIND_SWEEP)
    note = parent.data.tags[names.NOTE]
    assert "4 trials (4 finished); sweep finished" in note and "asym sweep grid --alpha-pos 0.5,0.9" in note


def test_orphan_server_of_a_sigkilled_driver_is_reaped_by_the_next_command(tmp_path):
    """One driver is SIGKILLed with its server up; another (this test) is alive with its own: the
    next asym command on the store stops the first server and leaves the second alone."""
    store, artifacts = store_paths(tmp_path)
    log = tmp_path / ".asym" / "logs" / "mlflow-server.log"
    killed = subprocess.Popen([sys.executable, "-c", f"""
import os, signal
from pathlib import Path
from orchestrator.mlflow_server import LocalServer, run_dir
server = LocalServer.start({store!r}, {artifacts!r}, Path({str(log)!r}), pid_dir=run_dir(Path({str(tmp_path)!r})))
server.wait_ready()
os.kill(os.getpid(), signal.SIGKILL)
"""], cwd=tmp_path, stderr=subprocess.PIPE, text=True)
    live = LocalServer.start(store, artifacts, log, pid_dir=run_dir(tmp_path))
    try:
        assert killed.wait(timeout=120) == -signal.SIGKILL, killed.stderr.read()
        (info,) = [json.loads(f.read_text()) for f in run_dir(tmp_path).glob("*.json") if f != live.pid_file]
        assert server_is_up(f"http://127.0.0.1:{info['port']}")  # the orphan serves on
        code, err = finish(start_asym(["report", "nope"], tmp_path), timeout=120)
        assert code == 2 and err.startswith("error: no sweep named 'nope'"), err
        wait_for(lambda: gone([info["server_pid"]]), 10, "the orphan server to be reaped")
        assert live.process.poll() is None and [f.name for f in run_dir(tmp_path).iterdir()] == [live.pid_file.name]
    finally:
        live.stop()
    assert not live.pid_file.exists()


def test_concurrent_first_use_of_a_fresh_sqlite_store(tmp_path):
    """MLflow's first-use migrations race ("duplicate column name: step") without the store lock."""
    uri = f"sqlite:///{tmp_path / 'fresh' / 'mlflow.db'}"
    (tmp_path / "fresh").mkdir()
    code = f"""
import sys, time
from pathlib import Path
from orchestrator import tracking
import mlflow.store.tracking.sqlalchemy_store
ready = Path({str(tmp_path)!r}) / sys.argv[1]
ready.touch()
while len(list(ready.parent.glob("ready-*"))) < 2: time.sleep(0.002)  # both imported: go at once
client = tracking.make_client({uri!r})
print(tracking.ensure_experiment(client))
"""
    procs = [subprocess.Popen([sys.executable, "-c", code, f"ready-{i}"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0 and "Traceback" not in err, err[-2000:]
    assert outs[0][0] == outs[1][0]  # one experiment, the same id for both
