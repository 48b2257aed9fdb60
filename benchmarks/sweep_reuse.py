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
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path[0] = str(REPO)  # benchmarks/estimators.py would shadow the estimators package

from benchmarks.asym_runs import run_asym, store_client, sweep_runs  # noqa: E402
from experiments import tracking_names as names  # noqa: E402


def sweep(cwd: Path, study: str, name: str, steps: int, smoke: bool, extra=()) -> dict:
    argv = ["sweep", study, "--seeds", "0", "--steps", str(steps), "--name", name,
                   *(["--smoke"] if smoke else []), *extra]
    wall = run_asym(argv, cwd)
    client = store_client(cwd)
    runs = sweep_runs(client, name)
    origins = [client.get_run(r.data.tags[names.TAG_REUSED_FROM]) for r in runs if names.TAG_REUSED_FROM in r.data.tags]
    saved_s = sum((o.info.end_time - o.info.start_time) / 1000 for o in origins)
    return {"study": study, "name": name, "trials": len(runs), "reused": len(origins), "wall": wall,
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
