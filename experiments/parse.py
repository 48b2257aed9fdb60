"""Command-line values -> typed values, each refusal one line: comma lists of numbers and seeds, and
``--set key=v1,v2`` (an ``Axis``)."""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import yaml

from experiments.spec import NAMED_FIELDS, Axis, check_named


def comma_items(text: str, name: str, example: str) -> list[str]:
    """Split a comma list, rejecting an empty list or empty items with a one-line error."""
    items = [part.strip() for part in str(text).split(",")]
    if not str(text).strip() or any(not item for item in items):
        raise ValueError(f"{name} needs comma-separated {example}; got {text!r}")
    return items


def reject_repeats(values: Sequence[Any], describe: Callable[[Any], str]) -> None:
    """One-line error naming the first value that appears twice (``describe`` words it)."""
    for i, value in enumerate(values):
        if value in values[:i]:
            raise ValueError(f"{describe(value)} is listed twice")


def parse_float_list(text: str, *, name: str, nonnegative: bool = True) -> list[float]:
    """"0,0.5,1" -> [0.0, 0.5, 1.0]; rejects empty items, non-numbers, non-finite, negatives, repeats."""
    values: list[float] = []
    for item in comma_items(text, name, "numbers like 0,0.5,1"):
        try:
            value = float(item)
        except ValueError:
            raise ValueError(f"{name}: {item!r} is not a number (got {text!r})") from None
        if not math.isfinite(value):
            raise ValueError(f"{name}: values must be finite, got {item!r}")
        if nonnegative and value < 0:
            raise ValueError(f"{name}: values must be >= 0, got {item!r}")
        values.append(value)
    reject_repeats(values, lambda v: f"{name}: {v:g}")
    return values


def parse_seeds(text: str, *, name: str = "--seeds") -> list[int]:
    """"0,1,2" -> [0, 1, 2]; rejects empty items, non-integers, negatives and repeats."""
    seeds: list[int] = []
    for item in comma_items(text, name, "integers like 0,1,2"):
        try:
            seed = int(item)
        except ValueError:
            raise ValueError(f"{name}: {item!r} is not an integer (got {text!r})") from None
        if seed < 0:
            raise ValueError(f"{name}: seeds must be >= 0, got {item!r}")
        seeds.append(seed)
    reject_repeats(seeds, lambda v: f"{name}: seed {v}")
    return seeds


def parse_set(text: str) -> Axis:
    """``--set key=v1,v2`` -> an Axis; values parse as YAML scalars (numbers, true/false, strings).
    A name-valued method field (policy_loss, loss_agg) is checked here, before any trial is named."""
    key, sep, values = str(text).partition("=")
    key = key.strip()
    if not sep or not key:
        raise ValueError(f"--set needs key=value[,value...], e.g. --set lr=1e-3,3e-3; got {text!r}")
    items = comma_items(values, f"--set {key}", "values like 1e-3,3e-3")
    parsed = []
    for item in items:
        value = yaml.safe_load(item)
        if isinstance(value, str) and _looks_numeric(value):
            value = float(value)  # YAML 1.1 reads "1e-3" as a string
        parsed.append(value)
    reject_repeats(parsed, lambda v: f"--set {key}: {v}")
    for value in parsed if key in NAMED_FIELDS else ():
        check_named(key, value, f"--set {key}={value}")
    return Axis(key, tuple(parsed), "--set")


def _looks_numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
