"""What the sweep machinery costs, measured side by side in one run on this machine.

1. Start-up: wall time from launching `asym sweep` (a subprocess, fresh directory, no MLflow store
   yet) to the first trial's first reported step (step 0, the base model's evaluation) and first
   training step, read from MLflow's metric timestamps. The base model is made beforehand (the
   "first warm-up" is excluded, as the target says).
2. Overhead per trial: the same default embedded trial (the preset's settings, `--steps` steps)
   run bare through the engine API (`tinyrlvr.trainer.train`, no-op callback, 2 threads) and
   through `asym sweep grid` as a one-trial sweep (2 CPUs for the trial = 2 threads, Tune, the
   Tune trainable, MLflow logging over HTTP). Reports the trial's wall time in the sweep (Tune's
   `time_total_s`: the trainable from its first line to its return) over the bare wall time, and
   the whole sweep command's wall time over the bare time. The load on a shared machine drifts, so
   bare and sweep runs alternate; the trainable also times itself (its setup before the engine
   starts, and every reporter call: MLflow buffering/flushes + tune.report), which gives the
   overhead inside one run, free of that drift.

    .venv/bin/python benchmarks/sweep_overhead.py [--steps 100]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path[0] = str(REPO)  # benchmarks/estimators.py would shadow the estimators package

from benchmarks.asym_runs import run_asym, start_phases, store_client, sweep_runs  # noqa: E402


def warm_base_models(steps: int) -> None:
    """Make the cached base models both measurements use (smoke and default sizes)."""
    from experiments.plan import plan
    from backends.embedded import EmbeddedBackend

    trials = plan("isolation", smoke=True, steps=3) + plan("grid", alpha_pos=[1.0], alpha_neg=[0.5], steps=steps)
    EmbeddedBackend().prepare(trials)


def startup(work: Path) -> dict[str, float]:
    cwd = work / "startup"
    t0 = time.time()
    wall = run_asym(["sweep", "isolation", "--smoke", "--seeds", "0", "--steps", "3", "--name", "bench"], cwd)
    phases = start_phases(store_client(cwd), "bench", t0)
    return {"to_parent_run_s": phases["parent run"], "to_first_trial_run_s": phases["trial run"],
            "to_first_step0_s": phases["step 0"], "to_first_step1_s": phases["step 1"], "sweep_wall_s": wall}


def bare(steps: int) -> float:
    from experiments.plan import plan
    from backends.embedded import EmbeddedBackend
    from tinyrlvr.trainer import train

    (trial,) = plan("grid", alpha_pos=[1.0], alpha_neg=[0.5], steps=steps)
    cfg = EmbeddedBackend(threads=2).engine_config(trial)
    t0 = time.perf_counter()
    train(cfg, lambda step, metrics: None)
    return time.perf_counter() - t0


def swept(work: Path, steps: int) -> dict[str, float]:
    cwd = work / "swept"
    wall = run_asym(["sweep", "grid", "--alpha-pos", "1", "--alpha-neg", "0.5", "--seeds", "0", "--steps", str(steps),
                     "--cpus-per-trial", "2", "--name", "bench"], cwd)
    (run,) = sweep_runs(store_client(cwd))
    results = sorted((cwd / ".asym" / "sweeps" / "bench").glob("*/result.json"))
    last = json.loads(results[0].read_text().splitlines()[-1])
    return {"trial_s": float(last["time_total_s"]), "mlflow_run_s": (run.info.end_time - run.info.start_time) / 1000,
            "sweep_wall_s": wall, "reporting_s": float(last["asym_reporting_s"]), "setup_s": float(last["asym_setup_s"])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100, help="steps of the default embedded trial")
    parser.add_argument("--repeats", type=int, default=2, help="bare/sweep pairs, alternated (load drifts)")
    args = parser.parse_args()
    os.chdir(REPO)
    warm_base_models(args.steps)
    bares, sweeps = [], []
    with tempfile.TemporaryDirectory(prefix="asym-bench-") as tmp:
        work = Path(tmp)
        start = startup(work)
        for i in range(args.repeats):
            bares.append(bare(args.steps))
            (work / f"r{i}").mkdir()
            sweeps.append(swept(work / f"r{i}", args.steps))
    print("start-up (asym sweep isolation --smoke, 4 trials, fresh store):")
    for key, value in start.items():
        print(f"  {key:22s} {value:7.1f} s")
    print(f"default embedded trial, {args.steps} steps, 2 threads; {args.repeats} alternated pairs:")
    for b, s in zip(bares, sweeps):
        print(f"  bare {b:6.1f} s | sweep: trainable {s['trial_s']:6.1f} s (ratio {s['trial_s'] / b:.3f}), "
              f"whole command {s['sweep_wall_s']:6.1f} s (ratio {s['sweep_wall_s'] / b:.3f}); inside the trainable: "
              f"setup {s['setup_s']:.2f} s + reporting {s['reporting_s']:.2f} s = "
              f"{100 * (s['setup_s'] + s['reporting_s']) / s['trial_s']:.2f}% of it")
    inside = [100 * (s["setup_s"] + s["reporting_s"]) / s["trial_s"] for s in sweeps]
    print(f"orchestration + tracking inside a trial: {max(inside):.2f}% at most (target < 5%); "
          f"time to first step: {start['to_first_step0_s']:.1f} s (target < 10 s)")


if __name__ == "__main__":
    main()
