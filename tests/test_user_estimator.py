"""A user's own estimator, declared in a module outside the package (tests/fixtures/plugins, copied
to a temporary folder): a study file names it, the planner checks its parameter's range, it trains
on the embedded backend with its parameter tracked in MLflow like the alphas, and a fresh process
finds it in verl's own registry (``get_adv_estimator_fn``) through ``ASYM_ESTIMATOR_MODULES``."""

from __future__ import annotations

import json
import subprocess

import pytest
import torch

from experiments.plan import plan
from experiments.study_file import load_study_file

STUDY = """\
name: sharp
plugins: [my_estimators]
methods:
  - label: Sharp AsymGRPO
    estimator: sharp-asym
    alpha_pos: 0.9
    alpha_neg: 0.4
axes:
  params.power: [0.5, 2.0]
"""


def test_user_estimator_trains_on_the_embedded_backend_tracked_in_mlflow(plugin_module, tmp_path, monkeypatch):
    from mlflow import MlflowClient

    from estimators.registry import compute_advantages
    from orchestrator.single import train_standalone

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    (tmp_path / "study.yaml").write_text(STUDY)
    trials = plan(load_study_file(tmp_path / "study.yaml"), smoke=True, steps=2)
    assert [dict(t.estimator_params) for t in trials] == [{"power": 0.5}, {"power": 2.0}]
    assert all(t.plugins == ("my_estimators",) for t in trials)

    # the registered function itself: |A| ** power of AsymGRPO's advantage, sign kept
    rewards, groups = torch.tensor([1.0, 0.0, 0.0, 0.0]), torch.zeros(4, dtype=torch.long)
    base = compute_advantages("asym", rewards, groups, 0.9, 0.4)
    sharp = compute_advantages("sharp-asym", rewards, groups, 0.9, 0.4, {"power": 2.0})
    assert torch.allclose(sharp, base.sign() * base.abs() ** 2)

    run_id = train_standalone(trials[1], show_progress=False, threads=1)
    run = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / '.asym' / 'mlflow' / 'mlflow.db'}").get_run(run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params["estimator"] == "sharp-asym" and run.data.params["power"] == "2.0"
    assert run.data.params["axis.params.power"] == "2.0" and run.data.params["alpha_pos"] == "0.9"
    assert "train/entropy" in run.data.metrics


@pytest.mark.slow
def test_fresh_process_finds_the_user_estimator_in_verls_registry(plugin_module, clean_env, python_exe):
    code = (
        "import json, numpy as np, torch\n"
        "from omegaconf import OmegaConf\n"
        "from verl.trainer.ppo.core_algos import get_adv_estimator_fn\n"
        "fn = get_adv_estimator_fn('sharp-asym')\n"
        "r = torch.tensor([[1., 0.], [0., 0.], [0., 0.], [0., 0.]]); m = torch.ones(4, 2)\n"
        "cfg = OmegaConf.create({'asym': {'alpha_pos': 0.9, 'alpha_neg': 0.4, 'params': {'power': 2.0}}})\n"
        "adv, _ = fn(r, m, index=np.array(['a'] * 4, dtype=object), config=cfg)\n"
        "print(json.dumps({'module': fn.__module__, 'adv': adv[:, 0].tolist()}))\n"
    )
    env = {**clean_env, "ASYM_ESTIMATOR_MODULES": "my_estimators", "PYTHONPATH": str(plugin_module.parent)}
    proc = subprocess.run([python_exe, "-c", code], capture_output=True, text=True, timeout=240, env=env,
                          cwd=plugin_module.parent)
    assert proc.returncode == 0, proc.stderr[-2000:]
    found = json.loads(proc.stdout.strip().splitlines()[-1])
    assert found["module"] == "backends.verl.adapter"  # our adapter registered it, on `import verl`
    from experiments.plugins import load_plugins
    from estimators.registry import compute_advantages

    load_plugins(["my_estimators"], search_dir=str(plugin_module.parent))  # the same module, here
    expected = compute_advantages("sharp-asym", torch.tensor([1.0, 0, 0, 0]), torch.zeros(4, dtype=torch.long),
                                  0.9, 0.4, {"power": 2.0})
    assert found["adv"] == pytest.approx(expected.tolist(), rel=1e-6)
