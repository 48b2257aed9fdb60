"""docs/extending.md's backend example works as written: its module (taken from the page), one
BackendEntry and one PresetFamily make `--backend echo` plan, resolve its preset and run a trial."""

from __future__ import annotations

import dataclasses
import importlib
import re
import sys
from pathlib import Path

import pytest

from backends import BACKENDS, BackendEntry, get_backend
from experiments import presets
from experiments.plan import plan

DOC = Path(__file__).resolve().parent.parent / "docs" / "extending.md"


@dataclasses.dataclass
class EchoPreset:  # the page: "a dataclass with at least steps, clip and entropy_coeff"
    steps: int = 3
    clip: float = 0.2
    entropy_coeff: float = 0.0


@pytest.fixture
def echo(tmp_path, monkeypatch):
    section = DOC.read_text().split("## A backend", 1)[1]
    code = re.search(r"```python\n# backends/echo.py\n(.*?)\n# backends/__init__.py", section, re.S).group(1)
    (tmp_path / "echo_backend.py").write_text(code)
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module("echo_backend")
    monkeypatch.setitem(BACKENDS, "echo", BackendEntry("echo_backend:EchoBackend", trains_in_process=True))
    family = presets.PresetFamily(("echo-tiny",), lambda model: (EchoPreset, {}),
                                  lambda model, values, explicit: None, lambda: {"steps": 2})
    monkeypatch.setitem(presets.FAMILIES, "echo", family)
    monkeypatch.setitem(presets.MODELS_BY_BACKEND, "echo", family.models)
    monkeypatch.setattr(presets, "ALL_MODELS", (*presets.ALL_MODELS, *family.models))
    yield module
    sys.modules.pop("echo_backend", None)


def test_the_pages_backend_plans_resolves_and_runs(echo, tmp_path):
    trials = plan("grid", backend="echo", alpha_pos=[0.5, 1.0], alpha_neg=[0.0])
    assert [t.model for t in trials] == ["echo-tiny", "echo-tiny"] and {t.backend for t in trials} == {"echo"}
    assert trials[0].steps == 3  # EchoPreset's default
    smoke = plan("grid", backend="echo", alpha_pos=[0.5], alpha_neg=[0.0], smoke=True)
    assert smoke[0].steps == 2  # its family's smoke settings
    backend = get_backend("echo")
    assert isinstance(backend, echo.EchoBackend)
    reported = []
    backend.run(trials[0], lambda step, metrics: reported.append((step, metrics)), tmp_path)
    assert [step for step, _ in reported] == [0, 1, 2, 3]


def test_an_unknown_key_for_the_new_model_names_its_schema(echo):
    with pytest.raises(ValueError, match="unknown key 'lr' for model 'echo-tiny'; known: steps, clip, entropy_coeff"):
        presets.resolve_preset("echo-tiny", [("--set", {"lr": 1.0})])
