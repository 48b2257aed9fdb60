"""The ``schedules`` study's result (issue 28), read back from a finished sweep's MLflow store.

Run the study first (seeds not used while the schedules were designed; the probe used seed 100)::

    nice -n 10 asym sweep schedules --seeds 10,11,12,13,14 --steps 50 --name schedules-heldout50
    .venv/bin/python -m benchmarks.schedules schedules-heldout50 --store .asym/mlflow/mlflow.db --out figs/

It prints one Markdown table: each configuration with its schedule, its mean entropy and training
reward over the late window (a fifth into the run to its end), its last test accuracy, the alphas it
ended at, each mean ± standard error over seeds, and the gap to the fixed (0.9, 0.4) cell paired
per seed (``*``: the gap's 95% t interval over seeds excludes 0). It also writes the alpha-trajectory figure
(``analysis.schedules.figure``) to ``--out``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from analysis import figures, schedules  # noqa: E402
from analysis.load import load_sweep  # noqa: E402

REFERENCE = "AsymGRPO (0.9, 0.4) fixed"


def markdown(frame) -> str:
    lines = ["| " + " | ".join(frame.columns) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join("" if str(v) == "nan" else str(v) for v in row) + " |"
              for row in frame.itertuples(index=False)]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("sweep")
    parser.add_argument("--store", default=".asym/mlflow/mlflow.db", help="the sweep's MLflow sqlite file")
    parser.add_argument("--out", default=".", help="folder for schedules_alpha.png/.svg")
    args = parser.parse_args(argv)
    data = load_sweep(args.sweep, f"sqlite:///{Path(args.store).resolve()}")
    seeds = sorted(int(s) for s in data.runs["seed"].unique())
    print(f"{len(data.runs)} finished trials, seeds {seeds}; left out: {', '.join(data.unfinished) or 'none'}")
    print(markdown(schedules.schedule_table(data, REFERENCE)))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    fig = schedules.figure(data, None, figures.palette(data.labels))
    print("figure:", ", ".join(str(p) for p in figures.save(fig, out, schedules.STEM)))


if __name__ == "__main__":
    main()
