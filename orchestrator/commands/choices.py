"""Choices shared by the commands, taken from their registries (never listed by hand)."""

from __future__ import annotations

from enum import Enum

from backends import BACKENDS

BackendName = Enum("BackendName", {name: name for name in BACKENDS}, type=str)  # --backend
