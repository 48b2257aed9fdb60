"""The cost ledger: CostMeter's cumulative GPU-/CPU-seconds on top of earlier attempts, and the
per-configuration summary and finish estimate of `asym sweep status` on hand-computed frames."""

import time

import pandas as pd
import pytest

from analysis.cost import cost_by_configuration, estimated_finish
from common import metric_names as M
from orchestrator.ledger import CostMeter


def test_cost_meter_is_cumulative_over_attempts_and_counts_gpus_times_wall():
    meter = CostMeter(gpus=2, previous={M.COST_GPU_SECONDS: 100.0, M.COST_CPU_SECONDS: 10.0, M.COST_WALL_SECONDS: 50.0})
    first = meter()
    deadline = time.process_time() + 0.3
    while time.process_time() < deadline:  # burn CPU
        pass
    second = meter()
    assert first[M.COST_GPU_SECONDS] >= 100.0 and first[M.COST_WALL_SECONDS] >= 50.0
    wall = second[M.COST_WALL_SECONDS] - 50.0
    assert second[M.COST_GPU_SECONDS] - 100.0 == pytest.approx(2 * wall)
    assert second[M.COST_CPU_SECONDS] - first[M.COST_CPU_SECONDS] >= 0.25
    assert CostMeter(gpus=0)()[M.COST_GPU_SECONDS] == 0.0


def frame(rows, planned=None):
    df = pd.DataFrame(rows, columns=["trial", "label", "status", "steps_done", "steps", "gpu_seconds", "cpu_seconds",
                                     "wall_seconds", "start_s"])
    df.attrs["planned"] = planned or len(rows)
    return df


def test_summary_projects_running_trials_at_their_own_pace():
    trials = frame([
        ("a-s0", "A", "FINISHED", 10, 10, 3600.0, 7200.0, 1800.0, 0.0),
        ("a-s1", "A", "RUNNING", 5, 10, 1800.0, 3600.0, 900.0, 0.0),  # half done: projected 2x
        ("a-s2", "A", "RUNNING", 0, 10, 0.0, 0.0, 0.0, 0.0),  # not started: the finished mean
        ("b-s0", "B", "FAILED", 3, 10, 360.0, 0.0, 0.0, 0.0),  # paid for, never grows
    ])
    summary = cost_by_configuration(trials).set_index("label")
    assert summary.loc["A", "gpu_hours"] == pytest.approx(1.5)
    assert summary.loc["A", "projected_gpu_hours"] == pytest.approx(1.0 + 1.0 + 1.0)
    assert summary.loc["A", "projected_cpu_hours"] == pytest.approx(2.0 + 2.0 + 2.0)
    assert (summary.loc["A", "trials"], summary.loc["A", "finished"]) == (3, 1)
    assert summary.loc["B", "projected_gpu_hours"] == pytest.approx(0.1)


def test_estimated_finish_extrapolates_the_pace_and_knows_pending_trials():
    running = frame([("a", "A", "FINISHED", 10, 10, 0, 0, 0, 0.0), ("b", "A", "RUNNING", 5, 10, 0, 0, 0, 0.0)], planned=3)
    # 1.5 of 3 trials' work in 100 s: 1.5 left, another 100 s
    assert estimated_finish(running, now=100.0) == pytest.approx(200.0)
    done = frame([("a", "A", "FINISHED", 10, 10, 0, 0, 0, 0.0)])
    assert estimated_finish(done, now=100.0) is None


def test_live_table_shows_used_and_projected_hours():
    from orchestrator.live import LiveTable

    table = LiveTable("sweep", {"a": 10, "b": 10, "c": 10})
    table._began = time.time() - 100
    table.rows = {"a": {"state": "DONE", "step": 10, M.COST_CPU_SECONDS: 3600.0, M.COST_GPU_SECONDS: 7200.0},
                  "b": {"state": "RUNNING", "step": 5, M.COST_CPU_SECONDS: 1800.0, M.COST_GPU_SECONDS: 3600.0}}
    line = table.ledger_line()
    assert "GPU-h used 3.000, projected 4.000" in line and "CPU-h used 1.500, projected 2.000" in line
    assert "est. finish" in line
