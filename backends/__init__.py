"""The registry of backends: one name -> one class, imported only when asked (keeps the CLI fast).

The CLI's ``--backend`` choices and every lookup come from ``BACKENDS``; each class implements
``backends.base.Backend``.
"""

from __future__ import annotations

from importlib import import_module

BACKENDS: dict[str, str] = {
    "embedded": "backends.embedded:EmbeddedBackend",  # the CPU engine, in the trial's process
    "verl": "backends.verl:VerlBackend",  # verl 0.9.1 jobs on GPUs
}


def get_backend(name: str):
    """A new backend object for ``name``; the error lists the known ones."""
    try:
        module, _, cls = BACKENDS[name].partition(":")
    except KeyError:
        raise ValueError(f"unknown backend '{name}'; known: {', '.join(BACKENDS)}") from None
    return getattr(import_module(module), cls)()
