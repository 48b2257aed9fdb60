"""The one check every non-negative setting shares (alphas, entropy coefficients, temperatures)."""

from __future__ import annotations

import math


def finite_nonnegative(what: str, value: object) -> float:
    """``value`` as a float when it is a finite real number >= 0 (not a bool); else a one-line ValueError."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise ValueError(f"{what} must be a finite number >= 0, got {value!r}")
    return float(value)
