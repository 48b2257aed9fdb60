"""analysis.load against a real MLflow sqlite store written in the tracking layout.

``write_sweep`` (also used by tests/test_report.py) writes sweeps exactly as
experiments/tracking_names.py lays them out: a parent run tagged kind=sweep, child runs with
``mlflow.parentRunId``, params = ``TrialSpec.params()`` of trials planned by the real planner, and
per-step metrics under ``common.metric_names`` (train metrics at steps 1..N, evaluations at 0,
every ``eval_every`` steps and the last). The histories are synthetic but shaped like the engine's
(Avg@k accuracies on a 1/(prompts x samples) grid, kappa NaN when no group is mixed), drawn from a
seeded RNG. Checks: the tidy frame holds exactly what was logged; a step logged twice keeps the
later value; unfinished trials are left out and named; unknown and unfinished sweeps fail in one line.
"""

from __future__ import annotations

import math
import zlib

import numpy as np
import pytest

from common import metric_names as mn
from experiments.spec import TrialSpec
from experiments import tracking_names as tn


def _client(uri: str):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri)


def _experiment_id(client, store_dir) -> str:
    experiment = client.get_experiment_by_name(tn.experiment_name())
    if experiment is not None:
        return experiment.experiment_id
    return client.create_experiment(tn.experiment_name(), artifact_location=(store_dir / "artifacts").as_uri())


def synthetic_history(trial: TrialSpec, benchmarks: list[str], eval_every: int) -> dict[int, dict[str, float]]:
    """step -> metrics, shaped like the engine's: more alpha_pos keeps entropy up and solves more
    hard groups; the entropy bonus slows the entropy collapse; accuracy rises with noise."""
    rng = np.random.default_rng(zlib.crc32(trial.name.encode()))
    steps = trial.steps
    grid = 16  # Avg@k on 8 prompts x 2 samples: accuracies are multiples of 1/16
    rate = 0.08 / (1.0 + trial.alpha_pos + 20 * trial.entropy_coeff)
    lift = 0.25 + 0.2 * trial.alpha_pos - 0.1 * abs(trial.alpha_neg - 0.4)
    history: dict[int, dict[str, float]] = {}
    for step in range(0, steps + 1):
        row: dict[str, float] = {}
        if step >= 1:
            none = float(np.clip(0.5 - 0.2 * trial.alpha_pos - 0.01 * step + rng.normal(0, 0.03), 0, 1))
            row.update({
                mn.ENTROPY: float(1.6 * math.exp(-rate * step) + rng.normal(0, 0.02)),
                mn.REWARD_MEAN: float(np.clip(0.3 + 0.02 * step + rng.normal(0, 0.02), 0, 1)),
                mn.NONE_SOLVED: none,
                mn.ALL_SOLVED: float(np.clip(0.05 + 0.015 * step + rng.normal(0, 0.02), 0, 1)),
                mn.KAPPA: float("nan") if step == 3 else float(0.05 + rng.normal(0, 0.02)),
                mn.ADV_MASS_POS: float(abs(rng.normal(0.4, 0.05))),
                mn.ADV_MASS_NEG: float(abs(rng.normal(0.4, 0.05))),
                mn.LOGP_GAIN_CORRECT: float(0.01 * (1 + trial.alpha_neg) + rng.normal(0, 0.003)),
                mn.RESPONSE_LENGTH: float(6 + rng.normal(0, 0.3)),
                mn.CLIP_FRAC: float(abs(rng.normal(0.02, 0.01))),
            })
        if step % eval_every == 0 or step == steps:
            progress = 1 - math.exp(-step / 15)
            accs = []
            for i, bench in enumerate(benchmarks):
                acc = 0.6 - 0.3 * i + lift * progress + rng.normal(0, 0.04)
                acc = float(np.clip(np.round(acc * grid) / grid, 0, 1))
                row[mn.eval_accuracy(bench)] = acc
                accs.append(acc)
            row[mn.EVAL_MEAN_ACCURACY] = sum(accs) / len(accs)
        history[step] = row
    return history


def write_sweep(uri: str, store_dir, name: str, trials: list[TrialSpec], *, statuses: dict[str, str] | None = None,
                retried: tuple[str, ...] = (), benchmarks: tuple[str, ...] = ("tier1", "tier2"),
                eval_every: int = 5) -> str:
    """Write one sweep in the tracking layout; returns the parent run id.

    ``statuses`` maps a trial name to its final MLflow status (default FINISHED); a trial named in
    ``retried`` logs its step-``eval_every`` evaluation twice, the second time with other values
    (what a retried trial continuing its run does), so readers must keep the later one.
    """
    from mlflow.entities import Metric, Param, RunTag

    client = _client(uri)
    experiment_id = _experiment_id(client, store_dir)
    study = trials[0].study
    parent = client.create_run(experiment_id, run_name=name, tags={
        tn.TAG_KIND: tn.KIND_SWEEP, tn.TAG_SWEEP: name, tn.TAG_STUDY: study})
    clock = 1_700_000_000_000
    for trial in trials:
        run = client.create_run(experiment_id, run_name=trial.name, tags={
            tn.PARENT_RUN_ID: parent.info.run_id, tn.TAG_KIND: tn.KIND_TRIAL, tn.TAG_SWEEP: name,
            tn.TAG_STUDY: study, tn.TAG_TRIAL_KEY: trial.key, tn.TAG_TRIAL: trial.name})
        params = [Param(k, v) for k, v in trial.params().items()]
        metrics = []
        for step, row in synthetic_history(trial, list(benchmarks), eval_every).items():
            clock += 10
            metrics.extend(Metric(k, v, clock, step) for k, v in row.items())
        if trial.name in retried:
            clock += 10
            metrics.extend(Metric(mn.eval_accuracy(b), 1.0, clock, eval_every) for b in benchmarks)
            metrics.append(Metric(mn.EVAL_MEAN_ACCURACY, 1.0, clock, eval_every))
        for i in range(0, len(metrics), 900):
            client.log_batch(run.info.run_id, metrics=metrics[i:i + 900], params=params if i == 0 else [],
                             tags=[RunTag("mlflow.runName", trial.name)] if i == 0 else [])
        status = (statuses or {}).get(trial.name, "FINISHED")
        if status != "RUNNING":
            client.set_terminated(run.info.run_id, status=status)
    client.set_terminated(parent.info.run_id)
    return parent.info.run_id


def tracked_value(client, run_id: str, metric: str, step: int) -> float:
    """A metric's value at a step read straight from MLflow; the latest write wins."""
    points = [m for m in client.get_metric_history(run_id, metric) if m.step == step]
    return max(points, key=lambda m: m.timestamp).value if points else float("nan")


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    from experiments.plan import plan

    root = tmp_path_factory.mktemp("store")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    iso = plan("isolation", seeds=[0, 1], smoke=True, steps=12)
    write_sweep(uri, root, "iso", iso, statuses={iso[-1].name: "FAILED"}, retried=(iso[0].name,))
    write_sweep(uri, root, "dead", iso[:2], statuses={iso[0].name: "RUNNING", iso[1].name: "KILLED"})
    return uri, root, iso


def test_tidy_frame_holds_exactly_the_logged_histories(store):
    from analysis.load import METRIC_COLUMNS, load_sweep

    uri, _, iso = store
    data = load_sweep("iso", uri)
    assert tuple(data.metrics.columns) == METRIC_COLUMNS
    assert data.study == "isolation"
    finished = [t for t in iso if t is not iso[-1]]
    assert sorted(data.runs["trial"]) == sorted(t.name for t in finished)
    assert data.unfinished == (f"{iso[-1].name} (failed)",)
    client = _client(uri)
    for run in data.runs.itertuples():
        logged = client.get_run(run.run_id).data.metrics
        frame = data.metrics[data.metrics["run_id"] == run.run_id]
        assert set(frame["metric"]) == set(logged)
        for metric in (mn.ENTROPY, mn.EVAL_MEAN_ACCURACY, mn.eval_accuracy("tier1")):
            history = frame[frame["metric"] == metric]
            assert history["step"].is_unique
            steps = sorted({m.step for m in client.get_metric_history(run.run_id, metric)})
            assert history["step"].tolist() == steps
            for step, value in zip(history["step"], history["value"]):
                assert value == tracked_value(client, run.run_id, metric, step)
    # params parsed and carried into the tidy frame
    row = data.runs.set_index("trial").loc[iso[2].name]
    assert (row["alpha_pos"], row["alpha_neg"], row["seed"], row["label"]) == (
        iso[2].alpha_pos, iso[2].alpha_neg, iso[2].seed, iso[2].label)


def test_a_step_logged_twice_keeps_the_later_value(store):
    from analysis.load import load_sweep

    uri, _, iso = store
    data = load_sweep("iso", uri)
    run_id = data.runs.set_index("trial").loc[iso[0].name, "run_id"]
    assert data.history(run_id, mn.EVAL_MEAN_ACCURACY)[5] == 1.0
    assert not math.isnan(data.history(run_id, mn.KAPPA)[4]) and math.isnan(data.history(run_id, mn.KAPPA)[3])


def test_unknown_sweep_missing_store_and_unfinished_sweep_fail_in_one_line(store, tmp_path):
    from analysis.load import load_sweep

    uri, _, _ = store
    with pytest.raises(ValueError, match=r"no sweep named 'nope'.*known sweeps: dead, iso") as info:
        load_sweep("nope", uri)
    assert "\n" not in str(info.value)
    with pytest.raises(ValueError, match=r"sweep 'dead' has no finished trial to report \(2 trial\(s\), none finished\)"):
        load_sweep("dead", uri)
    missing = tmp_path / "nowhere" / "mlflow.db"
    with pytest.raises(ValueError, match="no tracking store at"):
        load_sweep("iso", f"sqlite:///{missing}")
    assert not missing.parent.exists()  # reading never creates a store
