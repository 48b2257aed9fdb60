"""Chaos run: real smoke sweeps of 12 trials with faults injected as the sweep progresses.

Each repetition runs ``asym sweep grid --alpha-pos 0.5,0.9 --alpha-neg 0.4,0.8 --seeds 0,1,2 --smoke``
(4 cells x 3 seeds = 12 trials) in a fresh directory and injects its faults by progress, not by a
clock, so every fault lands on a fast machine as on a loaded one: fault i of n waits until the
trials have logged about i/(n+1) of the sweep's training steps (read from the store, +-3% jitter),
and then until there is something to hit (a running trial; for the driver, a finished trial). It injects:

- ``trial``: SIGKILL one running trial process (a Ray worker): Tune retries it, it resumes from its
  engine checkpoint and continues its MLflow run;
- ``server``: SIGKILL the sweep's local ``mlflow server`` (its process group): the driver restarts it;
- ``driver``: SIGKILL the driver itself, then ``asym sweep resume``: the orphan server is reaped,
  Tune restores the experiment, finished trials are not run again.

At the end it reads MLflow and counts, per trial run and metric, the steps lost (a training step
in 1..steps, or an evaluation at 0 / steps, that is missing) and duplicated (a step logged twice).
A fault is survived when the sweep still completes with all 12 trials FINISHED, none lost, none
duplicated. Prints one Markdown table row per repetition (for benchmarks/RESULTS.md).

    python -m benchmarks.chaos --repeats 3 --seed 0
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import psutil

from common import metric_names as M
from experiments import tracking_names as names

STEPS = 11
SWEEP = ["sweep", "grid", "--alpha-pos", "0.5,0.9", "--alpha-neg", "0.4,0.8", "--smoke", "--seeds", "0,1,2",
         "--steps", str(STEPS), "--name", "chaos",
         "--max-concurrent", "2", "--max-failures", "6"]
N_TRIALS = 12


def start(argv, cwd: Path, log) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "RAY_ADDRESS")}
    return subprocess.Popen([sys.executable, "-m", "orchestrator.cli", *argv], cwd=cwd, env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)


def trial_processes(driver: int) -> list[psutil.Process]:
    try:
        children = psutil.Process(driver).children(recursive=True)
    except psutil.NoSuchProcess:
        return []
    out = []
    for p in children:
        try:
            if "ImplicitFunc" in " ".join(p.cmdline()):
                out.append(p)
        except psutil.Error:
            pass
    return out


def server_pid(cwd: Path) -> int | None:
    files = sorted((cwd / ".asym" / "run").glob("mlflow-server-*.json"))
    return json.loads(files[0].read_text())["server_pid"] if files else None


def _count(cwd: Path, sql: str, params: tuple = ()) -> int:
    """One count from the sweep's sqlite store, read-only; 0 while it does not exist or is locked."""
    db = cwd / ".asym" / "mlflow" / "mlflow.db"
    if not db.exists():
        return 0
    import sqlite3

    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as conn:
            return conn.execute(sql, params).fetchone()[0]
    except sqlite3.Error:
        return 0


def finished_trials(cwd: Path) -> int:
    return _count(cwd, "select count(*) from runs r join tags t on r.run_uuid = t.run_uuid where t.key = ? and "
                       "t.value = 'trial' and r.status = 'FINISHED'", (names.TAG_KIND,))


def logged_steps(cwd: Path) -> int:
    """Training steps the trials have logged so far (distinct (run, step) of train/reward_mean)."""
    return _count(cwd, "select count(distinct m.run_uuid || ':' || m.step) from metrics m where m.key = ?",
                  (M.REWARD_MEAN,))


def thresholds(rng: random.Random, n: int) -> list[int]:
    """The progress (logged steps) at which each of ``n`` faults is due: spread over the sweep."""
    total = N_TRIALS * STEPS
    return [max(1, round(total * ((i + 1) / (n + 1) + rng.uniform(-0.03, 0.03)))) for i in range(n)]


def inject(kind: str, cwd: Path, driver: subprocess.Popen) -> bool:
    """Inject one fault; False when there was nothing to hit at that moment."""
    if kind == "trial":
        victims = trial_processes(driver.pid)
        if not victims:
            return False
        random.choice(victims).kill()
        return True
    if kind == "server":
        pid = server_pid(cwd)
        if pid is None:
            return False
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            return False
        return True
    if kind == "driver":
        if finished_trials(cwd) < 1:  # before Tune's first state snapshot there is nothing to resume
            return False
        driver.send_signal(signal.SIGKILL)
        driver.wait()
        return True
    raise ValueError(kind)


def count_steps(cwd: Path) -> dict:
    from orchestrator.tracking import make_client

    client = make_client(f"sqlite:///{cwd / '.asym' / 'mlflow' / 'mlflow.db'}")
    exp = client.get_experiment_by_name(names.experiment_name())
    runs = client.search_runs([exp.experiment_id], f"tags.`{names.TAG_KIND}` = 'trial'")
    lost = duplicated = 0
    for run in runs:
        for key in set(M.TRAIN_METRICS) | {M.EVAL_MEAN_ACCURACY}:
            steps = [m.step for m in client.get_metric_history(run.info.run_id, key)]
            expected = set(range(1, STEPS + 1)) if key in M.TRAIN_METRICS else {0, STEPS}
            lost += len(expected - set(steps))
            duplicated += len(steps) - len(set(steps))
    keys = {r.data.tags.get(names.TAG_TRIAL_KEY) for r in runs}
    return {"runs": len(runs), "distinct": len(keys), "finished": sum(r.info.status == "FINISHED" for r in runs),
            "lost": lost, "duplicated": duplicated}


def repetition(rng: random.Random, faults: list[str], workdir: Path, timeout_s: float) -> dict:
    log = open(workdir / "chaos.log", "ab")
    started = time.monotonic()
    driver = start(SWEEP, workdir, log)
    injected: Counter = Counter()
    resumes = 0
    injected_at: list[int] = []
    pending = list(faults)
    rng.shuffle(pending)
    due = thresholds(rng, len(pending))
    while True:
        code = driver.poll()
        if code is not None:
            if code == 0:
                break
            if resumes > 4 or time.monotonic() - started > timeout_s:
                raise RuntimeError(f"sweep failed with {code}; see {workdir / 'chaos.log'}")
            resumes += 1  # an unexpected exit: resume, as a user would
            driver = start(["sweep", "resume", "chaos"], workdir, log)
            continue
        if time.monotonic() - started > timeout_s:
            os.killpg(driver.pid, signal.SIGKILL)
            raise RuntimeError(f"timed out; see {workdir / 'chaos.log'}")
        if pending and logged_steps(workdir) >= due[0]:
            kind = pending[0]
            if inject(kind, workdir, driver):  # nothing to hit now: tried again on the next poll
                pending.pop(0)
                injected[kind] += 1
                injected_at.append(due.pop(0))
                if kind == "driver":
                    time.sleep(1.0)
                    driver = start(["sweep", "resume", "chaos"], workdir, log)
                    continue
        time.sleep(0.2)
    log.close()
    counts = count_steps(workdir)
    leftovers = [p for p in psutil.process_iter(["cmdline"]) if str(workdir) in " ".join(p.info["cmdline"] or [])]
    return {**counts, "injected": dict(injected), "not_injected": pending, "injected_at_steps": injected_at,
            "unplanned_resumes": resumes,
            "wall_s": time.monotonic() - started, "leftover_processes": len(leftovers)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--faults", default="trial,trial,server,driver,trial,server",
                        help="Faults injected per repetition, in a random order, spread over the sweep's progress.")
    parser.add_argument("--timeout", type=float, default=1500, help="Seconds per repetition.")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    faults = [f.strip() for f in args.faults.split(",") if f.strip()]
    print("| rep | faults injected | survived | trials finished | steps lost | steps duplicated | wall |")
    print("|---|---|---|---|---|---|---|")
    totals: Counter = Counter()
    for rep in range(args.repeats):
        with tempfile.TemporaryDirectory(prefix="asym-chaos-") as tmp:
            r = repetition(rng, faults, Path(tmp), args.timeout)
        ok = (r["finished"] == r["runs"] == r["distinct"] == N_TRIALS and r["lost"] == 0 and r["duplicated"] == 0
              and r["leftover_processes"] == 0)
        n = sum(r["injected"].values())
        totals.update(injected=n, survived=n if ok else 0, lost=r["lost"], duplicated=r["duplicated"])
        shown = ", ".join(f"{v} {k}" for k, v in sorted(r["injected"].items()))
        print(f"| {rep} | {n} ({shown}) | {n if ok else 0}/{n} | {r['finished']}/{N_TRIALS} | {r['lost']} | "
              f"{r['duplicated']} | {r['wall_s']:.0f} s |", flush=True)
        print(f"|   | injected at logged steps {r['injected_at_steps']} of {N_TRIALS * STEPS} | | | | | |", flush=True)
        if r["not_injected"] or r["unplanned_resumes"] or r["leftover_processes"]:
            print(f"|   | not injected: {r['not_injected']}; unplanned resumes: {r['unplanned_resumes']}; "
                  f"leftover processes: {r['leftover_processes']} | | | | | |", flush=True)
    print(f"| all | {totals['injected']} | {totals['survived']}/{totals['injected']} | | {totals['lost']} | "
          f"{totals['duplicated']} | |")


if __name__ == "__main__":
    main()
