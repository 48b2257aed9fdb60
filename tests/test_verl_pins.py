"""The GPU install stays resolvable: the project's pins for a GPU host (pyproject.toml's base
dependencies + the ``gpu`` extra) against verl's own ``vllm`` extra, read offline from the installed
verl's metadata (``importlib.metadata.requires("verl")``), plus vLLM's caps that pip met in the
recorded dry-run (``pins.VLLM_STACK_CAPS``). A pin bump that would end the README's GPU line in
pip's ``ResolutionImpossible`` fails here, on the CPU stack, without a network.
"""

from __future__ import annotations

import importlib.metadata as md
from pathlib import Path

import pytest
from packaging.specifiers import SpecifierSet

from backends.verl import pins

pytest.importorskip("verl")

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"


def test_gpu_host_pins_admit_verls_vllm_extra():
    ours = pins.pyproject_requirements(PYPROJECT, pins.PROJECT_GPU_EXTRAS)
    assert pins.clashes(ours, pins.gpu_host_requirements()) == []


def test_the_gpu_extra_installs_the_verl_we_read():
    ours = {r.name: r for r in pins.pyproject_requirements(PYPROJECT, pins.PROJECT_GPU_EXTRAS)}
    verl = ours["verl"]
    assert pins.VERL_GPU_EXTRA in verl.extras
    assert verl.specifier.contains(md.version("verl")), "the pin test reads another verl's metadata"


def test_cpu_extra_admits_verls_cpu_requirements():
    ours = pins.pyproject_requirements(PYPROJECT, pins.PROJECT_CPU_EXTRAS)
    assert pins.clashes(ours, pins.verl_requirements(pins.VERL_CPU_EXTRAS)) == []


def test_verls_vllm_extra_is_read_through_its_own_extras():
    theirs = pins.verl_requirements((pins.VERL_GPU_EXTRA,))
    assert str(theirs["vllm"]).startswith("==") and str(theirs["torch"]).startswith("==")
    assert "transferqueue" in theirs  # from verl[verl-core], which the vllm extra names


def test_a_pin_that_breaks_the_gpu_install_is_caught():
    from packaging.requirements import Requirement

    theirs = pins.gpu_host_requirements()
    ours = pins.pyproject_requirements(PYPROJECT, pins.PROJECT_GPU_EXTRAS)
    # what broke it before issue 26: the CPU extra's transformers and fastapi pins on a GPU host
    bad = ours + [Requirement("transformers==5.10.4"), Requirement("fastapi==0.165.0"), Requirement("numpy==2.4.6")]
    found = pins.clashes(bad, theirs)
    assert [line.split(":")[0] for line in found] == ["fastapi", "numpy", "transformers"], found
    assert pins.clashes(pins.pyproject_requirements(PYPROJECT, ("verl", "gpu")), theirs)  # never both extras


@pytest.mark.parametrize("ours, theirs, ok", [
    (">=2.11,<2.15", "==2.11.0", True), ("==5.10.4", "<5.11,>=5.5.3,==5.9.0", False), (">=2.0,<2.5", "<2.4", True),
    (">2.0", "<2.1", True), ("<2.0", ">=2.1", False), ("", "==1.0", True),
])
def test_compatible(ours, theirs, ok):
    assert pins.compatible(SpecifierSet(ours), SpecifierSet(theirs)) is ok
