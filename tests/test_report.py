"""`asym report` on a real MLflow sqlite store written in the tracking layout (tests/test_analysis_store.py).

Checks against MLflow read directly with MlflowClient (not through analysis.load): every figure
and table the sweep supports is written (PNG + SVG, Markdown + CSV + LaTeX); the accuracy tables,
kappa table and alpha grid equal the tracked metrics recomputed here; the files are attached to
the sweep's parent run; report.html embeds every image as a data URI and renders in headless
Chromium; unknown / unfinished sweeps and bad options exit 2 with one line and write nothing.
"""

from __future__ import annotations

import base64
import math
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from common import metric_names as mn
from experiments import tracking_names as tn

from test_analysis_store import write_sweep  # noqa: E402  (tests/ is on sys.path under pytest)

TIERS = ("tier1", "tier2")
VERL_BENCHMARKS = ("aime24", "aime25", "amc23", "math500", "olympiadbench")  # math500 must still lead


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """Sweeps: 'mixed' (isolation x 2 seeds + flip + an AsymGRPO grid, one failed trial),
    'back' (two verl backbones x 2 seeds, verl's benchmark names), 'dead' (no finished trial)."""
    from experiments.plan import plan

    root = tmp_path_factory.mktemp("reportstore")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    from dataclasses import replace

    from experiments.studies import STUDIES

    # every isolation method, the Fig 2 sweep points included (a --smoke plan leaves those out)
    iso = plan(replace(STUDIES["isolation"], full_only=()), seeds=[0, 1], smoke=True, steps=24)
    flip = plan("flip", seeds=[0], smoke=True, steps=24)
    grid = plan("grid", seeds=[0], alpha_pos=[0.5, 0.9], alpha_neg=[0.4, 0.75], smoke=True, steps=24)
    failed = grid[-1].__class__(**{**grid[-1].to_dict(), "name": "asym-extra-s0", "settings": grid[-1].settings})
    write_sweep(uri, root, "mixed", iso + flip + grid + [failed], statuses={"asym-extra-s0": "FAILED"})
    back = plan("backbones", backend="verl", seeds=[0, 1], steps=20)
    write_sweep(uri, root, "back", back, benchmarks=VERL_BENCHMARKS, eval_every=10)
    write_sweep(uri, root, "dead", iso[:1], statuses={iso[0].name: "RUNNING"})
    return uri, root


def _client(uri):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri)


def _tracked_runs(uri: str, sweep: str) -> list[dict]:
    """Finished trial runs of a sweep with their raw histories, straight from MLflow."""
    client = _client(uri)
    experiment = client.get_experiment_by_name(tn.experiment_name())
    parent = client.search_runs([experiment.experiment_id], f"tags.`{tn.TAG_SWEEP}` = '{sweep}' and tags.`{tn.TAG_KIND}` = 'sweep'")[0]
    children = client.search_runs([experiment.experiment_id], f"tags.`{tn.PARENT_RUN_ID}` = '{parent.info.run_id}'")
    runs = []
    for run in children:
        if run.info.status != "FINISHED":
            continue
        history = {}
        for key in run.data.metrics:
            latest = {}
            for m in client.get_metric_history(run.info.run_id, key):
                if m.step not in latest or m.timestamp >= latest[m.step].timestamp:
                    latest[m.step] = m
            history[key] = {step: m.value for step, m in sorted(latest.items())}
        runs.append({"params": run.data.params, "history": history})
    return runs


def _expected_accuracy(runs: list[dict], benchmarks: list[str], select: str,
                       select_metric: str = mn.EVAL_MEAN_ACCURACY) -> dict[tuple[str, str], dict[str, float]]:
    """(model, label) -> mean over seeds of each benchmark and the tracked average at the selected step:
    never step 0 (the base has its own row), the later step on tied peaks."""
    cells: dict[tuple[str, str], list[dict[str, float]]] = {}
    for run in runs:
        first = {s: v for s, v in run["history"][select_metric].items() if s > 0}
        if select == "last":
            step = max(first)
        else:
            best = max(first.values())
            step = max(s for s, v in first.items() if v == best)
        row = {b: run["history"][mn.eval_accuracy(b)][step] for b in benchmarks}
        row["avg"] = run["history"][mn.EVAL_MEAN_ACCURACY][step]
        cells.setdefault((run["params"]["model"], run["params"]["label"]), []).append(row)
    return {key: {col: float(np.mean([r[col] for r in rows])) for col in rows[0]} for key, rows in cells.items()}


@pytest.fixture(scope="module")
def mixed_report(store, tmp_path_factory):
    """`asym report mixed` through the real CLI entry point (in process)."""
    from orchestrator.cli import main

    uri, _ = store
    out = tmp_path_factory.mktemp("out") / "mixed"
    try:
        main(["report", "mixed", "--out", str(out), "--tracking-uri", uri, "--ema", "0.6"])
    except SystemExit as exc:  # main returns on success; an exit is a failure
        pytest.fail(f"asym report exited with {exc.code}")
    return out


@pytest.fixture(scope="module")
def back_report(store, tmp_path_factory):
    from analysis.report import ReportSettings, build_report

    uri, _ = store
    out = tmp_path_factory.mktemp("out") / "back"
    path = build_report("back", out, uri, ReportSettings(select="last"), show_progress=False)
    assert path == out / "report.html"
    return out


FIGURES_MIXED = ("fig1_advantages", "fig2_training", "fig2a_pos_only_sweep", "fig2e_neg_only_sweep", "fig3_flip",
                 "fig4d_alpha_grid", "prop2_pressure")


def test_every_figure_and_table_is_written(mixed_report, back_report):
    for stem in FIGURES_MIXED:
        png, svg = mixed_report / f"{stem}.png", mixed_report / f"{stem}.svg"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", stem
        assert png.stat().st_size > 20_000, stem  # a drawn figure, not an empty canvas
        assert "<svg" in svg.read_text()[:2000] and svg.stat().st_size > 20_000, stem
    for stem in ("table1_kappa", "table2_accuracy"):
        for ext in ("md", "csv", "tex"):
            assert (mixed_report / f"{stem}.{ext}").stat().st_size > 0
    assert not list(mixed_report.glob("table3_*"))
    # two backbones: one curve figure per model and Table 3; no flip, no grid (two AsymGRPO rows only)
    names = {p.name for p in back_report.iterdir()}
    assert {"fig2_training_qwen2.5-7b-base.png", "fig2_training_qwen2.5-math-1.5b.svg", "table3_accuracy.tex",
            "fig1_advantages.png", "prop2_pressure.svg", "report.html"} <= names
    assert not any(n.startswith(("fig3_", "fig4d_", "table2_")) for n in names)
    tex = (back_report / "table3_accuracy.tex").read_text()
    assert tex.startswith("\\begin{table}") and "\\toprule" in tex and "\\bottomrule" in tex
    assert not list(back_report.parent.glob(".back.*"))  # no scratch folder left behind


def test_table2_equals_tracked_metrics_at_the_best_checkpoint(store, mixed_report):
    uri, _ = store
    table = pd.read_csv(mixed_report / "table2_accuracy.csv")
    runs = _tracked_runs(uri, "mixed")
    expected = _expected_accuracy(runs, list(TIERS), "best")
    trained = table[~table["label"].str.endswith("(base)")]
    assert len(trained) == len(expected) == 15  # isolation 8 (Fig 2 sweeps included) + flip 3 + grid 4
    for row in trained.itertuples(index=False):
        want = expected[(row.model, row.label)]
        for col in (*TIERS, "avg"):
            assert getattr(row, col) == pytest.approx(want[col], rel=1e-12, abs=1e-12), (row.label, col)
    # the base row is the starting model's step-0 evaluation, averaged per seed then over seeds
    base = table[table["label"] == "embedded-carry (base)"].iloc[0]
    per_seed: dict[str, list[float]] = {}
    for run in runs:
        per_seed.setdefault(run["params"]["seed"], []).append(run["history"][mn.EVAL_MEAN_ACCURACY][0])
    assert base["avg"] == pytest.approx(np.mean([np.mean(v) for v in per_seed.values()]), rel=1e-12)
    # the Markdown view shows the same numbers in percent, the best average in bold
    markdown = (mixed_report / "table2_accuracy.md").read_text()
    best = trained.loc[trained["avg"].idxmax()]
    assert f"**{best['avg'] * 100:.2f}" in markdown


def test_table3_equals_tracked_metrics_at_the_last_checkpoint(store, back_report):
    uri, _ = store
    table = pd.read_csv(back_report / "table3_accuracy.csv")
    ordered = ["math500", "aime24", "aime25", "amc23", "olympiadbench"]
    assert [c for c in table.columns if c in VERL_BENCHMARKS] == ordered  # MATH-500 first, as the paper
    expected = _expected_accuracy(_tracked_runs(uri, "back"), ordered, "last", mn.eval_accuracy("math500"))
    trained = table[~table["label"].str.endswith("(base)")]
    assert sorted(trained["model"].unique()) == ["qwen2.5-7b-base", "qwen2.5-math-1.5b"] and len(trained) == 4
    for row in trained.itertuples(index=False):
        assert row.steps == "20,20"
        for col in (*ordered, "avg"):
            assert getattr(row, col) == pytest.approx(expected[(row.model, row.label)][col], rel=1e-12)


def test_kappa_table_and_alpha_grid_equal_tracked_metrics(store, mixed_report):
    uri, _ = store
    runs = _tracked_runs(uri, "mixed")
    kappa_bars = []
    for run in runs:
        first = [v for _, v in sorted(run["history"][mn.KAPPA].items())][:20]
        kappa_bars.append(np.mean([v for v in first if not math.isnan(v)]))
    kappa = pd.read_csv(mixed_report / "table1_kappa.csv").iloc[0]
    assert kappa["runs"] == len(runs) and kappa["kappa"] == pytest.approx(np.mean(kappa_bars), rel=1e-12)
    assert kappa["kappa_low"] <= kappa["kappa"] <= kappa["kappa_high"]

    grid = pd.read_csv(mixed_report / "fig4d_alpha_grid.csv", index_col=0)
    for run in runs:
        params = run["params"]
        if params["estimator"] != "asym":
            continue
        # selected on the mean over benchmarks (no hard split, no MATH-500 here): after step 0, later on ties
        first = {s: v for s, v in run["history"][mn.EVAL_MEAN_ACCURACY].items() if s > 0}
        step = max(s for s, v in first.items() if v == max(first.values()))
        cell = grid.loc[float(params["alpha_pos"]), str(float(params["alpha_neg"]))]
        assert cell == pytest.approx(run["history"][mn.EVAL_MEAN_ACCURACY][step], rel=1e-12)
    assert grid.shape == (2, 2)


def test_files_are_attached_to_the_sweeps_parent_run(store, mixed_report):
    uri, _ = store
    client = _client(uri)
    experiment = client.get_experiment_by_name(tn.experiment_name())
    parent = client.search_runs([experiment.experiment_id], f"tags.`{tn.TAG_SWEEP}` = 'mixed' and tags.`{tn.TAG_KIND}` = 'sweep'")[0]
    attached = {Path(a.path).name for a in client.list_artifacts(parent.info.run_id, "report")}
    assert attached == {p.name for p in mixed_report.iterdir()}


def test_html_is_self_contained_and_names_left_out_trials(mixed_report):
    page = (mixed_report / "report.html").read_text()
    sources = re.findall(r"<img[^>]*\ssrc=\"([^\"]+)\"", page)
    assert len(sources) == len(FIGURES_MIXED) == len(re.findall(r"<img", page))
    for src in sources:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1])[:4] == b"\x89PNG"
    text = re.sub(r'src="data:image/png;base64,[^"]*"', 'src=""', page)  # base64 may spell anything
    assert "file:" not in text and "http" not in text  # nothing to fetch
    assert page.count("<table") >= 4  # settings, Table 1, Table 2, trials
    assert "asym-extra-s0 (failed)" in page


def test_report_renders_in_headless_chromium(mixed_report, tmp_path):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("chromium is not installed (apt-get install -y chromium); the screenshot test needs it")
    from matplotlib.image import imread

    shot = tmp_path / "shot.png"
    cmd = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}", "--window-size=1200,2000",
           (mixed_report / "report.html").as_uri()]
    subprocess.run(cmd, check=True, capture_output=True, timeout=120)
    pixels = (imread(shot)[..., :3] * 255).round().astype(np.uint8)  # (H, W, 3)
    assert pixels.shape[:2] == (2000, 1200)
    colours = np.unique(pixels.reshape(-1, 3), axis=0)
    assert len(colours) > 500, "screenshot is nearly blank"
    # the figures' method colours (tab10 blue, green, red lines) are on screen: the images rendered
    for hex_colour in ("#1f77b4", "#2ca02c", "#d62728"):
        rgb = np.array([int(hex_colour[i:i + 2], 16) for i in (1, 3, 5)])
        assert (np.abs(pixels.astype(int) - rgb).sum(-1) <= 30).sum() > 200, hex_colour


def _run_cli(argv, capsys):
    from orchestrator.cli import main

    with pytest.raises(SystemExit) as info:
        main(argv)
    return info.value.code, capsys.readouterr().err.strip().splitlines()


def test_unknown_or_unfinished_sweep_and_bad_options_exit_2_with_one_line(store, tmp_path, capsys):
    uri, _ = store
    out = tmp_path / "never"
    code, err = _run_cli(["report", "nope", "--out", str(out), "--tracking-uri", uri], capsys)
    assert code == 2 and len(err) == 1 and err[0].startswith("error: no sweep named 'nope'")
    code, err = _run_cli(["report", "dead", "--out", str(out), "--tracking-uri", uri], capsys)
    assert code == 2 and len(err) == 1 and "has no finished trial" in err[0]
    code, err = _run_cli(["report", "mixed", "--out", str(out), "--tracking-uri", uri, "--ema", "1.5"], capsys)
    assert code == 2 and err == ["error: --ema must be in [0, 1) (0 = no smoothing), got 1.5"]
    code, err = _run_cli(["report", "mixed", "--out", str(out), "--tracking-uri", uri, "--select-on", "tier9"], capsys)
    assert code == 2 and len(err) == 1 and "benchmark 'tier9' is not tracked" in err[0]
    assert not out.exists() and not list(tmp_path.glob(".never.*"))


def test_asym_report_subprocess_unknown_sweep(store, tmp_path):
    uri, _ = store
    asym = Path(__file__).resolve().parents[1] / ".venv" / "bin" / "asym"
    exe = str(asym) if asym.exists() else shutil.which("asym")
    result = subprocess.run([exe, "report", "nope", "--tracking-uri", uri], capture_output=True, text=True,
                            timeout=120, cwd=tmp_path)
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert result.returncode == 2 and len(lines) == 1 and "no sweep named 'nope'" in lines[0]
    assert not (tmp_path / "reports").exists()


def test_a_new_report_replaces_the_previous_one_in_the_folder_and_keeps_other_files(tmp_path):
    from analysis.report import _move_into

    out, scratch = tmp_path / "out", tmp_path / ".out.new"
    out.mkdir()
    scratch.mkdir()
    for name in ("fig3_flip.png", "table2_accuracy.md", "report.html", "my_notes.txt",
                 "cost.csv", "prop1_ordering.md", "fig_pass_at_k.png", "table4_comparison_runs.csv"):
        (out / name).write_text("old")
    for name in ("fig1_advantages.png", "report.html"):
        (scratch / name).write_text("new")
    _move_into(scratch, out)
    assert {p.name: p.read_text() for p in out.iterdir()} == {
        "fig1_advantages.png": "new", "report.html": "new", "my_notes.txt": "old"}
    assert not scratch.exists()


def test_out_that_is_a_file_exits_2(store, tmp_path, capsys):
    uri, _ = store
    target = tmp_path / "file.txt"
    target.write_text("keep")
    code, err = _run_cli(["report", "mixed", "--out", str(target), "--tracking-uri", uri], capsys)
    assert code == 2 and err == [f"error: --out {target} is a file; give a folder for the report"]
    assert target.read_text() == "keep"


def test_prop1_ordering_equals_paired_gaps_recomputed_from_mlflow(store, mixed_report):
    """The ordering table's gaps are per-seed late-window entropy differences to REINFORCE, and the
    predicted side follows the sign of REINFORCE's kappa-bar (eq 6)."""
    uri, _ = store
    table = pd.read_csv(mixed_report / "prop1_ordering.csv")
    runs = [r for r in _tracked_runs(uri, "mixed") if float(r["params"].get("entropy_coeff", 0)) == 0.0]

    def late(run):
        h = run["history"][mn.ENTROPY]
        last = max(h)
        return float(np.mean([v for s, v in h.items() if s >= max(1, int(0.2 * last))]))

    ref = {int(r["params"]["seed"]): late(r) for r in runs if r["params"]["estimator"] == "reinforce"}
    kappa = np.mean([v for r in runs if r["params"]["estimator"] == "reinforce"
                     for s, v in r["history"][mn.KAPPA].items() if s <= 20 and np.isfinite(v)])
    checked = 0
    for label in ("Pos-Only", "Neg-Only a-=0.75"):
        mine = {int(r["params"]["seed"]): late(r) for r in runs if r["params"]["label"] == label}
        gaps = [mine[s] - ref[s] for s in sorted(mine)]
        row = table[table["label"] == label].iloc[0]
        assert row["gap"] == pytest.approx(np.mean(gaps))
        assert row["gap_se"] == pytest.approx(np.std(gaps, ddof=1) / np.sqrt(len(gaps)))
        sign = (1 if label.startswith("Pos") else -1) * (1 if kappa > 0 else -1)
        assert row["predicted"] == ("above" if sign > 0 else "below")
        checked += 1
    assert checked == 2
