"""Trial reuse by content (``orchestrator.reuse``): a trial whose key already FINISHED in the tracking
store is linked into a new sweep, not run again; a changed setting, a changed base model (its
content hash) or an earlier FAILED / KILLED run is not reused; ``--rerun`` runs it again.

The unit tests use a real MLflow sqlite store; the end-to-end test runs `asym sweep` three times
on a real local Ray, `mlflow server` and the embedded engine."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from common import metric_names as M
from experiments import tracking_names as names
from experiments.plan import plan
from orchestrator import reuse
from orchestrator.identity import stamp
from orchestrator.tracking import ensure_experiment, make_client, open_sweep_run


@pytest.fixture
def store(tmp_path):
    client = make_client(f"sqlite:///{tmp_path / 'mlflow.db'}")
    return client, ensure_experiment(client)


def _finished_trial(client, experiment_id, trial, sweep: str, status: str = "FINISHED", steps: int = 3) -> str:
    parent = open_sweep_run(client, experiment_id, sweep=sweep, study=trial.study)
    run = client.create_run(experiment_id, run_name=trial.name, tags={
        names.TAG_KIND: names.KIND_TRIAL, names.TAG_TRIAL_KEY: trial.key, names.TAG_SWEEP: sweep,
        names.TAG_STUDY: trial.study, names.TAG_TRIAL: trial.name, names.PARENT_RUN_ID: parent})
    for k, v in trial.params().items():
        client.log_param(run.info.run_id, k, v)
    for step in range(steps + 1):
        client.log_metric(run.info.run_id, M.ENTROPY, 1.0 - 0.1 * step, step=step)
    client.set_terminated(run.info.run_id, status)
    client.set_terminated(parent, "FINISHED")
    return run.info.run_id


def test_the_same_trial_of_two_studies_has_one_key_and_a_changed_setting_another():
    iso = {t.label: t for t in stamp(plan("isolation", smoke=True, steps=3))}
    flip_kappa = {t.label: t for t in stamp(plan("kappa-flip", smoke=True, steps=3))}
    (grpo_iso,) = [t for t in stamp(plan("isolation", smoke=True, steps=3)) if t.estimator == "reinforce"][:1]
    again = {t.label: t for t in stamp(plan("isolation", smoke=True, steps=3))}
    assert {k: t.key for k, t in iso.items()} == {k: t.key for k, t in again.items()}
    assert dict(grpo_iso.identity)["engine"].startswith("tinyrlvr-")
    # kappa-flip runs REINFORCE on another base model: same settings otherwise, another key.
    assert iso["REINFORCE"].key != flip_kappa["REINFORCE"].key
    assert replace(grpo_iso, study="main", name="x", label="y").key == grpo_iso.key  # names are not identity
    assert replace(grpo_iso, steps=4).key != grpo_iso.key
    assert replace(grpo_iso, settings=grpo_iso.settings + (("zz", 1),)).key != grpo_iso.key


def test_a_changed_base_model_content_gets_another_key(tmp_path, monkeypatch):
    """Settings whose base model is not shipped: its file in the cache, changed in place."""
    from tinyrlvr.base_model import base_model_path
    from tinyrlvr.model import ModelShape, Policy
    from backends.embedded import EmbeddedBackend
    from dataclasses import asdict

    (trial,) = [t for t in plan("isolation", smoke=True, steps=3, overrides={"warmup_seed": 123})
                if t.estimator == "reinforce"][:1]
    monkeypatch.setenv("ASYM_CACHE_DIR", str(tmp_path))
    cfg = EmbeddedBackend().engine_config(trial)
    path = base_model_path(cfg)
    assert path.parent == tmp_path
    policy = Policy(ModelShape.from_config(cfg))

    def save(scale: float) -> str:
        state = {k: v * scale for k, v in policy.state_dict().items()}
        torch.save({"shape": asdict(ModelShape.from_config(cfg)), "state_dict": state, "report": {}}, path)
        os.utime(path, ns=(int(scale * 1e9), int(scale * 1e9)))
        (stamped,) = stamp([trial])
        return stamped.key

    assert save(1.0) == save(1.0)
    assert save(1.0) != save(2.0)


PLAN_AND_STAMP = ("import sys; from experiments.plan import plan; from orchestrator.identity import stamp; "
                  "keys = {t.key for t in stamp(plan('isolation', smoke=True))}; print(','.join(sorted(keys)), 'torch' in sys.modules)")


def test_the_driver_plans_and_stamps_a_sweep_without_torch_once_the_hash_is_kept(tmp_path):
    """The base model's content hash (a trial key's part) needs torch once per file version on a
    machine; later sweeps read it back (``tinyrlvr.base_model_files``), and planning (the estimator
    registry) never needs torch: the driver's start-up is a second shorter (benchmarks/RESULTS.md)."""
    env = {**os.environ, "ASYM_CACHE_DIR": str(tmp_path)}
    runs = [subprocess.run([sys.executable, "-c", PLAN_AND_STAMP], env=env, capture_output=True, text=True, timeout=120)
            for _ in range(2)]
    assert all(r.returncode == 0 for r in runs), runs[-1].stderr[-2000:]
    (first_keys, first_torch), (second_keys, second_torch) = (r.stdout.split() for r in runs)
    assert first_torch == "True" and second_torch == "False"  # computed, then read back
    assert first_keys == second_keys and len(first_keys.split(",")) == 4  # the same trial keys either way
    assert len(list((tmp_path / "content-hashes").iterdir())) == 1


def test_only_finished_runs_are_found_and_links_are_followed(store):
    client, experiment_id = store
    trials = stamp(plan("isolation", smoke=True, steps=3))
    done, failed, killed, _never = trials[0], trials[1], trials[2], trials[3]
    origin = _finished_trial(client, experiment_id, done, "old")
    _finished_trial(client, experiment_id, failed, "old", status="FAILED")
    _finished_trial(client, experiment_id, killed, "old", status="KILLED")
    found = reuse.find_finished(client, experiment_id, trials)
    assert set(found) == {done.key}  # a failed or killed trial runs again; one never run too
    assert found[done.key].info.run_id == origin

    parent = open_sweep_run(client, experiment_id, sweep="new", study="kappa-flip")
    link_id = reuse.link(client, experiment_id, replace(done, study="kappa-flip"), found[done.key],
                         sweep="new", parent_run_id=parent)
    reuse.list_on_parent(client, parent, [origin])
    client.set_terminated(parent, "FINISHED")
    link = client.get_run(link_id)
    assert link.data.tags[names.TAG_REUSED_FROM] == origin
    assert link.data.tags[names.PARENT_RUN_ID] == parent and link.info.status == "FINISHED"
    assert reuse.reused_runs(client.get_run(parent).data.tags) == [origin]
    assert client.get_run(origin).data.tags[f"{names.TAG_REUSED_IN}.new"] == parent
    # A later lookup finds the origin, not the link; linking again is idempotent.
    assert reuse.find_finished(client, experiment_id, [done])[done.key].info.run_id == origin
    assert reuse.link(client, experiment_id, done, found[done.key], sweep="new", parent_run_id=parent) == link_id

    from analysis.load import load_sweep

    data = load_sweep("new", client.tracking_uri)
    assert list(data.runs["run_id"]) == [origin]  # histories read from the origin
    assert list(data.runs["study"]) == ["kappa-flip"]  # named as the new sweep planned it
    assert list(data.history(origin, M.ENTROPY).index) == [0, 1, 2, 3]


def test_tag_chunks_fit_and_roundtrip():
    ids = [f"{i:032x}" for i in range(400)]
    chunks = list(reuse._tag_chunks(ids))
    assert len(chunks) > 1 and all(len(c) <= reuse.MAX_TAG_CHARS for c in chunks)
    tags = {names.TAG_REUSED_RUNS + (f".{i}" if i else ""): c for i, c in enumerate(chunks)}
    assert reuse.reused_runs(tags) == ids


# --- end to end ----------------------------------------------------------------------------------

GRID = ["sweep", "grid", "--smoke", "--seeds", "0", "--steps", "2", "--alpha-pos", "1", "--max-failures", "0"]


def _asym(argv, cwd: Path, env=None) -> tuple[int, str]:
    proc = subprocess.Popen([sys.executable, "-m", "orchestrator.cli", *argv], cwd=cwd,
                            env={**os.environ, **(env or {})}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    try:
        _, err = proc.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        _, err = proc.communicate()
        pytest.fail(f"asym did not finish:\n{err[-3000:]}")
    return proc.returncode, err


def _trial_runs(client, sweep: str) -> dict[str, object]:
    exp = client.get_experiment_by_name(names.EXPERIMENT)
    runs = client.search_runs([exp.experiment_id], filter_string=f"tags.`{names.TAG_KIND}` = 'trial' and "
                                                                  f"tags.`{names.TAG_SWEEP}` = '{sweep}'")
    return {r.data.tags[names.TAG_TRIAL]: r for r in runs}


@pytest.mark.slow
def test_a_finished_trial_is_reused_a_failed_one_and_rerun_run_again(tmp_path):
    # Sweep a: alpha- = 0.5 finishes; alpha- = 1 dies at step 1 (no retries) and ends FAILED.
    code, err = _asym([*GRID, "--alpha-neg", "0.5,1", "--name", "a"], tmp_path,
                      env={"ASYM_TEST_CRASH_AT": "asym-ap1-an1-s0:1"})
    assert code == 1, err[-3000:]
    client = make_client(f"sqlite:///{tmp_path / '.asym' / 'mlflow' / 'mlflow.db'}")
    a = _trial_runs(client, "a")
    assert {n: r.info.status for n, r in a.items()} == {"asym-ap1-an0.5-s0": "FINISHED", "asym-ap1-an1-s0": "FAILED"}
    kept = a["asym-ap1-an0.5-s0"]
    history = [(m.step, m.timestamp) for m in client.get_metric_history(kept.info.run_id, M.ENTROPY)]

    # Sweep b: 0.5 is reused (no steps logged again), 1 failed before so it runs, 0 is a new setting.
    code, err = _asym([*GRID, "--alpha-neg", "0.5,1,0", "--name", "b"], tmp_path)
    assert code == 0, err[-3000:]
    assert "3 trials, 1 reused from finished runs" in err and "3/3 trials done (1 reused)" in err
    b = _trial_runs(client, "b")
    assert b["asym-ap1-an0.5-s0"].data.tags[names.TAG_REUSED_FROM] == kept.info.run_id
    assert [(m.step, m.timestamp) for m in client.get_metric_history(kept.info.run_id, M.ENTROPY)] == history
    for name in ("asym-ap1-an1-s0", "asym-ap1-an0-s0"):
        assert names.TAG_REUSED_FROM not in b[name].data.tags and b[name].info.status == "FINISHED"
        assert sorted(m.step for m in client.get_metric_history(b[name].info.run_id, M.ENTROPY)) == [1, 2]
    (parent,) = [r for r in client.search_runs([b[name].info.experiment_id], filter_string=
                 f"tags.`{names.TAG_KIND}` = 'sweep' and tags.`{names.TAG_SWEEP}` = 'b'")]
    assert reuse.reused_runs(parent.data.tags) == [kept.info.run_id]

    from analysis.load import load_sweep

    data = load_sweep("b", client.tracking_uri)
    assert set(data.runs["trial"]) == set(b) and kept.info.run_id in set(data.runs["run_id"])

    # --rerun: the finished trial runs again, in a run of its own.
    code, err = _asym([*GRID, "--alpha-neg", "0.5", "--name", "c", "--rerun"], tmp_path)
    assert code == 0, err[-3000:]
    assert "reused" not in err
    (c,) = _trial_runs(client, "c").values()
    assert names.TAG_REUSED_FROM not in c.data.tags
    assert sorted(m.step for m in client.get_metric_history(c.info.run_id, M.ENTROPY)) == [1, 2]
