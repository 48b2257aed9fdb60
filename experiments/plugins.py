"""A user's own estimators: modules that call ``estimators.registry.register`` when imported.

A module is named by a dotted path (a study file's ``plugins:`` list, the planner puts it on every
``TrialSpec`` so each trial process imports it again), or installed under the ``asym.estimators``
entry point group; ``ASYM_ESTIMATOR_MODULES`` (comma-separated) names more for processes that
start elsewhere (verl's workers). A module's folder must be importable: a study file's own folder
is put on ``sys.path`` by the study loader.
"""

from __future__ import annotations

import importlib
import os
import sys
from importlib.metadata import entry_points
from typing import Iterable

ENTRY_POINT_GROUP = "asym.estimators"
MODULES_ENV = "ASYM_ESTIMATOR_MODULES"


def load_plugins(modules: Iterable[str] = (), search_dir: str | None = None) -> None:
    """Import each module (and the installed entry points) once; a one-line ValueError on failure."""
    if search_dir and search_dir not in sys.path:
        sys.path.insert(0, search_dir)
    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError as exc:
            raise ValueError(f"cannot import estimator module '{name}' ({exc})") from None


def load_installed() -> None:
    """The entry points of ``asym.estimators`` and the modules named in ``ASYM_ESTIMATOR_MODULES``."""
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        ep.load()
    load_plugins(m.strip() for m in os.environ.get(MODULES_ENV, "").split(",") if m.strip())


def import_roots(modules: Iterable[str]) -> list[str]:
    """The folders to put on PYTHONPATH so another process can import ``modules`` (already imported here)."""
    roots = []
    for name in modules:
        module = sys.modules.get(name) or importlib.import_module(name)
        file = getattr(module, "__file__", None)
        if not file:
            continue
        root = os.path.dirname(os.path.abspath(file))
        for _ in range(name.count(".") + (1 if os.path.basename(file) == "__init__.py" else 0)):
            root = os.path.dirname(root)
        if root not in roots:
            roots.append(root)
    return roots
