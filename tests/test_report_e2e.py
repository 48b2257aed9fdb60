"""End to end: a real smoke sweep of the embedded backend (Ray Tune on a local Ray, MLflow through
the sweep's local server), then `asym report` in the same working directory.

Checks against MLflow read directly: Table 2 and Table 1 equal the tracked metrics of the
finished trials; every file is on disk and attached to the sweep's parent run; the HTML embeds
every figure as a data URI.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from common import metric_names as mn
from experiments import tracking_names as tn

from test_report import _expected_accuracy, _tracked_runs  # noqa: E402  (tests/ is on sys.path)

SWEEP = "report-e2e"


def _asym() -> str:
    local = Path(sys.executable).with_name("asym")
    return str(local) if local.exists() else shutil.which("asym")


@pytest.mark.slow
def test_smoke_sweep_then_report(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "RAY_ADDRESS")}
    sweep = subprocess.run(
        [_asym(), "sweep", "grid", "--alpha-pos", "0.5,0.9", "--alpha-neg", "0.4", "--seeds", "0,1", "--smoke",
         "--name", SWEEP, "--max-concurrent", "2"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=420)
    assert sweep.returncode == 0, sweep.stdout[-2000:] + sweep.stderr[-2000:]

    report = subprocess.run([_asym(), "report", SWEEP, "--ema", "0.5"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=300)
    assert report.returncode == 0, report.stderr[-2000:]
    out = tmp_path / "reports" / SWEEP
    assert f"report: reports/{SWEEP}/report.html" in report.stdout
    for stem in ("fig1_advantages", "fig2_training", "prop2_pressure"):
        assert (out / f"{stem}.png").stat().st_size > 10_000 and (out / f"{stem}.svg").exists()
    for ext in ("md", "csv", "tex"):
        assert (out / f"table2_accuracy.{ext}").exists() and (out / f"table1_kappa.{ext}").exists()

    uri = tn.default_tracking_uri(tmp_path)
    runs = _tracked_runs(uri, SWEEP)
    assert len(runs) == 4
    benchmarks = ["tier1", "tier2"]  # the embedded engine's tiers, cfg.tiers = (1, 2)
    expected = _expected_accuracy(runs, benchmarks, "best")
    table = pd.read_csv(out / "table2_accuracy.csv")
    trained = table[~table["label"].str.endswith("(base)")]
    assert sorted(trained["label"]) == ["AsymGRPO (0.5, 0.4)", "AsymGRPO (0.9, 0.4)"]
    assert (trained["seeds"] == 2).all()
    for row in trained.itertuples(index=False):
        for col in (*benchmarks, "avg"):
            assert getattr(row, col) == pytest.approx(expected[(row.model, row.label)][col], rel=1e-12, abs=1e-12)

    kappa_bars = []
    for run in runs:
        first = [v for _, v in sorted(run["history"][mn.KAPPA].items())][:20]
        finite = [v for v in first if not np.isnan(v)]
        kappa_bars.append(np.mean(finite) if finite else np.nan)
    kappa = pd.read_csv(out / "table1_kappa.csv").iloc[0]
    assert kappa["kappa"] == pytest.approx(np.nanmean(kappa_bars), rel=1e-12, abs=1e-15)

    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name(tn.experiment_name())
    parent = client.search_runs([experiment.experiment_id], f"tags.`{tn.TAG_SWEEP}` = '{SWEEP}' and tags.`{tn.TAG_KIND}` = 'sweep'")[0]
    attached = {Path(a.path).name for a in client.list_artifacts(parent.info.run_id, "report")}
    assert attached == {p.name for p in out.iterdir()}

    page = (out / "report.html").read_text()
    sources = re.findall(r"<img[^>]*\ssrc=\"([^\"]+)\"", page)
    pngs = sorted(out.glob("*.png"))  # every figure the sweep supports (Fig 1, 2, 5, Prop. 2, ...) is embedded
    assert len(sources) == len(pngs) >= 3 and all(s.startswith("data:image/png;base64,") for s in sources)
