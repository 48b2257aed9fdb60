"""The registry of backends: one name -> one entry (its class and what it can do), imported only
when asked (keeps the CLI fast).

The CLI's ``--backend`` choices, the commands' backend-specific steps and every lookup come from
``BACKENDS``; each class implements ``backends.base.Backend``. The names and the models each
backend runs are the presets' (``experiments.presets.MODELS_BY_BACKEND``, which the planner reads
one floor below): ``tests/test_experiments.py`` checks that both name the same backends.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import import_module
from typing import Any, Callable


@dataclass(frozen=True)
class BackendEntry:
    cls: str  # "module:Class", imported by ``get_backend``
    trains_in_process: bool = False  # `asym train` can run it in the CLI's own process (no Ray)
    gpus_setting: str | None = None  # the preset key that --gpus-per-trial also sets (a job's own GPU count)
    dry_run_fields: str | None = None  # "module:function": fields it adds to each trial of --dry-run --json

    def dry_run_fields_of(self) -> Callable[[Any], dict] | None:
        """The function adding this backend's fields to --dry-run --json, or None (an extra not installed)."""
        if self.dry_run_fields is None:
            return None
        module, _, name = self.dry_run_fields.partition(":")
        try:
            return getattr(import_module(module), name)
        except ImportError:
            return None


BACKENDS: dict[str, BackendEntry] = {
    # the CPU engine, in the trial's process
    "embedded": BackendEntry("backends.embedded:EmbeddedBackend", trains_in_process=True),
    # verl 0.9.1 jobs on GPUs (or its CPU mode)
    "verl": BackendEntry("backends.verl:VerlBackend", gpus_setting="gpus_per_trial",
                         dry_run_fields="backends.verl.render:dry_run_fields"),
}


def get_backend(name: str):
    """A new backend object for ``name``; the error lists the known ones."""
    from experiments.presets import check_backend  # deferred: omegaconf; the one "unknown backend" error

    check_backend(name)
    module, _, cls = BACKENDS[name].cls.partition(":")
    return getattr(import_module(module), cls)()
