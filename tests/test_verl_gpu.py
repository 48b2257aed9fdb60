"""End to end on a real GPU with verl and vLLM installed: a two-step verl trial of the fixture data.

Skipped unless CUDA, vLLM and verl's v1 trainer are importable and ``ASYM_VERL_E2E_MODEL`` names a
local Hugging Face model folder (e.g. a Qwen2.5-0.5B-Instruct copy): our CI and the lent GPU
machine have no vLLM and no network, so this runs on a user's GPU host.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

pytestmark = pytest.mark.gpu

torch = pytest.importorskip("torch")
if not torch.cuda.is_available():
    pytest.skip("needs a CUDA GPU", allow_module_level=True)
pytest.importorskip("vllm")
pytest.importorskip("transfer_queue")
MODEL = os.environ.get("ASYM_VERL_E2E_MODEL")
if not MODEL or not Path(MODEL).is_dir():
    pytest.skip("set ASYM_VERL_E2E_MODEL to a local model folder", allow_module_level=True)


def test_two_step_verl_trial_reports_shared_metrics(tmp_path, monkeypatch):
    import mlflow

    from common import metric_names as names
    from experiments.plan import plan
    from backends.verl import VerlBackend
    from backends.verl.data import prepare
    from backends.verl.render import RenderPaths

    prepare(tmp_path / "data", Path(__file__).parent / "fixtures" / "math")
    trial = next(t for t in plan("main", backend="verl", models=["qwen3-4b"], steps=2, overrides={
        "hf_path": MODEL, "train_batch_size": 4, "ppo_mini_batch_size": 4, "max_prompt_length": 256,
        "max_response_length": 256, "n_gpus_per_node": 1, "gpus_per_trial": 1, "eval_every": 2,
        "val_n": {"math500": 2, "olympiadbench": 2, "aime24": 2, "aime25": 2, "amc23": 2}}) if t.estimator == "asym")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    run = mlflow.MlflowClient().create_run(mlflow.set_experiment("asym-e2e").experiment_id)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_RUN_ID", run.info.run_id)
    seen = []
    VerlBackend(paths=RenderPaths(str(tmp_path / "data"), str(tmp_path / "ckpt"))).run(
        trial, lambda step, metrics: seen.append((step, dict(metrics))), tmp_path / "work")
    steps = {step: metrics for step, metrics in seen}
    assert names.EVAL_MEAN_ACCURACY in steps[0] and names.eval_accuracy("math500") in steps[0]
    assert {names.ENTROPY, names.NONE_SOLVED, names.ALL_SOLVED, names.REWARD_MEAN} <= set(steps[2])
    verl_keys = mlflow.MlflowClient().get_run(run.info.run_id).data.metrics
    assert "asym/entropy" in verl_keys  # verl's MLflow logger attached to the handed-over run
