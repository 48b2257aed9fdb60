"""`asym sweep` start-up, before and after, side by side in one run on this machine.

"Before" is another revision of this repository (default: ``main``), unpacked with ``git archive``
into a temporary folder and run with the same virtual environment (its folder first on
PYTHONPATH); "after" is this working tree. Each runs ``asym sweep isolation --smoke --seeds 0
--steps S`` in its own empty directory twice: on a fresh MLflow store, then again in the same
directory with one more step (an existing store; a changed setting, so nothing is reused). The
runs alternate before/after so the machine's drifting load hits both alike. Times are read from
MLflow's timestamps, from the launch of the command: the first trial's step 0 (the base model's
evaluation) and first training step, and the whole command. The shipped base models are used (no
warm-up). A last "after" run repeats the first command exactly: every trial is reused.

    .venv/bin/python benchmarks/sweep_startup.py [--before main] [--steps 3]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path[0] = str(REPO)  # benchmarks/estimators.py would shadow the estimators package

from benchmarks.asym_runs import asym_env, first_steps, run_asym, store_client, sweep_runs  # noqa: E402
from experiments import tracking_names as names  # noqa: E402


def _load() -> str:
    return "load average " + " ".join(f"{x:.1f}" for x in os.getloadavg())


def run(cwd: Path, tree: Path | None, sweep: str, steps: int, name: str) -> dict[str, float]:
    """Launch one sweep; seconds from launch to its first step 0 / step 1, and the command's wall."""
    t0 = time.time()
    wall = run_asym(["sweep", sweep, "--smoke", "--seeds", "0", "--steps", str(steps), "--name", name], cwd,
                    asym_env(tree))
    client = store_client(cwd)
    runs = sweep_runs(client, name)
    first0, first1 = first_steps(client, runs)
    return {"step0": first0 - t0, "step1": first1 - t0, "wall": wall, "trials": len(runs),
            "reused": sum(names.TAG_REUSED_FROM in r.data.tags for r in runs), "load": os.getloadavg()[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default="main", help="the revision to compare against")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--sweep", default="isolation")
    args = parser.parse_args()
    rows: list[tuple[str, dict]] = []
    with tempfile.TemporaryDirectory(prefix="asym-startup-") as tmp:
        work = Path(tmp)
        before = work / "before-tree"
        before.mkdir()
        archive = subprocess.run(["git", "-C", str(REPO), "archive", args.before], capture_output=True, check=True)
        subprocess.run(["tar", "-x", "-C", str(before)], input=archive.stdout, check=True)
        print(f"before = {args.before} ({subprocess.run(['git', '-C', str(REPO), 'rev-parse', '--short', args.before], capture_output=True, text=True).stdout.strip()}), "
              f"after = this tree; {_load()} at the start", flush=True)
        for label, tree in (("before", before), ("after", None)):
            rows.append((f"{label}, fresh store", run(work / label, tree, args.sweep, args.steps, "s1")))
            print(rows[-1], flush=True)
        for label, tree in (("before", before), ("after", None)):
            rows.append((f"{label}, existing store", run(work / label, tree, args.sweep, args.steps + 1, "s2")))
            print(rows[-1], flush=True)
        rows.append(("after, every trial reused", run(work / "after", None, args.sweep, args.steps, "s3")))
    print(f"\n`asym sweep {args.sweep} --smoke --seeds 0 --steps {args.steps}`; seconds from launch; {_load()} at the end")
    print(f"{'run':28s} {'load':>5s} {'trials':>6s} {'reused':>6s} {'step 0':>7s} {'step 1':>7s} {'whole':>7s}")
    for label, r in rows:
        print(f"{label:28s} {r['load']:5.1f} {r['trials']:6d} {r['reused']:6d} {r['step0']:7.1f} {r['step1']:7.1f} {r['wall']:7.1f}")
    by = dict(rows)
    for store in ("fresh store", "existing store"):
        b, a = by[f"before, {store}"], by[f"after, {store}"]
        print(f"{store}: first step {b['step1']:.1f} s -> {a['step1']:.1f} s (x{b['step1'] / a['step1']:.2f} faster), "
              f"whole sweep {b['wall']:.1f} s -> {a['wall']:.1f} s (x{b['wall'] / a['wall']:.2f})")


if __name__ == "__main__":
    main()
