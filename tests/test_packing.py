"""orchestrator.packing: longest-first ordering against the zero-overhead FIFO-with-backfill bound of
benchmarks/cluster_makespan.py (the schedule Tune follows), on its own mixed and grid workloads."""

from benchmarks.cluster_makespan import greedy_makespan, ideal_makespan, workload
from orchestrator.packing import longest_first, trial_size


def size(trial):
    return trial_size({"GPU": trial["gpus"], "CPU": 1.0}, trial["seconds"])


def test_longest_first_closes_the_fifo_gap_on_mixed_shapes():
    trials = workload("mixed", 60.0)
    ideal = ideal_makespan(trials, 8)
    assert greedy_makespan(trials, 2, 4) / ideal > 1.15  # the plan's order leaves GPUs idle
    packed = longest_first(trials, size)
    assert sorted(t["index"] for t in packed) == [t["index"] for t in trials]  # a permutation
    assert greedy_makespan(packed, 2, 4) / ideal <= 1.05


def test_single_shape_grid_keeps_the_plan_order():
    trials = [{**t, "seconds": 60.0} for t in workload("grid", 60.0)]
    assert longest_first(trials, size) == trials


def test_trial_size_counts_gpus_before_cpus():
    assert trial_size({"GPU": 2.0, "CPU": 8.0}, 10) == 20.0
    assert trial_size({"CPU": 4.0}, 10) == 40.0
    assert trial_size({}, 3) == 3.0


def test_pending_window_is_one_per_node_plus_one_and_respects_the_users_setting(monkeypatch):
    from orchestrator.packing import PENDING_WINDOW_ENV, cap_pending_trials, pending_window

    assert [pending_window(n) for n in (0, 1, 2, 8)] == [2, 2, 3, 9]
    monkeypatch.delenv(PENDING_WINDOW_ENV, raising=False)
    monkeypatch.delenv("ASYM_PENDING_WINDOW", raising=False)
    assert cap_pending_trials(2) == 3
    assert cap_pending_trials(4) == 5  # a later sweep in the same process, on a bigger cluster: recomputed
    monkeypatch.setenv(PENDING_WINDOW_ENV, "16")  # the user's own cap wins
    assert cap_pending_trials(2) == 16
