"""Benchmark: how close Ray Tune packs a sweep of mixed GPU trials to the ideal, on a simulated cluster.

The cluster (cluster.local_sim): a GPU-less head and two worker nodes with 4 logical GPUs each.
The sweep: trials of known length that sleep, needing 4, 2 or 1 GPUs, in the shapes our sweeps ask
Tune for (`tune.with_resources`, Tune's default FIFO scheduling, no concurrency cap), so what is
measured is Ray Tune's packing plus its per-trial overhead (actor start, placement groups, results).

- ideal makespan = max(total GPU-seconds / GPUs, longest trial): no schedule can be shorter;
- makespan (trials) = first trial start -> last trial end, as the trials record it;
- makespan (fit)    = `Tuner.fit()` call -> return, Tune's start-up and shutdown included;
- GPU-slot utilization while trials are queued = GPU-seconds held by running trials / (GPUs x time),
  over [first start, last start] (the span in which some trial is still waiting).

Targets: makespan / ideal <= 1.10; utilization while queued > 90%.

    python benchmarks/cluster_makespan.py [--seconds 60] [--smoke]

Three settings side by side on one cluster: the plan's order with a fresh actor process per trial,
the same with `reuse_actors=True`, and what our sweeps do (`orchestrator.packing`: longest processing
time first, and at most nodes + 1 trials waiting for a placement group so Ray places them in that
order) with fresh actors. The last line is `fresh_ratio_trials=... packed_...`.
"""

from __future__ import annotations

import argparse
import tempfile
import time

WORKERS, GPUS_PER_WORKER = 2, 4


def workload(kind: str, seconds: float) -> list[dict]:
    """The trials: `grid`, 16 two-GPU trials of two lengths (a study's grid, the issue's shape), or
    `mixed`, a third of the GPU-time each in 4-, 2- and 1-GPU trials of two lengths."""
    if kind == "grid":
        shapes = [(2, 1.0), (2, 1.0), (2, 0.5), (2, 0.5)] * 4
    else:
        shapes = [(4, 1.0), (4, 1.0), (2, 1.0), (2, 0.5), (2, 1.0), (2, 0.5), (2, 1.0),
                  (1, 1.0), (1, 1.0), (1, 0.5), (1, 0.5), (1, 1.0), (1, 1.0), (1, 1.0), (1, 1.0), (1, 0.5), (1, 0.5)]
    return [{"index": i, "gpus": g, "seconds": round(f * seconds, 3)} for i, (g, f) in enumerate(shapes)]


def greedy_makespan(trials: list[dict], nodes: int, gpus_per_node: int) -> float:
    """The makespan of a zero-overhead FIFO-with-backfill schedule (what Tune does: start, in order,
    every pending trial that fits on a node whenever GPUs free up): the packing bound of this order."""
    free = [gpus_per_node] * nodes
    pending = list(trials)
    running: list[tuple[float, int, int]] = []  # (end, node, gpus)
    now = 0.0
    while pending or running:
        for trial in list(pending):
            node = next((n for n in range(nodes) if free[n] >= trial["gpus"]), None)
            if node is not None:
                free[node] -= trial["gpus"]
                running.append((now + trial["seconds"], node, trial["gpus"]))
                pending.remove(trial)
        running.sort()
        now, node, gpus = running.pop(0)
        free[node] += gpus
        while running and running[0][0] == now:
            _, node, gpus = running.pop(0)
            free[node] += gpus
    return now


def ideal_makespan(trials: list[dict], gpus: int) -> float:
    gpu_seconds = sum(t["gpus"] * t["seconds"] for t in trials)
    return max(gpu_seconds / gpus, max(t["seconds"] for t in trials))


def utilization_while_queued(rows: list[dict], gpus: int) -> float:
    """Mean fraction of GPUs held by running trials over [first start, last start]."""
    begin = min(r["start"] for r in rows)
    end = max(r["start"] for r in rows)
    if end <= begin:
        return 1.0
    held = sum(r["gpus"] * max(0.0, min(r["end"], end) - max(r["start"], begin)) for r in rows)
    return held / (gpus * (end - begin))


def run_once(trials: list[dict], reuse_actors: bool, storage: str, pending_window: int | None = None) -> dict:
    """One sweep of `trials` on the connected cluster; the measured numbers. `pending_window`: Tune's cap
    on trials waiting for a placement group (None: Tune's default, 1.1 x the cluster's CPUs)."""
    import os

    from ray import tune

    from orchestrator.packing import PENDING_WINDOW_ENV

    os.environ.pop(PENDING_WINDOW_ENV, None)
    if pending_window is not None:
        os.environ[PENDING_WINDOW_ENV] = str(pending_window)

    from cluster.local_sim import sleep_trial

    gpus = WORKERS * GPUS_PER_WORKER
    tuner = tune.Tuner(
        tune.with_resources(sleep_trial, lambda config: {"cpu": 0.5, "gpu": config["trial"]["gpus"]}),
        param_space={"trial": tune.grid_search(trials)},
        tune_config=tune.TuneConfig(num_samples=1, reuse_actors=reuse_actors),
        run_config=tune.RunConfig(name=f"makespan-reuse{int(reuse_actors)}-{time.time_ns()}", storage_path=storage, verbose=0),
    )
    fit_start = time.time()
    results = tuner.fit()
    fit_end = time.time()
    if results.errors:
        raise RuntimeError(f"{len(results.errors)} trials failed: {results.errors[0]}")
    rows = [{**r.metrics, "gpus": r.config["trial"]["gpus"]} for r in results]
    ideal = ideal_makespan(trials, gpus)
    greedy = greedy_makespan(trials, WORKERS, GPUS_PER_WORKER)
    trials_span = max(r["end"] for r in rows) - min(r["start"] for r in rows)
    return {
        "trials": len(rows), "ideal_s": ideal, "greedy_s": greedy, "ratio_greedy": trials_span / greedy, "makespan_trials_s": trials_span, "makespan_fit_s": fit_end - fit_start,
        "ratio_trials": trials_span / ideal, "ratio_fit": (fit_end - fit_start) / ideal,
        "utilization_queued": utilization_while_queued(rows, gpus),
    }


def run(kind: str, seconds: float) -> dict[str, dict]:
    """Both settings on one simulated cluster: Tune's default (a fresh actor per trial, as our sweeps
    run) and `reuse_actors=True` (a finished trial's actor takes the next trial of its shape)."""
    from cluster.local_sim import simulated_cluster

    from orchestrator.packing import longest_first, pending_window, trial_size

    trials = workload(kind, seconds)
    packed = longest_first(trials, lambda t: trial_size({"GPU": t["gpus"]}, t["seconds"]))
    with simulated_cluster(workers=WORKERS, gpus_per_worker=GPUS_PER_WORKER, cpus_per_worker=8), \
            tempfile.TemporaryDirectory(prefix="makespan") as storage:
        return {"fresh actors": run_once(trials, False, storage), "reuse_actors": run_once(trials, True, storage),
                "packed (LPT)": run_once(packed, False, storage, pending_window(WORKERS))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="length of a full-length trial")
    parser.add_argument("--workload", choices=("grid", "mixed"), default="grid", help="the trials' shapes (see workload)")
    parser.add_argument("--smoke", action="store_true", help="4-second trials: checks the script, not the targets")
    args = parser.parse_args()
    seconds = 4.0 if args.smoke else args.seconds
    outs = run(args.workload, seconds)
    first = next(iter(outs.values()))
    print(f"workload {args.workload}: {first['trials']} trials ({seconds:g} s full length) on {WORKERS} nodes x "
          f"{GPUS_PER_WORKER} logical GPUs; ideal makespan {first['ideal_s']:.1f} s, zero-overhead FIFO "
          f"schedule {first['greedy_s']:.1f} s")
    print(f"{'setting':<14} {'makespan trials':>16} {'/ideal':>7} {'/FIFO':>6} {'makespan fit':>13} {'/ideal':>7} "
          f"{'GPU util queued':>16}")
    for label, out in outs.items():
        print(f"{label:<14} {out['makespan_trials_s']:>14.1f} s {out['ratio_trials']:>7.3f} {out['ratio_greedy']:>6.3f} "
              f"{out['makespan_fit_s']:>11.1f} s {out['ratio_fit']:>7.3f} {100 * out['utilization_queued']:>15.1f}%")
    print("targets: makespan / ideal <= 1.10, GPU-slot utilization while queued > 90%")
    print(" ".join(f"{key}_{metric}={out[metric]:.3f}" for key, out in
                   (("fresh", outs["fresh actors"]), ("reuse", outs["reuse_actors"]), ("packed", outs["packed (LPT)"]))
                   for metric in ("ratio_trials", "ratio_fit", "utilization_queued")))


if __name__ == "__main__":
    main()
