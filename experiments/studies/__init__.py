"""The paper's declared studies, one module each, and the registry the CLI and planner read.

Each module defines ``STUDY`` (an ``experiments.spec.Study``) and ``SOURCES`` (method label ->
where its values come from); the registry attaches each source to its method (``Method.source``),
so a built-in study and a study file (``experiments.study_file``) carry their sources the same way.
"""

from __future__ import annotations

from dataclasses import replace
from types import ModuleType

from experiments.spec import Study
from experiments.studies import backbones, comparators, flip, grid, isolation, kappa, kappa_flip, main, schedules

_MODULES: tuple[ModuleType, ...] = (isolation, flip, grid, main, backbones, kappa, kappa_flip, comparators, schedules)


def _with_sources(module: ModuleType) -> Study:
    study = module.STUDY
    return replace(study, methods=tuple(replace(m, source=m.source or module.SOURCES.get(m.label, "")) for m in study.methods))


STUDIES: dict[str, Study] = {m.STUDY.name: _with_sources(m) for m in _MODULES}
_SOURCES: dict[str, dict[str, str]] = {m.STUDY.name: dict(m.SOURCES) for m in _MODULES}


def get_study(name: str) -> Study:
    """The declared study of this name; the error lists the known ones."""
    try:
        return STUDIES[name]
    except KeyError:
        raise ValueError(f"unknown study '{name}'; known: {', '.join(STUDIES)}") from None


def study_sources(name: str) -> dict[str, str]:
    """Method label -> the source of its values (paper section, spec tag)."""
    get_study(name)
    return dict(_SOURCES[name])
