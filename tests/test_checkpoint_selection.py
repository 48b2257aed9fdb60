"""The report scores trained checkpoints, never the base model, and sees a difference where one exists.

A real MLflow sqlite store holds a 2 x 2 alpha grid whose runs start from the same solved-easy /
unsolved-hard base model (step 0) and then differ: the report must select a trained step for every
run, on the hard split, report one distinct number per cell, none equal to the base row, and draw a
user's own alpha-family estimator's grid beside AsymGRPO's (the registry's flag, logged by the trial).
"""

from __future__ import annotations

import pandas as pd
import pytest

from common import metric_names as mn
from experiments import tracking_names as tn

BASE = {"tier1": 1.0, "tier2": 0.6, "hard": 0.10}  # step 0: the easy tier is solved, the hard split is not
CELLS = {(0.5, 0.4): 0.20, (0.5, 0.75): 0.30, (0.9, 0.4): 0.45, (0.9, 0.75): 0.35}  # hard accuracy at step 20


def _history(hard_peak: float) -> dict[int, dict[str, float]]:
    rows = {0: dict(BASE)}
    for step, frac in ((10, 0.5), (20, 1.0), (30, 1.0)):  # steps 20 and 30 tie: the later one is reported
        rows[step] = {"tier1": 1.0, "tier2": 0.6 + 0.1 * frac, "hard": BASE["hard"] + frac * (hard_peak - BASE["hard"])}
    out = {}
    for step, acc in rows.items():
        metrics = {mn.eval_accuracy(b): v for b, v in acc.items()}
        metrics[mn.EVAL_MEAN_ACCURACY] = sum(acc.values()) / len(acc)
        metrics.update({f"eval/hard/pass_at_{k}": min(1.0, acc["hard"] * k ** 0.5) for k in (1, 2, 4, 8, 16)})
        out[step] = metrics
    return out


def _write(uri: str, root, sweep: str, estimators: tuple[str, ...]) -> None:
    from mlflow.entities import Metric, Param
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name(tn.experiment_name())
    experiment_id = experiment.experiment_id if experiment else client.create_experiment(
        tn.experiment_name(), artifact_location=(root / "artifacts").as_uri())
    parent = client.create_run(experiment_id, run_name=sweep, tags={tn.TAG_KIND: tn.KIND_SWEEP, tn.TAG_SWEEP: sweep,
                                                                    tn.TAG_STUDY: "grid"})
    for estimator in estimators:
        for (alpha_pos, alpha_neg), peak in CELLS.items():
            peak = peak if estimator == "asym" else peak / 2
            name = f"{estimator}-{alpha_pos}-{alpha_neg}-s0"
            run = client.create_run(experiment_id, run_name=name, tags={
                tn.PARENT_RUN_ID: parent.info.run_id, tn.TAG_KIND: tn.KIND_TRIAL, tn.TAG_SWEEP: sweep,
                tn.TAG_STUDY: "grid", tn.TAG_TRIAL_KEY: name, tn.TAG_TRIAL: name})
            params = {"estimator": estimator, "label": f"{estimator} ({alpha_pos}, {alpha_neg})", "seed": "0",
                      "model": "embedded-tiny", "backend": "embedded", "alpha_pos": str(alpha_pos),
                      "alpha_neg": str(alpha_neg), "steps": "30", "cfg.tiers": "(1, 2)"}
            if estimator != "asym":  # a user's estimator, not registered in the report's process
                params["alpha_family"] = "True"
            metrics = [Metric(k, v, 1_700_000_000_000 + step, step) for step, row in _history(peak).items()
                       for k, v in row.items()]
            client.log_batch(run.info.run_id, metrics=metrics, params=[Param(k, v) for k, v in params.items()])
            client.set_terminated(run.info.run_id)
    client.set_terminated(parent.info.run_id)


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    from analysis.report import ReportSettings, build_report

    root = tmp_path_factory.mktemp("selection")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    _write(uri, root, "cells", ("asym", "sharp-asym"))
    out = root / "out"
    build_report("cells", out, uri, ReportSettings(), show_progress=False)
    return out, uri


def test_no_trained_run_reports_step_0_and_ties_go_to_the_later_step(report):
    out, _ = report
    table = pd.read_csv(out / "table2_accuracy.csv")
    trained = table[~table["label"].str.endswith("(base)")]
    assert len(trained) == 8 and set(trained["steps"].astype(str)) == {"30"}
    assert list(table.columns[4:7]) == ["hard", "hard_low", "hard_high"]  # the selection benchmark leads
    base = table[table["label"].str.endswith("(base)")].iloc[0]
    assert base["hard"] == pytest.approx(BASE["hard"]) and (trained["hard"] != base["hard"]).all()
    # the area under the hard split's eval curve: trapezoid over steps 0..30 / 30
    asym_09_04 = trained[trained["label"] == "asym (0.9, 0.4)"].iloc[0]
    h = [0.10, 0.10 + 0.5 * 0.35, 0.45, 0.45]
    assert asym_09_04["auc"] == pytest.approx(((h[0] + h[1]) / 2 + (h[1] + h[2]) / 2 + (h[2] + h[3]) / 2) / 3)


def test_each_grid_cell_reports_its_own_number_and_a_users_alpha_family_estimator_gets_a_grid(report):
    out, _ = report
    grid = pd.read_csv(out / "fig4d_alpha_grid.csv", index_col=0)
    values = {(float(a), float(b)): grid.loc[a, b] for a in grid.index for b in grid.columns}
    assert values == pytest.approx({key: peak for key, peak in CELLS.items()})
    assert len(set(values.values())) == 4  # four histories, four numbers
    user = pd.read_csv(out / "fig4d_alpha_grid_sharp-asym.csv", index_col=0)
    assert user.to_numpy().max() == pytest.approx(max(CELLS.values()) / 2)
    assert (out / "fig4d_alpha_grid.png").exists() and (out / "fig_pass_at_k.png").exists()
    page = (out / "report.html").read_text()
    assert "hard-split accuracy" in page
    # four evaluations per run: an EMA would show a fraction of the accuracy, so the curve is not smoothed
    assert "not smoothed: 4 evaluations per run" in page and "checkpoint with the best hard-split" in page


def test_bad_selection_options_exit_2_with_one_line_and_write_nothing(report, tmp_path, capsys):
    from orchestrator.cli import main

    _, uri = report
    for argv, message in ((["--select", "median"], "--select"), (["--select-on", "aime99"], "benchmark 'aime99' is not tracked")):
        with pytest.raises(SystemExit) as info:
            main(["report", "cells", "--out", str(tmp_path / "x"), "--tracking-uri", uri, *argv])
        err = capsys.readouterr().err.strip().splitlines()
        assert info.value.code == 2 and len(err) == 1 and message in err[0], err
    assert not (tmp_path / "x").exists()
