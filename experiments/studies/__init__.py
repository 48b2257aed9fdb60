"""The paper's declared studies: one YAML file each, read by the same loader as a user's study file.

``STUDIES`` (name -> ``Study``) and ``get_study(name)``. The files (``experiments/studies/*.yaml``,
shipped as package data) follow ``experiments.study_file``'s schema, so a user's file can say
anything a paper study says, and every value's source is a file:line. They are read on first use
(``STUDIES`` is loaded lazily, PEP 562) and once per process.
"""

from __future__ import annotations

from dataclasses import replace
from functools import lru_cache
from importlib import resources
from typing import Any

import yaml

from experiments.spec import Method, Study

ORDER = ("isolation", "flip", "grid", "main", "backbones", "kappa", "kappa-flip", "comparators", "schedules")  # `asym study list`

# `asym sweep optuna`: one AsymGRPO method whose alphas (and any --range) Optuna samples; each sample
# is planned into its own trial, labelled by its values ("AsymGRPO alpha_pos=0.553 alpha_neg=0.72").
OPTUNA_STUDY = Study(
    name="optuna",
    title="Optuna search over AsymGRPO (Fig 4(d) by search)",
    description="AsymGRPO with alphas (and any --range setting) sampled by Optuna's TPE through Ray Tune.",
    methods=(Method("AsymGRPO", "asym", source="eq 8 [v1*, v2 prose]; values sampled by Optuna"),),
    models=("qwen3-4b",),
)


@lru_cache(maxsize=None)
def _load_one(name: str) -> Study:
    """One study file, checked by the study-file loader (a file is read only when its study is asked)."""

    from experiments.study_file import load_study_file  # deferred: omegaconf

    with resources.as_file(resources.files(__name__) / f"{name}.yaml") as path:
        study = load_study_file(path)
    if study.name != name:
        raise ValueError(f"{name}.yaml declares name '{study.name}'")
    return replace(study, origin="")  # a built-in study: `asym sweep NAME`, not `run FILE`


def _load() -> dict[str, Study]:
    return {name: _load_one(name) for name in ORDER}


def __getattr__(name: str) -> Any:
    if name == "STUDIES":
        return _load()
    raise AttributeError(f"module 'experiments.studies' has no attribute {name!r}")


def get_study(name: str) -> Study:
    """The declared study of this name; the error lists the known ones."""
    if name not in ORDER:
        raise ValueError(f"unknown study '{name}'; known: {', '.join(ORDER)}")
    return _load_one(name)


def study_title(name: str) -> str:
    """A paper study's title without checking its file (for `asym sweep --help`, which lists them all)."""

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when present: `--help` stays quick
    return str(yaml.load((resources.files(__name__) / f"{name}.yaml").read_text(), Loader=loader).get("title") or name)


def study_sources(name: str) -> dict[str, str]:
    """Method label -> the source of its values (file:line, then the paper section and spec tag)."""
    study = get_study(name)
    sources = {m.label: m.source for m in study.methods}
    if study.alpha_grid is not None:
        sources[f"{study.alpha_grid.label} (a+, a-)"] = study.alpha_grid.source
    return sources
