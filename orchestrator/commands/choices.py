"""Choices shared by the commands, taken from their registries (never listed by hand)."""

from __future__ import annotations

from enum import Enum

from backends import BACKENDS

BackendName = Enum("BackendName", {name: name for name in BACKENDS}, type=str)  # --backend
# `asym train --backend`: the backends that train in the CLI's own process
InProcessBackendName = Enum("InProcessBackendName", {name: name for name, entry in BACKENDS.items()
                                                     if entry.trains_in_process}, type=str)
