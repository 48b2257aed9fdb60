"""The project's pins against verl's own, read from package metadata (offline, no resolver).

verl 0.9.1 pins what a GPU host gets through its ``vllm`` extra (torch, vLLM, transformers, ...);
our ``gpu`` extra installs ``verl[vllm]`` next to the project's base dependencies, so every pin we
declare for a GPU host must admit a version verl's extra admits, or pip's resolver gives up
(``ResolutionImpossible``). ``clashes`` says which, for ``tests/test_verl_pins.py`` (the project's
declared pins, from pyproject.toml) and ``asym doctor`` (the installed versions).

vLLM's own requirements are not in verl's metadata (and vLLM is not installed on the CPU stack):
the caps of vLLM 0.24's stack that pip's resolver met in the dry-run of the README's GPU line
(benchmarks/RESULTS.md, 2026-12-07) are kept in ``VLLM_STACK_CAPS`` and checked the same way.

Two specifier sets are compatible when some version satisfies both. Exact for ``==`` pins (every
pin of verl's extras is one); for two ranges we look for a witness among their bounds, which finds
one whenever the ranges overlap at a bound or below the lower one.
"""

from __future__ import annotations

import importlib.metadata as md
import tomllib
from pathlib import Path
from typing import Iterable

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

VERL_DIST = "verl"
VERL_GPU_EXTRA = "vllm"  # what our `gpu` extra installs: verl[vllm]
VERL_CPU_EXTRAS = ("verl-core",)  # what verl's CPU code paths import (our `verl` extra pins them)
PROJECT_GPU_EXTRAS = ("gpu",)  # a GPU host: base dependencies + `gpu`, never the CPU `verl` extra
PROJECT_CPU_EXTRAS = ("verl",)
# vllm 0.24.0 requires fastapi<0.137; mistral-common (a vllm dependency) numpy<2.4 on Python <= 3.12
VLLM_STACK_CAPS = {"fastapi": SpecifierSet("<0.137"), "numpy": SpecifierSet("<2.4")}


def _selected(requirements: Iterable[str], extras: Iterable[str]) -> list[Requirement]:
    """Requirements a ``pip install dist[extras]`` asks for (base ones, the extras', markers evaluated)."""
    extras = set(extras) | {""}
    out = []
    for text in requirements:
        req = Requirement(text)
        if req.marker is None or any(req.marker.evaluate({"extra": e}) for e in extras):
            out.append(req)
    return out


def _merge(requirements: Iterable[Requirement], skip: str = "") -> dict[str, SpecifierSet]:
    merged: dict[str, SpecifierSet] = {}
    for req in requirements:
        name = canonicalize_name(req.name)
        if name != skip:
            merged[name] = merged.get(name, SpecifierSet()) & req.specifier
    return merged


def verl_requirements(extras: Iterable[str] = (VERL_GPU_EXTRA,), dist: str = VERL_DIST) -> dict[str, SpecifierSet]:
    """What ``pip install verl[extras]`` requires, by package, from the installed verl's metadata;
    verl's extras name each other (``vllm`` pulls ``verl[verl-core]``): followed to the end."""
    requires = md.requires(dist) or []
    wanted, reqs = set(extras), []
    while True:
        reqs = _selected(requires, wanted)
        more = {e for r in reqs if canonicalize_name(r.name) == dist for e in r.extras} - wanted
        if not more:
            return _merge(reqs, skip=dist)
        wanted |= more


def gpu_host_requirements() -> dict[str, SpecifierSet]:
    """What a GPU host's resolver must satisfy besides our pins: verl[vllm] and vLLM's known caps."""
    theirs = verl_requirements((VERL_GPU_EXTRA,))
    for name, spec in VLLM_STACK_CAPS.items():
        theirs[name] = theirs.get(name, SpecifierSet()) & spec
    return theirs


def pyproject_requirements(pyproject: Path, extras: Iterable[str]) -> list[Requirement]:
    """The project's declared requirements for ``pip install .[extras]`` (pyproject.toml)."""
    project = tomllib.loads(Path(pyproject).read_text())["project"]
    texts = list(project.get("dependencies", []))
    for extra in extras:
        texts += project.get("optional-dependencies", {})[extra]
    return [Requirement(t) for t in texts]


def _witnesses(specs: SpecifierSet) -> set[Version]:
    out = {Version("0")}
    for spec in specs:
        try:
            bound = Version(spec.version.removesuffix(".*"))
        except InvalidVersion:
            continue
        out |= {bound, Version(f"{bound.base_version}.1")}  # the bound, and just above it
    return out


def compatible(ours: SpecifierSet, theirs: SpecifierSet) -> bool:
    both = ours & theirs
    return any(both.contains(v, prereleases=True) for v in _witnesses(ours) | _witnesses(theirs))


def clashes(ours: Iterable[Requirement], theirs: dict[str, SpecifierSet]) -> list[str]:
    """One line per package whose two specifier sets admit no common version."""
    out = []
    for name, spec in sorted(_merge(ours, skip=VERL_DIST).items()):
        if name in theirs and not compatible(spec, theirs[name]):
            out.append(f"{name}: ours {spec or 'any'} vs verl's {theirs[name]}")
    return out


def installed_clashes(theirs: dict[str, SpecifierSet]) -> tuple[list[str], list[str]]:
    """(installed packages whose version verl's requirements exclude, verl's requirements not installed)."""
    wrong, missing = [], []
    for name, spec in sorted(theirs.items()):
        try:
            version = md.version(name)
        except md.PackageNotFoundError:
            missing.append(name)
            continue
        if not spec.contains(version, prereleases=True):
            wrong.append(f"{name} {version} (verl wants {spec})")
    return wrong, missing
