"""Study files and axes, before anything runs: the typed schema's errors (one line naming the
file, line and field; exit 2; nothing written), `asym study show FILE`, `--set` on every sweep
command, and the planner's expansion of axes and sampled points into distinct trials. No Ray or
MLflow starts here."""

from __future__ import annotations

import json

import pytest

from experiments.parse import parse_set
from experiments.plan import plan, plan_sampled
from experiments.spec import Axis
from experiments.studies import STUDIES
from experiments.studies import OPTUNA_STUDY
from experiments.study_file import load_study_file
from orchestrator.cli import main

GOOD = """\
name: lr-alphas
seeds: [0, 1]
methods:
  - label: AsymGRPO (0.9, 0.4)
    estimator: asym
    alpha_pos: 0.9
    alpha_neg: 0.4
  - label: AsymGRPO (0.5, 0.4)
    estimator: asym
    alpha_pos: 0.5
    alpha_neg: 0.4
    source: "our guess"
axes:
  lr: [0.001, 0.003]
"""
METHOD = "methods:\n  - label: a\n    estimator: asym\n"
BAD = {  # file text, the one-line error it gives (file:line (field): ...)
    "unknown_key": ("name: x\n" + METHOD + "    alpah_pos: 1\n", r"unknown_key.yaml:5 \(methods\[0\].alpah_pos\): unknown field 'alpah_pos'"),
    "wrong_type": ("name: x\n" + METHOD + "    alpha_pos: high\n", r"wrong_type.yaml:5 \(methods\[0\].alpha_pos\): field 'alpha_pos': Value 'high'"),
    "empty_axis": ("name: x\n" + METHOD + "axes:\n  lr: []\n", r"empty_axis.yaml:6 \(axes.lr\): axis 'lr' has no values"),
    "duplicate_method": ("name: x\n" + METHOD + "  - label: a\n    estimator: grpo\n",
                         r"duplicate_method.yaml:5 \(methods\[1\].label\): method 'a' is declared twice \(first at line 3\)"),
    "unknown_estimator": ("name: x\nmethods:\n  - label: a\n    estimator: nope\n",
                          r"unknown_estimator.yaml:4 \(methods\[0\].estimator\): unknown estimator 'nope'; known: reinforce"),
    "alpha_out_of_range": ("name: x\n" + METHOD + "    alpha_neg: -1\n",
                           r"alpha_out_of_range.yaml:5 \(methods\[0\].alpha_neg\): alpha_neg must be a finite number >= 0"),
    "unknown_parameter": ("name: x\n" + METHOD + "    params: {power: 2}\n",
                          r"unknown_parameter.yaml:5 \(methods\[0\].params.power\): estimator 'asym' has no parameter 'power'"),
    "unknown_setting": ("name: x\n" + METHOD + "axes:\n  lrr: [1, 2]\n", r"unknown key 'lrr' for model 'embedded-carry'"),
    "missing_methods": ("name: x\n", r"missing_methods.yaml: methods needs at least one method \(or an alpha_grid\)"),
}


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return tmp_path


def _run(argv, capsys) -> tuple[int, str, str]:
    try:
        main(argv)
        code = 0
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_study_file_is_one_line_exit_2_and_writes_nothing(case, workdir, capsys):
    text, pattern = BAD[case]
    (workdir / f"{case}.yaml").write_text(text)
    for argv in (["sweep", "run", f"{case}.yaml", "--smoke"], ["study", "show", f"{case}.yaml"]):
        code, out, err = _run(argv, capsys)
        assert code == 2, (argv, err)
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), err
        assert __import__("re").search(pattern, lines[0]), lines[0]
    assert sorted(p.name for p in workdir.iterdir()) == [f"{case}.yaml"]  # nothing written


def test_estimator_parameter_out_of_range_names_the_line(workdir, capsys, plugin_module):
    (workdir / "s.yaml").write_text(
        "name: x\nplugins: [my_estimators]\nmethods:\n  - label: a\n    estimator: sharp-asym\n"
        "    params: {power: 9}\n")
    code, _, err = _run(["sweep", "run", "s.yaml", "--dry-run"], capsys)
    assert code == 2
    assert "s.yaml:6 (methods[0].params.power): estimator 'sharp-asym': parameter power must be in [0.25, 4], got 9" in err
    (workdir / "t.yaml").write_text(
        "name: x\nplugins: [my_estimators]\nmethods:\n  - label: a\n    estimator: sharp-asym\n"
        "axes:\n  params.power: [1, 0.1]\n")
    code, _, err = _run(["sweep", "run", "t.yaml", "--dry-run"], capsys)
    assert code == 2 and "t.yaml:7 (axes.params.power): estimator 'sharp-asym': parameter power must be in" in err


def test_study_file_plans_methods_x_axes_x_seeds_with_sources(workdir):
    (workdir / "s.yaml").write_text(GOOD)
    study = load_study_file(workdir / "s.yaml")
    assert [m.source for m in study.methods] == ["s.yaml:4", "s.yaml:8: our guess"]
    assert study.axes == (Axis("lr", (0.001, 0.003), "s.yaml:14"),)
    trials = plan(study, smoke=True)
    assert len(trials) == 8 and {t.seed for t in trials} == {0, 1}
    labels = {t.label for t in trials}
    assert labels == {f"AsymGRPO ({a}, 0.4) lr={lr}" for a in ("0.9", "0.5") for lr in ("0.001", "0.003")}
    assert len({t.key for t in trials}) == 8 and len({t.name for t in trials}) == 8
    for t in trials:
        assert t.settings_dict()["lr"] == dict(t.axes)["lr"]
        assert t.params()["axis.lr"] == str(dict(t.axes)["lr"]) and t.params()["cfg.lr"] == t.params()["axis.lr"]


def test_set_adds_or_replaces_an_axis_on_every_sweep_command(workdir, capsys):
    (workdir / "s.yaml").write_text(GOOD)
    for argv, count in ((["sweep", "run", "s.yaml", "--set", "lr=0.01", "--set", "entropy_coeff=0,0.02"], 8),
                        (["sweep", "isolation", "--set", "clip_high=0.25,0.3"], 2 * len([m for m in STUDIES["isolation"].methods
                                                                                          if m.label not in STUDIES["isolation"].full_only])),
                        (["sweep", "grid", "--alpha-pos", "0.5", "--alpha-neg", "0.4", "--set", "group_size=4,8"], 2)):
        code, out, err = _run([*argv, "--dry-run", "--json", "--smoke"], capsys)
        assert code == 0, err
        rows = json.loads(out)
        assert len(rows) == count and len({r["key"] for r in rows}) == count
    assert {r["settings"]["group_size"] for r in rows} == {4, 8}
    code, out, err = _run(["sweep", "optuna", "--set", "lr=0.002", "--trials", "2", "--smoke", "--dry-run", "--json"], capsys)
    assert code == 0 and json.loads(out)[0]["settings"]["lr"] == 0.002
    code, _, err = _run(["sweep", "isolation", "--set", "lr", "--dry-run"], capsys)
    assert code == 2 and "--set needs key=value" in err


def test_study_show_file_lists_methods_axes_and_sources(workdir, capsys):
    (workdir / "s.yaml").write_text(GOOD)
    code, out, err = _run(["study", "show", "s.yaml", "--json", "--set", "clip_high=0.28"], capsys)
    assert code == 0, err
    desc = json.loads(out)
    assert [a["key"] for a in desc["axes"]] == ["lr", "clip_high"] and desc["axes"][1]["source"] == "--set"
    assert len(desc["trials"]) == 4  # seed 0 only: 2 methods x 2 lr x 1 clip_high
    assert desc["methods"][1]["source"] == "s.yaml:8: our guess"


def test_builtin_studies_carry_their_sources_on_every_method():
    for study in STUDIES.values():
        assert all(m.source for m in study.methods), study.name


def test_sampled_points_are_planned_like_grid_cells():
    options = dict(smoke=True)
    samples = [{"alpha_pos": 0.55, "alpha_neg": 0.72, "entropy_coeff": 0.012},
               {"alpha_pos": 0.61, "alpha_neg": 0.54, "entropy_coeff": 0.003}]
    trials = [plan_sampled(OPTUNA_STUDY, options, s) for s in samples]
    assert [t.label for t in trials] == ["AsymGRPO alpha_pos=0.55 alpha_neg=0.72 entropy_coeff=0.012",
                                         "AsymGRPO alpha_pos=0.61 alpha_neg=0.54 entropy_coeff=0.003"]
    assert [(t.alpha_pos, t.alpha_neg, t.entropy_coeff) for t in trials] == [(0.55, 0.72, 0.012), (0.61, 0.54, 0.003)]
    assert len({t.key for t in trials}) == 2 and len({t.name for t in trials}) == 2
    with pytest.raises(ValueError, match="alpha_pos must be a finite number >= 0"):
        plan_sampled(OPTUNA_STUDY, options, {"alpha_pos": -0.5})
    with pytest.raises(ValueError, match="plans 2"):
        plan_sampled(OPTUNA_STUDY, dict(seeds=[0, 1]), {"alpha_pos": 0.5})


def test_parse_set_reads_yaml_scalars():
    assert parse_set("lr=1e-3,3e-3").values == (0.001, 0.003)
    assert parse_set("loss_agg=token-mean,seq-mean-token-sum-norm").values == ("token-mean", "seq-mean-token-sum-norm")
    assert parse_set("group_size=4,8").values == (4, 8)
    with pytest.raises(ValueError, match="listed twice"):
        parse_set("lr=1,1")


PAPER_LIKE = """\
name: mine
models: {verl: [qwen3-4b], embedded: [embedded-tiny]}
methods:
  - {label: GRPO, estimator: grpo}
  - {label: Clip-Cov, estimator: grpo, policy_loss: clip_cov, smoke: false}
alpha_grid:
  alpha_pos: [0.5, 0.9]
  alpha_neg: [0.4]
"""


def test_a_user_file_says_what_a_paper_study_says(workdir):
    """policy_loss, a smoke subset, an alpha grid and per-backend models, as the paper's files use them."""
    (workdir / "m.yaml").write_text(PAPER_LIKE)
    study = load_study_file(workdir / "m.yaml")
    assert study.models == ("qwen3-4b",) and study.embedded_models == ("embedded-tiny",)
    assert study.full_only == ("Clip-Cov",)
    full = plan(study)
    assert [t.label for t in full] == ["GRPO", "Clip-Cov", "AsymGRPO (0.5, 0.4)", "AsymGRPO (0.9, 0.4)"]
    assert full[1].policy_loss == "clip_cov" and full[1].name == "grpo-clip-cov-s0"
    assert [t.label for t in plan(study, smoke=True)] == ["GRPO", "AsymGRPO (0.5, 0.4)", "AsymGRPO (0.9, 0.4)"]
    assert [t.alpha_pos for t in plan(study, alpha_pos=[0.1])][2:] == [0.1]
    assert {t.model for t in plan(study, backend="verl")} == {"qwen3-4b"}


@pytest.mark.parametrize("text, pattern", [
    ("name: x\nmethods:\n  - {label: a, estimator: grpo, policy_loss: nope}\n",
     r"x.yaml:3 \(methods\[0\].policy_loss\): unknown policy_loss 'nope'"),
    ("name: x\nalpha_grid:\n  alpha_pos: [0.5, -1]\n  alpha_neg: [0.4]\n",
     r"x.yaml:3 \(alpha_grid.alpha_pos\[1\]\): alpha_pos must be a finite number >= 0"),
    ("name: x\nalpha_grid:\n  alpha_pos: [0.5]\n  alpha_neg: [0.4]\n  estimator: grpo\n",
     r"x.yaml:5 \(alpha_grid.estimator\): estimator 'grpo' does not take both alphas"),
    ("name: x\nmodels: {gpu: [a]}\nmethods:\n  - {label: a, estimator: grpo}\n",
     r"x.yaml:2 \(models.gpu\): unknown backend 'gpu'"),
])
def test_the_grown_schema_rejects_bad_values_with_file_and_line(workdir, text, pattern):
    (workdir / "x.yaml").write_text(text)
    with pytest.raises(ValueError, match=pattern):
        load_study_file(workdir / "x.yaml")


def test_the_paper_studies_are_shipped_yaml_files_read_by_the_study_file_loader():
    from importlib import resources

    files = sorted(p.name for p in resources.files("experiments.studies").iterdir() if p.name.endswith(".yaml"))
    assert files == sorted(f"{name}.yaml" for name in STUDIES)
    with resources.as_file(resources.files("experiments.studies") / "isolation.yaml") as path:
        assert load_study_file(path).methods == STUDIES["isolation"].methods
    # every method's source starts with its file and line, as a user file's does
    for name, study in STUDIES.items():
        for method in study.methods:
            assert method.source.startswith(f"{name}.yaml:"), (name, method.label, method.source)


def test_set_accepts_every_method_field_policy_loss_included(capsys):
    code, out, err = _run(["sweep", "isolation", "--set", "policy_loss=clip_cov", "--dry-run", "--json"], capsys)
    assert code == 0, err
    rows = json.loads(out)
    assert len(rows) == len(STUDIES["isolation"].methods) and {r["policy_loss"] for r in rows} == {"clip_cov"}
    assert all("clip-cov" in r["name"] for r in rows)
    code, out, err = _run(["sweep", "flip", "--set", "use_preset_entropy_coeff=true", "--dry-run", "--json"], capsys)
    assert code == 0, err
    assert {r["entropy_coeff"] > 0 for r in json.loads(out)} == {True}
