"""Alpha schedules (issue 28): each kind's rule, bad input, the planner, resume, and both backends.

- ``estimators.schedules``: the open-loop shapes, Proposition 2's peaks for difficulty-tracking,
  Proposition 1's direction for entropy-band (sign of kappa-hat, rate limit, clip).
- The CLI refuses a bad schedule with one line, exit 2, nothing written.
- The planner: ``--set alpha_pos.schedule=...`` axes, study-file methods, Optuna samples; the
  schedule is in the trial key (``fixed`` keeps the plain trial's key).
- The engine: a run interrupted after a real checkpoint and resumed logs the same alphas as the
  uninterrupted run; the verl adapter, run through verl's own ``compute_advantage`` on the engine's
  batches, picks the same alphas step by step.
"""

from __future__ import annotations

import math
import shlex

import pytest
import torch

from common import metric_names as M
from estimators import schedules as S
from experiments.parse import parse_set
from experiments.plan import plan, plan_sampled
from experiments.studies import get_study
from experiments.studies import OPTUNA_STUDY
from orchestrator.cli import main
from tinyrlvr.base_model import get_base_model
from tinyrlvr.config import SMOKE_OVERRIDES, EngineConfig

BAND = {"alpha_pos.schedule": "entropy-band", "alpha_pos.entropy_low": 0.8, "alpha_pos.entropy_high": 0.9,
        "alpha_neg.schedule": "entropy-band", "alpha_neg.entropy_low": 0.8, "alpha_neg.entropy_high": 0.9,
        "alpha_pos.rate": 0.05, "alpha_neg.rate": 0.03}
DIFFICULTY = {"alpha_pos.schedule": "difficulty", "alpha_neg.schedule": "difficulty", "alpha_neg.quantile": 0.6}


def parsed(settings, estimator="asym", alphas=(0.9, 0.4), steps=10):
    return S.parse(settings, estimator=estimator, alpha_pos=alphas[0], alpha_neg=alphas[1], steps=steps)


def sequence(plan_, stats_by_step, steps):
    state, out = plan_.initial_state(), []
    for step in range(1, steps + 1):
        state = S.advance(plan_, state, step, stats_by_step(step))
        out.append((round(state["alpha_pos"], 12), round(state["alpha_neg"], 12)))
    return out


# --- the rules ------------------------------------------------------------------------------------


def test_open_loop_kinds():
    lin = parsed({"alpha_pos.schedule": "linear", "alpha_pos.end": 0.5, "alpha_pos.end_step": 4})
    assert sequence(lin, lambda s: None, 6) == [(0.8, 0.4), (0.7, 0.4), (0.6, 0.4), (0.5, 0.4), (0.5, 0.4), (0.5, 0.4)]
    cos = parsed({"alpha_neg.schedule": "cosine", "alpha_neg.start": 0.0, "alpha_neg.end": 1.0})
    values = [a_neg for _, a_neg in sequence(cos, lambda s: None, 10)]
    assert values[4] == pytest.approx(0.5) and values[-1] == pytest.approx(1.0)
    assert values[0] == pytest.approx((1 - math.cos(math.pi / 10)) / 2)
    step = parsed({"alpha_pos.schedule": "step", "alpha_pos.at": "0.7@3;0.5@50%"})
    assert [a for a, _ in sequence(step, lambda s: None, 6)] == [0.9, 0.9, 0.7, 0.7, 0.5, 0.5]
    assert parsed({"alpha_pos.schedule": "fixed"}).is_fixed


def test_difficulty_puts_each_pressure_peak_at_its_quantile():
    plan_ = parsed(DIFFICULTY)  # q+ 0.1 (default), q- 0.6
    accs = (0.125, 0.25, 0.5, 0.75, 0.875)
    stats = S.BatchStats(accs, kappa=0.1, entropy=0.5)
    got = S.advance(plan_, plan_.initial_state(), 1, stats)
    q_pos = 0.125 + 0.1 * 4 * (0.25 - 0.125)  # linear interpolation between sorted values
    assert got["alpha_pos"] == pytest.approx(1 - q_pos)  # eq 11: p*_pos = 1 - alpha_pos sits at Q_0.1
    assert got["alpha_neg"] == pytest.approx(0.5 + 0.4 * (0.75 - 0.5))  # p*_neg = alpha_neg at Q_0.6
    assert got["alpha_pos"] == pytest.approx(float(torch.quantile(torch.tensor(accs, dtype=torch.float64), 0.1).neg() + 1))
    # no mixed group: hold; clipped to [low, high]
    assert S.advance(plan_, got, 2, S.BatchStats((), math.nan, 0.5)) == got
    clipped = parsed({**DIFFICULTY, "alpha_pos.high": 0.8})
    assert S.advance(clipped, clipped.initial_state(), 1, stats)["alpha_pos"] == 0.8


def test_entropy_band_moves_the_gap_in_propositions_direction():
    plan_ = parsed(BAND)  # band [0.8, 0.9], rates 0.05 / 0.03
    start = plan_.initial_state()
    low_pos = S.advance(plan_, start, 1, S.BatchStats((0.5,), kappa=0.2, entropy=0.5))
    assert low_pos == pytest.approx({"alpha_pos": 0.95 - 0.0, "alpha_neg": 0.37})  # clipped at high 0.95
    low_neg = S.advance(plan_, start, 1, S.BatchStats((0.5,), kappa=-0.2, entropy=0.5))
    assert low_neg == pytest.approx({"alpha_pos": 0.85, "alpha_neg": 0.43})  # kappa < 0: the roles swap
    high_pos = S.advance(plan_, start, 1, S.BatchStats((0.5,), kappa=0.2, entropy=0.95))
    assert high_pos == pytest.approx({"alpha_pos": 0.85, "alpha_neg": 0.43})
    for quiet in (S.BatchStats((0.5,), 0.2, 0.85), S.BatchStats((), math.nan, 0.5)):  # in band; kappa undefined
        assert S.advance(plan_, start, 1, quiet) == start


# --- bad input ------------------------------------------------------------------------------------

BAD = [
    ("sweep grid --alpha-pos 0.9 --alpha-neg 0.4 --set alpha_pos.schedule=warmup", "unknown kind 'warmup'"),
    ("sweep grid --alpha-pos 0.9 --alpha-neg 0.4 --set alpha_pos.schedule=difficulty --set alpha_pos.low=-0.1",
     "alpha_pos.low must be in [0, 1]"),
    ("sweep grid --alpha-pos 0.9 --alpha-neg 0.4 --set alpha_neg.schedule=difficulty --set alpha_neg.high=1.5",
     "alpha_neg.high must be in [0, 1]"),
    ("sweep grid --alpha-pos 0.9 --alpha-neg 0.4 --set alpha_pos.schedule=difficulty --set alpha_pos.quantile=1",
     "alpha_pos.quantile must be in (0, 1)"),
    ("sweep grid --alpha-pos 0.9 --alpha-neg 0.4 --steps 20 --set alpha_pos.schedule=linear --set alpha_pos.end=0.5 "
     "--set alpha_pos.end_step=30", "alpha_pos.end_step=30 is past the run's last step (20)"),
    ("sweep grid --alpha-pos 0.9 --alpha-neg 0.4 --steps 20 --set alpha_pos.schedule=step --set alpha_pos.at=0.5@21",
     "alpha_pos.at=21 is past the run's last step (20)"),
    ("sweep grid --alpha-pos 0.9 --alpha-neg 0.4 --set alpha_pos.scheduel=linear", "unknown schedule setting"),
    ("sweep grid --alpha-pos 0.9 --alpha-neg 0.4 --set alpha_pos.schedule=linear", "needs alpha_pos.end"),
    ("sweep comparators --set alpha_pos.schedule=difficulty", "fixes alpha_pos"),
    ("sweep run flat.yaml", "need an alpha-family estimator; 'flat-test' is not one"),
]
FLAT_PLUGIN = """from estimators.advantages import asym
from estimators.registry import Estimator, register

register(Estimator("flat-test", asym, "Flat", 0.5, 0.5, ("alpha_pos", "alpha_neg"), alpha_family=False))
"""
FLAT_STUDY = """name: flat
plugins: [flat_plugin]
steps: 10
methods:
  - label: flat difficulty
    estimator: flat-test
    schedule: {alpha_pos.schedule: difficulty}
"""


@pytest.mark.parametrize("argv,message", BAD, ids=[m for _, m in BAD])
def test_bad_schedule_one_line_exit_2_nothing_written(argv, message, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    (tmp_path / "flat_plugin.py").write_text(FLAT_PLUGIN)
    (tmp_path / "flat.yaml").write_text(FLAT_STUDY)
    with pytest.raises(SystemExit) as exit_info:
        main(shlex.split(argv))  # a real sweep, not --dry-run: refused before anything starts
    err = capsys.readouterr().err
    assert exit_info.value.code == 2, err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert message in err, err
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "__pycache__") == ["flat.yaml", "flat_plugin.py"]
    assert not (tmp_path / ".asym").exists()


def test_feedback_schedule_needs_an_alpha_family_estimator(monkeypatch):
    from estimators.registry import ESTIMATORS, Estimator

    user = Estimator("flat-test", ESTIMATORS["asym"].fn, "Flat", 0.5, 0.5, ("alpha_pos", "alpha_neg"), alpha_family=False)
    monkeypatch.setitem(ESTIMATORS, "flat-test", user)
    parsed({"alpha_pos.schedule": "linear", "alpha_pos.end": 0.2}, estimator="flat-test")  # open loop: fine
    with pytest.raises(ValueError, match="need an alpha-family estimator"):
        parsed({"alpha_pos.schedule": "difficulty"}, estimator="flat-test")


# --- the planner ----------------------------------------------------------------------------------


def test_set_axes_study_methods_and_keys():
    base = dict(alpha_pos=[0.9], alpha_neg=[0.4], steps=20)
    plain = plan("grid", **base)
    fixed = plan("grid", **base, axes=[parse_set("alpha_pos.schedule=fixed")])
    assert [t.key for t in fixed] == [t.key for t in plain] and fixed[0].schedule == ()
    swept = plan("grid", **base, axes=[parse_set("alpha_pos.schedule=linear,cosine"), parse_set("alpha_pos.end=0.5")])
    assert [dict(t.schedule)["alpha_pos.schedule"] for t in swept] == ["linear", "cosine"]
    assert len({t.key for t in swept + plain}) == 3 and len({t.name for t in swept}) == 2
    assert swept[0].params()["alpha_pos.schedule"] == "linear"
    study = plan("schedules", smoke=True, seeds=[0])
    assert [t.label for t in study] == [m.label for m in get_study("schedules").methods]
    assert sum(bool(t.schedule) for t in study) == 5 and len({t.key for t in study}) == 7
    sampled = plan_sampled(OPTUNA_STUDY, {"steps": 20, "seeds": [0],
                                                 "axes": [parse_set("alpha_pos.schedule=cosine")]},
                           {"alpha_pos.end": 0.3})
    assert dict(sampled.schedule) == {"alpha_pos.schedule": "cosine", "alpha_pos.end": 0.3}


def test_study_file_method_with_a_schedule(tmp_path):
    from experiments.study_file import load_study_file

    path = tmp_path / "study.yaml"
    path.write_text("name: anneal\nsteps: 20\nmethods:\n  - label: anneal\n    estimator: asym\n"
                    "    alpha_pos: 0.9\n    alpha_neg: 0.4\n"
                    "    schedule: {alpha_pos.schedule: linear, alpha_pos.end: 0.5}\n"
                    "axes:\n  alpha_pos.end_step: [10, 20]\n")
    trials = plan(load_study_file(path))
    assert [dict(t.schedule)["alpha_pos.end_step"] for t in trials] == [10, 20]
    assert all(dict(t.schedule)["alpha_pos.end"] == 0.5 for t in trials)


def test_verl_render_carries_the_schedule():
    from backends.verl.render import schedule_overrides

    trial = plan("schedules", backend="verl", models=["cpu-tiny"], smoke=True, seeds=[0])[4]  # step
    assert "+algorithm.asym.schedule.alpha_pos.at='0.7@34%;0.5@67%'" in schedule_overrides(trial)
    assert f"+algorithm.asym.total_steps={trial.steps}" in schedule_overrides(trial)


# --- the engine: resume; verl: same alphas ---------------------------------------------------------


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    cache = str(tmp_path_factory.mktemp("asym-cache"))

    def make(**changes):
        return EngineConfig.create(**{"estimator": "asym", "alpha_pos": 0.9, "alpha_neg": 0.4, "steps": 8, "seed": 3,
                                      "threads": 1, "cache_dir": cache, **SMOKE_OVERRIDES, **changes})

    get_base_model(make())
    return make


def alphas_of(cfg, checkpoint_dir=None, stop_after=None, checkpoint_every=2):
    from tinyrlvr.trainer import train

    seen = {}

    def on_step(step, metrics):
        if stop_after is not None and step > stop_after:
            raise KeyboardInterrupt  # the trial dies mid-run, after its checkpoint of step stop_after
        if step:
            seen[step] = (metrics[M.ALPHA_POS], metrics[M.ALPHA_NEG])

    try:
        train(cfg, on_step, checkpoint_dir=checkpoint_dir, checkpoint_every=checkpoint_every)
    except KeyboardInterrupt:
        pass
    return seen


def test_resumed_run_continues_the_schedule_exactly(smoke, tmp_path):
    cfg = smoke(alpha_schedule=tuple(BAND.items()))
    whole = alphas_of(cfg)
    assert whole[4] != (0.9, 0.4)  # at the checkpoint the schedule is away from its start: a resume must know
    first = alphas_of(cfg, tmp_path, stop_after=4)
    assert sorted(first) == [1, 2, 3, 4]
    rest = alphas_of(cfg, tmp_path)
    assert sorted(rest) == [5, 6, 7, 8]
    assert {**first, **rest} == whole
    # the checkpoint's schedule state is what makes it exact: without it the alphas restart
    blob = torch.load(tmp_path / "engine-checkpoint.pt", weights_only=True)
    assert blob["schedule_state"] == {"alpha_pos": whole[8][0], "alpha_neg": whole[8][1]}


@pytest.mark.parametrize("settings", [DIFFICULTY, BAND], ids=["difficulty", "entropy-band"])
def test_engine_and_verl_adapter_pick_the_same_alphas(settings, smoke, monkeypatch):
    pytest.importorskip("verl")
    import numpy as np
    from omegaconf import OmegaConf
    from verl.protocol import DataProto
    from verl.trainer.ppo.ray_trainer import compute_advantage

    import tinyrlvr.trainer as engine
    from backends.verl import adapter as verl_adapter

    batches = []
    real_collect = engine.collect

    def recording_collect(policy, cfg, step):  # the engine's real sampler; we keep what it returned
        batch = real_collect(policy, cfg, step)
        batches.append(batch)
        return batch

    monkeypatch.setattr(engine, "collect", recording_collect)
    cfg = smoke(alpha_schedule=tuple(settings.items()))
    engine_alphas = alphas_of(cfg)
    assert len(batches) == cfg.steps

    nested: dict = {}
    for key, value in settings.items():
        channel, name = key.split(".")
        nested.setdefault(channel, {})[name] = value
    config = OmegaConf.create({"adv_estimator": "asym_grpo", "norm_adv_by_std_in_grpo": True, "gamma": 1.0,
                               "lam": 1.0, "asym": {"variant": "asym", "alpha_pos": 0.9, "alpha_neg": 0.4,
                                                    "total_steps": cfg.steps, "schedule": nested}})
    verl_adapter.reset_schedule_state()
    verl_alphas = {}
    for step, b in enumerate(batches, 1):
        mask = b.response_mask.to(torch.float32)
        last = (mask.sum(-1).long() - 1).clamp(min=0)
        scores = torch.zeros_like(mask)
        scores[torch.arange(len(last)), last] = b.rewards.to(torch.float32)  # outcome reward on the last token
        proto = DataProto.from_dict(
            tensors={"token_level_rewards": scores, "response_mask": mask},
            non_tensors={"uid": np.array([f"uid-{int(g)}" for g in b.group_ids], dtype=object)})
        with verl_adapter.rollout_inputs(old_log_probs=b.old_logp, entropy=b.entropy):
            with verl_adapter.training_step(step):
                compute_advantage(proto, adv_estimator="asym_grpo", num_repeat=cfg.group_size, config=config)
        got = verl_adapter.last_alphas()
        verl_alphas[step] = (got["alpha_pos"], got["alpha_neg"])
    assert verl_alphas == engine_alphas
    assert len(set(engine_alphas.values())) > 1


def test_verl_schedule_state_survives_a_checkpoint_round_trip():
    """What our verl trainer writes beside verl's checkpoint (``export_schedule_state`` as JSON) and
    reads on resume continues the schedule exactly."""
    pytest.importorskip("verl")
    import json

    import numpy as np
    from omegaconf import OmegaConf
    from verl.protocol import DataProto
    from verl.trainer.ppo.ray_trainer import compute_advantage

    from backends.verl import adapter as verl_adapter

    gen = torch.Generator().manual_seed(7)
    groups, G, T = 6, 8, 5
    batches = []
    for _ in range(8):
        p = 0.55 + 0.4 * torch.rand(groups, generator=gen)  # mostly solved groups whose correct rollouts are
        rewards = (torch.rand(groups * G, generator=gen) < p.repeat_interleave(G)).float()  # the confident ones:
        scores = torch.zeros(groups * G, T)  # kappa-hat > 0 in every batch
        scores[:, -1] = rewards
        logp = -torch.rand(groups * G, T, generator=gen) * 2 + rewards[:, None]
        entropy = torch.rand(groups * G, T, generator=gen) * 0.4  # below the band: the alphas keep moving
        batches.append((scores, logp, entropy))
    nested: dict = {}
    for key, value in BAND.items():
        channel, name = key.split(".")
        nested.setdefault(channel, {})[name] = value
    config = OmegaConf.create({"adv_estimator": "asym_grpo", "asym": {"variant": "asym", "alpha_pos": 0.9,
                                                                      "alpha_neg": 0.4, "total_steps": 8,
                                                                      "schedule": nested}})

    def run(steps):
        out = []
        for step in steps:
            scores, logp, entropy = batches[step - 1]
            proto = DataProto.from_dict(tensors={"token_level_rewards": scores, "response_mask": torch.ones_like(scores)},
                                        non_tensors={"uid": np.array([f"u{i // G}" for i in range(groups * G)], dtype=object)})
            with verl_adapter.rollout_inputs(old_log_probs=logp, entropy=entropy), verl_adapter.training_step(step):
                compute_advantage(proto, adv_estimator="asym_grpo", num_repeat=G, config=config)
            out.append(tuple(verl_adapter.last_alphas().values()))
        return out

    verl_adapter.reset_schedule_state()
    whole = run(range(1, 9))
    verl_adapter.reset_schedule_state()
    first = run(range(1, 5))
    saved = json.dumps(verl_adapter.export_schedule_state())
    verl_adapter.reset_schedule_state()  # a new process
    verl_adapter.restore_schedule_state(json.loads(saved))
    assert first + run(range(5, 9)) == whole
    verl_adapter.reset_schedule_state()
    assert run(range(5, 9)) != whole[4:]  # without the saved state the schedule restarts


def test_optuna_searches_a_schedule_setting(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    main(shlex.split("sweep optuna --set alpha_pos.schedule=cosine --range alpha_pos.end=0.3,0.7 --trials 2 "
                     "--steps 20 --dry-run --json"))
    import json

    (trial,) = json.loads(capsys.readouterr().out)  # the trial each sample is planned like
    assert dict(trial["schedule"]) == {"alpha_pos.schedule": "cosine", "alpha_pos.end": 0.3}  # planned at the low end


def test_report_table_and_figure_label_configurations_by_schedule():
    import pandas as pd

    from analysis import figures
    from analysis import schedules as report
    from analysis.load import METRIC_COLUMNS, SweepData

    runs, rows = [], []
    for label, schedule in (("fixed", {}), ("anneal", {"alpha_pos.schedule": "linear", "alpha_pos.end": "0.5"})):
        for seed in (0, 1, 2):
            run_id = f"{label}-{seed}"
            runs.append({"run_id": run_id, "label": label, "seed": seed, "estimator": "asym", "alpha_pos": 0.9,
                         "alpha_neg": 0.4, "steps": 10, "model": "embedded-tiny", **schedule})
            plan_ = parsed({k: float(v) if k.endswith("end") else v for k, v in schedule.items()})
            state = plan_.initial_state()
            for step in range(1, 11):
                state = S.advance(plan_, state, step, None)
                values = {M.ALPHA_POS: state["alpha_pos"], M.ALPHA_NEG: state["alpha_neg"],
                          M.ENTROPY: 0.5 - 0.01 * step * (1.5 if label == "anneal" else 1) + 0.001 * seed,
                          M.REWARD_MEAN: 0.5, M.EVAL_MEAN_ACCURACY: 0.8 + 0.01 * seed}
                rows += [(run_id, run_id, label, "asym", 0.9, 0.4, seed, "embedded-tiny", "schedules", m, step, v)
                         for m, v in values.items()]
    data = SweepData("s", "schedules", "p", "sqlite://", pd.DataFrame(runs), pd.DataFrame(rows, columns=list(METRIC_COLUMNS)))
    assert report.has_schedules(data)
    table = report.schedule_table(data, "fixed").set_index("configuration")
    assert table.loc["anneal", "schedule"] == "a+ linear 0.9->0.5, a- fixed 0.4"
    assert table.loc["fixed", "schedule"] == "a+ fixed 0.9, a- fixed 0.4"
    assert table.loc["anneal", "final alpha+"].startswith("0.5000")
    assert table.loc["anneal", "entropy gap"].startswith("-0.0") and table.loc["anneal", "entropy gap"].endswith("*")
    fig = report.figure(data, None, figures.palette(data.labels))
    assert [ax.get_title() for ax in fig.axes][:4] == ["alpha+ (positive channel)", "alpha- (negative channel)",
                                                       "Policy entropy", "Test accuracy (no smoothing)"]
