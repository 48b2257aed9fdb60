"""The pure planner (experiments.plan): every study on both backends, names, keys, the grid, parsing.

Checked against the study declarations (Table 2 rows, spec sections 6-7), the estimator registry's
default alphas, and the embedded engine's own ``EngineConfig.create`` (every embedded trial must be
a valid engine run).
"""

from __future__ import annotations

import json
import math

import pytest

from experiments.parse import parse_float_list, parse_seeds
from experiments.plan_print import trials_json, trials_table
from experiments.plan import plan
from experiments.studies import STUDIES


@pytest.mark.parametrize("backend", ["embedded", "verl"])
@pytest.mark.parametrize("name", list(STUDIES))
def test_every_study_plans_unique_valid_trials(name, backend):
    trials = plan(name, backend=backend, seeds=(0, 1))
    study = STUDIES[name]
    models = {t.model for t in trials}
    expected = (study.models or ("qwen3-4b",)) if backend == "verl" else (study.embedded_models or ("embedded-carry",))
    assert models == set(expected)
    assert len(trials) == 2 * len(models) * (len(study.methods) or 36)
    assert len({t.name for t in trials}) == len(trials)
    assert len({t.key for t in trials}) == len(trials)
    assert all(t.backend == backend and t.study == name for t in trials)
    if study.default_steps:
        assert {t.steps for t in trials} == {study.default_steps}
    if backend == "embedded":
        from tinyrlvr.config import EngineConfig

        for t in trials[: len(trials) // 2]:
            EngineConfig.create(estimator=t.estimator, alpha_pos=t.alpha_pos, alpha_neg=t.alpha_neg, seed=t.seed,
                                steps=t.steps, entropy_coeff=t.entropy_coeff, clip_low=t.clip_low,
                                clip_high=t.clip_high, loss_agg=t.loss_agg, **t.settings_dict())


def test_names_are_readable_and_carry_the_model_when_several():
    names = [t.name for t in plan("main")]
    assert names == ["reinforce-s0", "grpo-s0", "grpo-ent0.01-s0", "grpo-ch0.28-s0", "dr-grpo-s0",
                     "pos-only-ap0.5-s0", "neg-only-an0.5-s0", "asym-ap0.9-an0.9-s0", "asym-ap0.9-an0.4-s0"]
    backbones = [t.name for t in plan("backbones", backend="verl", seeds=(3,))]
    assert backbones == ["grpo-qwen2.5-7b-base-s3", "asym-ap0.9-an0.4-qwen2.5-7b-base-s3",
                         "grpo-qwen2.5-math-1.5b-s3", "asym-ap0.9-an0.4-qwen2.5-math-1.5b-s3"]


def test_table2_methods_carry_the_paper_settings():
    trials = {t.label: t for t in plan("main", backend="verl")}
    assert trials["Clip-higher"].clip_high == 0.28 and trials["Clip-higher"].clip_low == 0.2
    assert trials["GRPO"].clip_high == trials["GRPO"].clip_low == 0.2
    assert trials["Dr.GRPO"].loss_agg == "seq-mean-token-sum-norm" and trials["Dr.GRPO"].estimator == "dr-grpo"
    assert all(t.loss_agg == "token-mean" for label, t in trials.items() if label != "Dr.GRPO")
    assert (trials["Pos-Only"].alpha_pos, trials["Pos-Only"].alpha_neg) == (0.5, 0.0)
    assert (trials["Neg-Only"].alpha_pos, trials["Neg-Only"].alpha_neg) == (0.0, 0.5)
    assert (trials["AsymGRPO (0.9, 0.4)"].alpha_pos, trials["AsymGRPO (0.9, 0.4)"].alpha_neg) == (0.9, 0.4)
    assert (trials["AsymGRPO symmetric"].alpha_pos, trials["AsymGRPO symmetric"].alpha_neg) == (0.9, 0.9)
    assert (trials["GRPO"].alpha_pos, trials["GRPO"].alpha_neg) == (0.5, 0.5)
    assert (trials["REINFORCE"].alpha_pos, trials["REINFORCE"].alpha_neg) == (0.0, 0.0)
    assert trials["GRPO + entropy bonus"].entropy_coeff == trials["GRPO"].settings_dict().get("entropy_coeff", 0.001)
    assert [label for label, t in trials.items() if t.entropy_coeff] == ["GRPO + entropy bonus"]


def test_entropy_bonus_follows_the_preset_and_user_overrides():
    trials = plan("isolation", backend="embedded", overrides={"entropy_coeff": 0.05})
    bonus = {t.label: t.entropy_coeff for t in trials}
    assert bonus.pop("REINFORCE + entropy bonus") == 0.05
    assert {"REINFORCE", "Pos-Only", "Neg-Only", "Pos-Only a+=1", "Neg-Only a-=0.75"} <= set(bonus)
    assert set(bonus.values()) == {0.0}


def test_keys_are_stable_and_change_with_any_value():
    first = [t.key for t in plan("main", seeds=(0, 1))]
    assert first == [t.key for t in plan("main", seeds=(0, 1))]
    assert first[:9] == [t.key for t in plan("main", seeds=(0,))]  # seed 1 trials do not shift seed 0's
    changed = [t.key for t in plan("main", seeds=(0, 1), overrides={"lr": 3e-4})]
    assert not set(first) & set(changed)
    assert [t.key for t in plan("main", steps=50)] != first[:9]


def test_grid_is_the_product_of_the_lists_in_order():
    trials = plan("grid", alpha_pos=[0, 1, 2, 3], alpha_neg=[0, 0.5, 1], seeds=(0, 1))
    cells = [(t.alpha_pos, t.alpha_neg, t.seed) for t in trials]
    assert cells == [(ap, an, s) for s in (0, 1) for ap in (0, 1, 2, 3) for an in (0, 0.5, 1)]
    assert {t.estimator for t in trials} == {"asym"}
    assert trials[0].name == "asym-ap0-an0-s0" and trials[5].name == "asym-ap1-an1-s0"
    default = plan("grid")
    # the paper's range (issue 24) plus the alpha = 0 edges
    assert sorted({t.alpha_pos for t in default}) == [0.0, 0.1, 0.3, 0.5, 0.7, 0.9]
    assert sorted({t.alpha_neg for t in default}) == [0.0, 0.1, 0.25, 0.4, 0.5, 0.75]
    one_axis = plan("grid", alpha_pos=[0.9])
    assert [(t.alpha_pos, t.alpha_neg) for t in one_axis] == [(0.9, a) for a in (0.0, 0.1, 0.25, 0.4, 0.5, 0.75)]


def test_bad_planner_arguments_are_one_line_errors():
    cases = [
        (dict(study="main", alpha_pos=[0.5]), r"study 'main' has fixed methods; --alpha-pos/--alpha-neg apply to 'grid'"),
        (dict(study="grid", alpha_pos=[-1.0]), r"--alpha-pos must be a finite number >= 0"),
        (dict(study="grid", alpha_neg=[math.inf]), r"--alpha-neg must be a finite number >= 0"),
        (dict(study="grid", alpha_pos=[]), r"--alpha-pos needs at least one value"),
        (dict(study="grid", alpha_pos=[0.5, 0.5]), r"--alpha-pos: 0.5 is listed twice"),
        (dict(study="main", steps=0), r"--steps must be an integer >= 1"),
        (dict(study="main", steps=2.5), r"--steps must be an integer >= 1"),
        (dict(study="main", seeds=()), r"at least one seed"),
        (dict(study="main", seeds=(1, 1)), r"seed 1 is listed twice"),
        (dict(study="main", seeds=(-2,)), r"seeds must be integers >= 0"),
        (dict(study="main", models=["embedded-tiny", "embedded-tiny"]), r"listed twice"),
        (dict(study="nope"), r"unknown study 'nope'; known:"),
    ]
    for kwargs, pattern in cases:
        with pytest.raises(ValueError, match=pattern) as info:
            plan(kwargs.pop("study"), **kwargs)
        assert "\n" not in str(info.value)


def test_smoke_and_explicit_steps():
    from tinyrlvr.config import SMOKE_OVERRIDES

    smoke = plan("main", smoke=True)[0]
    for key, value in SMOKE_OVERRIDES.items():
        assert smoke.settings_dict()[key] == (tuple(value) if isinstance(value, list) else value)
    assert smoke.steps < plan("main")[0].steps
    assert plan("main", smoke=True, steps=3)[0].steps == 3
    assert {t.steps for t in plan("kappa", backend="verl", smoke=True)} == {2}
    assert {t.steps for t in plan("kappa", backend="verl")} == {20}


@pytest.mark.parametrize("text, expected", [("0,1,2,3", [0.0, 1.0, 2.0, 3.0]), (" 0.5 , 1e-1", [0.5, 0.1])])
def test_parse_float_list(text, expected):
    assert parse_float_list(text, name="--alpha-pos") == expected


@pytest.mark.parametrize("text, pattern", [
    ("1,a", r"--alpha-pos: 'a' is not a number"), ("", r"--alpha-pos needs comma-separated numbers"),
    ("1,,2", r"needs comma-separated numbers"), ("-0.5", r"values must be >= 0"),
    ("nan", r"values must be finite"), ("1,inf", r"values must be finite"), ("1,1.0", r"--alpha-pos: 1 is listed twice"),
])
def test_parse_float_list_errors(text, pattern):
    with pytest.raises(ValueError, match=pattern) as info:
        parse_float_list(text, name="--alpha-pos")
    assert "\n" not in str(info.value)


def test_parse_seeds():
    assert parse_seeds("0,1,2") == [0, 1, 2] and parse_seeds(" 7 ") == [7]
    for text, pattern in (("", "needs comma-separated integers"), ("1,a", "'a' is not an integer"),
                          ("1.5", "'1.5' is not an integer"), ("-1", "seeds must be >= 0"),
                          ("0,1,0", "seed 0 is listed twice"), ("0,", "needs comma-separated")):
        with pytest.raises(ValueError, match=pattern):
            parse_seeds(text)


def test_trials_json_and_table():
    trials = plan("main", backend="verl", seeds=(0, 1))
    rows = trials_json(trials, extra=lambda t: {"entrypoint": f"python -m x {t.name}"})
    json.dumps(rows)
    for row, trial in zip(rows, trials):
        for field in ("name", "estimator", "alpha_pos", "alpha_neg", "seed", "backend", "model", "label", "steps",
                      "key", "settings"):
            assert field in row
        assert row["key"] == trial.key and row["entrypoint"].endswith(trial.name)
        assert row["settings"]["val_n"]["aime24"] == 10  # pairs shown as a mapping
    from rich.console import Console

    console = Console(width=160, record=True)
    console.print(trials_table(trials, title="plan"))
    text = console.export_text()
    assert all(t.name in text for t in trials) and "0.2/0.28" in text


def test_isolation_declares_fig2_sweeps_that_smoke_runs_leave_out():
    full = plan("isolation", seeds=(0,))
    sweeps = {(t.estimator, t.alpha_pos, t.alpha_neg) for t in full}
    assert {("pos-only", a, 0.0) for a in (0.25, 0.5, 1.0)} <= sweeps  # Fig 2(a-d): alpha+ with alpha- = 0
    assert {("neg-only", 0.0, a) for a in (0.25, 0.5, 0.75)} <= sweeps  # Fig 2(e-h): alpha- with alpha+ = 0
    smoke = plan("isolation", seeds=(0,), smoke=True)
    assert [t.label for t in smoke] == ["REINFORCE", "REINFORCE + entropy bonus", "Pos-Only", "Neg-Only"]
