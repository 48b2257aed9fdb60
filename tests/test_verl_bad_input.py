"""Bad input for verl on GPUs (issue 26): an unknown GPU preset, more GPUs per trial than this machine
shows, a model path that does not exist, a model missing from the cache while the Hub is offline.
Each is one `error: ...` line, exit 2, before anything starts: nothing written (as tests/test_bad_input.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from refusal import assert_refused  # noqa: E402  (tests/ is on sys.path under pytest)

GRID = "sweep grid --backend verl --alpha-pos 1 --alpha-neg 0.5 --model"
CASES = [
    (f"{GRID} qwen9-nosuch", {}, "unknown model 'qwen9-nosuch'"),
    (f"{GRID} qwen2.5-math-1.5b --gpus-per-trial 2", {"CUDA_VISIBLE_DEVICES": "0"},
     "needs 2 GPUs on one node; this machine shows 1; pass --gpus-per-trial 1 or fewer"),
    (f"{GRID} qwen2.5-math-1.5b", {"CUDA_VISIBLE_DEVICES": ""}, "this machine shows 0; on a CPU machine use --model cpu-tiny"),
    (f"{GRID} qwen2.5-math-1.5b --config nopath.yaml", {},
     "model 'qwen2.5-math-1.5b' (/no/such/model) not found: /no/such/model is not a folder with a config.json"),
    (f"{GRID} qwen3-4b", {"HF_HUB_OFFLINE": "1", "HF_HOME": "emptyhf"},
     "model 'qwen3-4b' (Qwen/Qwen3-4B) not found: Qwen/Qwen3-4B is not in the Hugging Face cache and HF_HUB_OFFLINE=1; "
     "fetch it with `huggingface-cli download Qwen/Qwen3-4B`"),
]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("verl-bad-input")
    (root / "nopath.yaml").write_text("qwen2.5-math-1.5b:\n  hf_path: /no/such/model\n")
    (root / "emptyhf").mkdir()
    return root


@pytest.mark.parametrize("argv,env,message", CASES, ids=[c[0].split("--model ")[1] + str(c[1]) for c in CASES])
def test_refused_with_one_line_and_exit_2_and_nothing_written(argv, env, message, inputs, monkeypatch, capsys):
    monkeypatch.chdir(inputs)
    for key in ("MLFLOW_TRACKING_URI", "RAY_ADDRESS", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_HUB_CACHE"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, str(inputs / value) if key == "HF_HOME" else value)
    assert_refused(argv, inputs, capsys, message)


def test_a_model_in_the_cache_passes_offline(tmp_path, monkeypatch):
    from backends.verl.models import check_model_source, locate

    snapshot = tmp_path / "hub" / "models--Qwen--Qwen3-4B" / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text("{}")
    (tmp_path / "hub" / "models--Qwen--Qwen3-4B" / "refs").mkdir()
    (tmp_path / "hub" / "models--Qwen--Qwen3-4B" / "refs" / "main").write_text("abc123")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert locate("Qwen/Qwen3-4B") == ("cache", str(snapshot))
    check_model_source("Qwen/Qwen3-4B", "qwen3-4b")  # no error
    assert locate(str(snapshot)) == ("local", str(snapshot))


def test_attention_is_chosen_at_run_time_with_one_line(monkeypatch):
    import importlib.util

    from backends.verl import models

    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "flash_attn" else object())
    extra, line = models.attention_override({})
    assert extra == ["+actor_rollout_ref.model.override_config.attn_implementation=sdpa"]
    assert line.startswith("asym: attention sdpa (flash_attn not importable")
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: object())
    assert models.attention_override({})[0][0].endswith("=flash_attention_2")
    assert models.attention_override({"attn_implementation": "eager"}) == ([], "asym: attention eager (the preset's)")


@pytest.mark.parametrize("env, expected", [({"CUDA_VISIBLE_DEVICES": "0,1"}, 2), ({"CUDA_VISIBLE_DEVICES": ""}, 0),
                                           ({"CUDA_VISIBLE_DEVICES": "-1"}, 0)])
def test_gpus_per_node_default_follows_the_machine(env, expected):
    from experiments.presets.machine import PAPER_GPUS_PER_NODE, gpus_per_node_default, visible_gpus

    assert visible_gpus(env) == expected
    assert gpus_per_node_default(env) == (expected or PAPER_GPUS_PER_NODE)


def test_one_visible_gpu_plans_one_gpu_trials(monkeypatch):
    from experiments.plan import plan

    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3")
    (trial,) = plan("grid", backend="verl", models=["qwen2.5-math-1.5b"], alpha_pos=[1.0], alpha_neg=[0.5])
    assert (trial.settings_dict()["n_gpus_per_node"], trial.settings_dict()["gpus_per_trial"]) == (1, 1)
