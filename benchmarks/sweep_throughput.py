"""Throughput of a whole sweep: the README's main job (the 12-cell alpha grid, then its report).

Runs exactly the quick start's second half in an empty working directory (a fresh MLflow store, the
shipped base model), and reports:

- wall time of `asym sweep grid ...` and of `asym report ...`, and of the two together (the issue's
  target: the main job in at most 4 minutes after the install);
- trials per hour of the sweep;
- CPU utilisation of the sweep: CPU-seconds used by the `asym` process tree (sampled every 0.5 s, so
  Ray's workers and the mlflow server count; a process that lives less than 0.5 s is missed) over
  wall x cores; and the machine's own utilisation over the same span (other load included), with the
  load average at the start and end, so a reader can tell a contended run.

    .venv/bin/python -m benchmarks.sweep_throughput [--steps 50] [--smoke]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

GRID = ["sweep", "grid", "--alpha-pos", "0,1,2,3", "--alpha-neg", "0,0.5,1"]


class TreeCpu:
    """CPU-seconds of a process and all its descendants, sampled while it runs."""

    def __init__(self, pid: int, every: float = 0.5):
        self.root, self.every, self.seen = psutil.Process(pid), every, {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            try:
                procs = [self.root, *self.root.children(recursive=True)]
            except psutil.NoSuchProcess:
                return
            for proc in procs:
                try:
                    t = proc.cpu_times()
                    self.seen[(proc.pid, proc.create_time())] = t.user + t.system + t.children_user + t.children_system
                except psutil.Error:
                    pass
            self._stop.wait(self.every)

    def __enter__(self) -> "TreeCpu":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def seconds(self) -> float:
        return sum(self.seen.values())


def timed(argv: list[str], cwd: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "RAY_ADDRESS")}
    machine0, load0, t0 = psutil.cpu_times(), os.getloadavg()[0], time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "orchestrator.cli", *argv], cwd=cwd, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    with TreeCpu(proc.pid) as tree:
        _, err = proc.communicate()
    wall = time.monotonic() - t0
    if proc.returncode != 0:
        raise SystemExit(f"`asym {' '.join(argv)}` failed:\n{err[-3000:]}")
    machine1 = psutil.cpu_times()
    busy = sum(getattr(machine1, f) - getattr(machine0, f) for f in ("user", "system", "nice", "irq", "softirq"))
    idle = (machine1.idle - machine0.idle) + (machine1.iowait - machine0.iowait)
    return {"wall": wall, "tree_cpu": tree.seconds, "machine_util": busy / max(busy + idle, 1e-9),
            "load": (load0, os.getloadavg()[0])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=50, help="the README's 50")
    parser.add_argument("--smoke", action="store_true", help="the smoke model: checks the script, not the target")
    args = parser.parse_args()
    cores = psutil.cpu_count()
    extra = ["--smoke"] if args.smoke else []
    with tempfile.TemporaryDirectory(prefix="asym-throughput-") as tmp:
        sweep = timed([*GRID, "--steps", str(args.steps), "--name", "quickstart", *extra], Path(tmp))
        report = timed(["report", "quickstart"], Path(tmp))
    trials = 12
    print(f"README main job, {trials} trials x {args.steps} steps{' (smoke)' if args.smoke else ''}, {cores} cores")
    for label, r in (("sweep", sweep), ("report", report)):
        print(f"{label:7s} wall {r['wall']:7.1f} s  asym CPU {r['tree_cpu']:7.1f} s "
              f"(utilisation {r['tree_cpu'] / (r['wall'] * cores):5.1%} of {cores} cores)  "
              f"machine {r['machine_util']:5.1%}  load {r['load'][0]:.1f} -> {r['load'][1]:.1f}")
    print(f"throughput: {trials / sweep['wall'] * 3600:.0f} trials/hour; main job (sweep + report) "
          f"{sweep['wall'] + report['wall']:.1f} s (target <= 240 s after the install)")


if __name__ == "__main__":
    main()
