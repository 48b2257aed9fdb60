"""What trial reuse saves: isolation, then flip, then main on the embedded backend, in one directory.

The three studies share trials (REINFORCE, Pos-Only and Neg-Only of isolation, GRPO of flip, all in
main). Each sweep runs in the same working directory (one MLflow store), so a trial whose key
finished in an earlier sweep is linked, not rerun; main is then run once more with ``--rerun``
(every trial trained again) for the side-by-side wall time. Reports per sweep: trials, reused,
trials trained, wall time; and the saving on main (trials and seconds).

    .venv/bin/python benchmarks/sweep_reuse.py [--steps 3] [--smoke]
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


def sweep(cwd: Path, study: str, name: str, steps: int, smoke: bool, extra=()) -> dict:
    from mlflow import MlflowClient

    argv = [sys.executable, "-m", "orchestrator.cli", "sweep", study, "--seeds", "0", "--steps", str(steps),
            "--name", name, *(["--smoke"] if smoke else []), *extra]
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "RAY_ADDRESS")}
    t0 = time.time()
    proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True)
    wall = time.time() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{study} failed:\n{proc.stderr[-3000:]}")
    client = MlflowClient(f"sqlite:///{cwd / '.asym' / 'mlflow' / 'mlflow.db'}")
    exp = client.get_experiment_by_name("asym")
    runs = client.search_runs([exp.experiment_id], filter_string=f"tags.`asym.kind` = 'trial' and tags.`asym.sweep` = '{name}'")
    reused = [r for r in runs if "asym.reused_from" in r.data.tags]
    saved_s = sum((client.get_run(r.data.tags["asym.reused_from"]).info.end_time
                   - client.get_run(r.data.tags["asym.reused_from"]).info.start_time) / 1000 for r in reused)
    return {"study": study, "name": name, "trials": len(runs), "reused": len(reused), "wall": wall,
            "trial_s_saved": saved_s, "load": os.getloadavg()[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--smoke", action="store_true", help="the smoke model (seconds per trial)")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="asym-reuse-") as tmp:
        cwd = Path(tmp)
        for study in ("isolation", "flip", "main"):
            rows.append(sweep(cwd, study, study, args.steps, args.smoke))
            print(rows[-1], flush=True)
        rows.append(sweep(cwd, "main", "main-rerun", args.steps, args.smoke, ["--rerun"]))
    print(f"\nembedded, --seeds 0 --steps {args.steps}{' --smoke' if args.smoke else ''}; one store")
    print(f"{'sweep':12s} {'load':>5s} {'trials':>6s} {'reused':>6s} {'trained':>7s} {'wall s':>7s} {'trial-s saved':>13s}")
    for r in rows:
        print(f"{r['name']:12s} {r['load']:5.1f} {r['trials']:6d} {r['reused']:6d} {r['trials'] - r['reused']:7d} "
              f"{r['wall']:7.1f} {r['trial_s_saved']:13.1f}")
    main_row, rerun = rows[2], rows[3]
    print(f"main: {main_row['reused']} of {main_row['trials']} trials reused; wall {rerun['wall']:.1f} s with --rerun "
          f"-> {main_row['wall']:.1f} s reused (saved {rerun['wall'] - main_row['wall']:.1f} s, "
          f"x{rerun['wall'] / main_row['wall']:.2f})")


if __name__ == "__main__":
    main()
