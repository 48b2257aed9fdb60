"""Does an alpha grid separate its cells? Best against worst cell in hard-split accuracy, in standard errors.

    .venv/bin/python -m benchmarks.grid_separation NAME [--select best|last] [--tracking-uri URI]

Reads the sweep NAME as ``asym report`` does (the report's checkpoint rule: ``analysis.checkpoints``)
and prints, per cell (alpha+, alpha-), the mean over seeds of the hard split's accuracy at each run's
selected checkpoint, its standard error over seeds (sample sd / sqrt(n)), then the gap between the
best and the worst cell, in units of the standard error of that difference, sqrt(se_best^2 +
se_worst^2) (unpaired: conservative, the seeds are common random numbers). The same again for the
cells with both alphas <= 1 (the paper's range; eq 11 has no interior peak beyond it).
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def separation(cells: dict[tuple[float, float], list[float]]) -> tuple[tuple, tuple, float]:
    from analysis.stats import estimate

    est = {cell: estimate(v) for cell, v in cells.items()}
    best = max(est, key=lambda c: est[c].mean)
    worst = min(est, key=lambda c: est[c].mean)
    se = math.hypot(est[best].se, est[worst].se)
    return (best, est[best]), (worst, est[worst]), (est[best].mean - est[worst].mean) / se if se > 0 else math.inf


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.grid_separation")
    ap.add_argument("name")
    ap.add_argument("--select", default="best")
    ap.add_argument("--tracking-uri")
    ap.add_argument("--benchmark", default="hard")
    args = ap.parse_args(argv)
    from analysis import checkpoints
    from analysis.load import load_sweep
    from analysis.stats import estimate

    data = load_sweep(args.name, args.tracking_uri)
    benchmarks = checkpoints.eval_benchmarks(data)
    select_on = checkpoints.selection_benchmark(benchmarks)
    scores = checkpoints.checkpoint_scores(data, benchmarks, args.select, select_on)
    runs = data.runs.set_index("run_id")
    cells: dict[tuple[float, float], list[float]] = {}
    for row in scores.itertuples(index=False):
        run = runs.loc[row.run_id]
        cell = (float(run["alpha_pos"]), float(run["alpha_neg"]))
        cells.setdefault(cell, []).append(float(getattr(row, args.benchmark)))
    print(f"{args.benchmark} accuracy at the {args.select} checkpoint (selected on {select_on}); mean +- se over seeds")
    for cell in sorted(cells):
        e = estimate(cells[cell])
        print(f"  alpha+ {cell[0]:<4g} alpha- {cell[1]:<4g}  {e.mean:.3f} +- {e.se:.3f}  (n = {e.n})")
    for title, subset in (("all cells", cells), ("both alphas <= 1", {c: v for c, v in cells.items() if max(c) <= 1})):
        if len(subset) < 2:
            continue
        (b, eb), (w, ew), z = separation(subset)
        print(f"{title}: best {b} {eb.mean:.3f} +- {eb.se:.3f}, worst {w} {ew.mean:.3f} +- {ew.se:.3f}: "
              f"gap {eb.mean - ew.mean:.3f} = {z:.1f} standard errors")
    return 0


if __name__ == "__main__":
    sys.exit(main())
