"""End to end through the installed `asym` command (Ray Tune on a local Ray, MLflow through the
sweep's local server): the README's own study file, and an Optuna sweep over three settings.

Checked against MLflow read directly: the README study's eight trials carry their axis as a param
and the report aggregates one curve per configuration (4 = 2 alphas x 2 learning rates, 2 seeds
each); the Optuna sweep's 6 sampled trials are 6 distinct configurations, in MLflow (their params)
and in the report's aggregation (its labels and Table 2 rows).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from experiments import tracking_names as tn

README = Path(__file__).resolve().parent.parent / "README.md"


def _asym() -> str:
    local = Path(sys.executable).with_name("asym")
    return str(local) if local.exists() else shutil.which("asym")


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "RAY_ADDRESS")}


def _child_runs(cwd: Path, sweep: str) -> list:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=tn.default_tracking_uri(cwd))
    experiment = client.get_experiment_by_name(tn.experiment_name())
    return client.search_runs([experiment.experiment_id],
                              f"tags.`{tn.TAG_SWEEP}` = '{sweep}' and tags.`{tn.TAG_KIND}` = '{tn.KIND_TRIAL}'")


def readme_study() -> str:
    """The study file of the README's "Your own studies" section, exactly as printed there."""
    text = README.read_text()
    section = text[text.index("## Your own studies"):]
    return re.search(r"```yaml\n(.*?)```", section, re.S).group(1)


@pytest.mark.slow
def test_readme_study_runs_tracks_each_axis_and_reports_one_curve_per_configuration(tmp_path):
    (tmp_path / "lr-alphas.yaml").write_text(readme_study())
    sweep = subprocess.run([_asym(), "sweep", "run", "lr-alphas.yaml", "--smoke", "--steps", "5", "--name", "readme",
                            "--max-concurrent", "2"], cwd=tmp_path, env=_env(), capture_output=True, text=True,
                           timeout=600)
    assert sweep.returncode == 0, sweep.stdout[-2000:] + sweep.stderr[-2000:]
    runs = _child_runs(tmp_path, "readme")
    assert len(runs) == 8 and all(r.info.status == "FINISHED" for r in runs)
    configs = {(r.data.params["alpha_pos"], r.data.params["axis.lr"]) for r in runs}
    assert configs == {(a, lr) for a in ("0.9", "0.5") for lr in ("0.001", "0.003")}
    assert all(r.data.params["cfg.lr"] == r.data.params["axis.lr"] for r in runs)

    report = subprocess.run([_asym(), "report", "readme"], cwd=tmp_path, env=_env(), capture_output=True,
                            text=True, timeout=300)
    assert report.returncode == 0, report.stderr[-2000:]
    out = tmp_path / "reports" / "readme"
    assert (out / "fig2_training.png").stat().st_size > 10_000
    from analysis import summaries
    from analysis.load import load_sweep

    data = load_sweep("readme", tn.default_tracking_uri(tmp_path))
    curve = summaries.curve(data, "train/entropy")
    per_label = curve.groupby("label")["n"].max()
    assert len(per_label) == 4 and (per_label == 2).all()  # one curve per configuration, over 2 seeds
    assert sorted(pd.read_csv(out / "runs.csv")["label"].unique()) == sorted(per_label.index)


@pytest.mark.slow
def test_optuna_samples_are_six_distinct_configurations(tmp_path):
    sweep = subprocess.run([_asym(), "sweep", "optuna", "--range", "entropy_coeff=0,0.02", "--trials", "6", "--smoke",
                            "--steps", "1", "--name", "opt6", "--max-concurrent", "2"], cwd=tmp_path, env=_env(),
                           capture_output=True, text=True, timeout=600)
    assert sweep.returncode == 0, sweep.stdout[-2000:] + sweep.stderr[-2000:]
    runs = _child_runs(tmp_path, "opt6")
    assert len(runs) == 6
    sampled = {tuple(r.data.params[k] for k in ("alpha_pos", "alpha_neg", "entropy_coeff")) for r in runs}
    assert len(sampled) == 6  # six configurations in MLflow ...
    for r in runs:  # ... each logged as its own axes, equal to the trial's own settings
        assert r.data.params["axis.alpha_pos"] == r.data.params["alpha_pos"]
        assert r.data.params["axis.entropy_coeff"] == r.data.params["entropy_coeff"]
    assert len({r.data.tags[tn.TAG_TRIAL_KEY] for r in runs}) == 6 and len({r.info.run_name for r in runs}) == 6

    report = subprocess.run([_asym(), "report", "opt6"], cwd=tmp_path, env=_env(), capture_output=True, text=True,
                            timeout=300)
    assert report.returncode == 0, report.stderr[-2000:]
    from analysis import summaries
    from analysis.load import load_sweep

    data = load_sweep("opt6", tn.default_tracking_uri(tmp_path))
    assert len(data.labels) == 6 and len(summaries.configurations(data)) == 6  # ... and in the report
    table = pd.read_csv(tmp_path / "reports" / "opt6" / "table2_accuracy.csv")
    trained = table[~table["label"].str.endswith("(base)")]
    assert len(trained) == 6 and (trained["seeds"] == 1).all()
