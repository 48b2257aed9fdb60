"""`asym sweep` to its first step, cold and warm, side by side in one run on this machine.

Cold: nothing running (the sweep starts a local Ray and its `mlflow server`). Warm: a Ray head
(`ray start --head`, cluster.local_sim.local_head) and an `mlflow server` already running, named by
RAY_ADDRESS and MLFLOW_TRACKING_URI. Each run is `asym sweep grid --alpha-pos 0 --alpha-neg A --smoke
--steps 2` in an empty directory (a new A each time: nothing is reused), cold and warm alternating so
the machine's drifting load hits both alike. Seconds from launch, read from MLflow: the sweep's
parent run created, the trial's run created (the trial process is up), its step 0 (the base model's
evaluation) and step 1, and the whole command. The shipped base model is used.

    .venv/bin/python benchmarks/sweep_warm_start.py [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path[0] = str(REPO)  # benchmarks/estimators.py would shadow the estimators package

from benchmarks.asym_runs import asym_env, run_asym, start_phases, store_client  # noqa: E402

PHASES = ("parent run", "trial run", "step 0", "step 1", "whole")


def one_sweep(cwd: Path, name: str, alpha_neg: float, env: dict[str, str], client=None) -> dict[str, float]:
    t0 = time.time()
    wall = run_asym(["sweep", "grid", "--alpha-pos", "0", "--alpha-neg", f"{alpha_neg:g}", "--smoke", "--steps", "2",
                     "--name", name], cwd, env)
    return {**start_phases(client or store_client(cwd), name, t0), "whole": wall, "load": os.getloadavg()[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="sweeps of each kind (the first warm one warms Ray's workers)")
    args = parser.parse_args()
    from cluster.local_sim import local_head
    from orchestrator.mlflow_server import LocalServer
    from orchestrator.tracking import make_client

    rows: dict[str, list[dict[str, float]]] = {"cold": [], "warm": []}
    print(f"load average {os.getloadavg()[0]:.2f} at the start", flush=True)
    with tempfile.TemporaryDirectory(prefix="asym-warm-") as tmp:
        work = Path(tmp)
        server = LocalServer.start(f"sqlite:///{work / 'mlflow.db'}", (work / "artifacts").as_uri(), work / "server.log")
        try:
            with local_head(num_cpus=2) as head:
                server.wait_ready()
                warm_env = {**asym_env(), **head.client_env, "RAY_ADDRESS": head.address, "MLFLOW_TRACKING_URI": server.uri}
                client = make_client(server.uri)
                for i in range(args.runs):
                    rows["cold"].append(one_sweep(work / f"cold-{i}", f"cold{i}", i, asym_env()))
                    rows["warm"].append(one_sweep(work / f"warm-{i}", f"warm{i}", i, warm_env, client))
                    print(i, {k: {p: round(v, 2) for p, v in r[-1].items()} for k, r in rows.items()}, flush=True)
        finally:
            server.stop()
    print(f"\nseconds from launch (median of {args.runs}; each run's value in brackets); "
          f"load average {os.getloadavg()[0]:.2f} at the end")
    print(f"{'':6s} " + " ".join(f"{p:>22s}" for p in PHASES))
    for kind, runs in rows.items():
        cells = [f"{statistics.median(r[p] for r in runs):5.2f} [" + " ".join(f"{r[p]:.1f}" for r in runs) + "]"
                 for p in PHASES]
        print(f"{kind:6s} " + " ".join(f"{c:>22s}" for c in cells))
    cold, warm = (statistics.median(r["step 1"] for r in rows[k]) for k in ("cold", "warm"))
    print(f"first training step: cold {cold:.2f} s, warm {warm:.2f} s (x{cold / warm:.2f}); target <= 5 s")


if __name__ == "__main__":
    main()
