"""YAML a user hands us -> a typed dataclass schema (OmegaConf), every error one line with file:line.

One loader for study files, model presets and cluster files: ``read_yaml`` parses the text and
maps every key to its line; ``typed`` merges one node onto a schema; ``where`` names ``file:line
(key)`` for a key or its nearest ancestor. Errors are the caller's ``ValueError`` subclass.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from common.errors import first_line


class YamlFileError(ValueError):
    """A bad YAML file: one line naming the file, the line and the field."""


def read_yaml(path: str | Path, what: str, error: type[Exception] = YamlFileError, *, plain: bool = False,
              hint: str = "") -> tuple[Any, dict[str, int]]:
    """(the file's content, key -> line); ``what`` names the file in errors ("study file"), ``hint``
    follows "does not exist". The content is an OmegaConf node (its YAML reads 1e-3 as a number), or
    with ``plain`` what ``yaml.safe_load`` gives (for files checked against another tool's schema)."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise error(f"{what} {path} does not exist{hint}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"cannot read {what} {path}: {exc}") from None
    lines = line_map(text, path, error)
    try:
        if plain:

            return yaml.safe_load(text), lines
        from omegaconf import OmegaConf  # deferred: omegaconf

        return OmegaConf.create(text), lines
    except Exception as exc:  # yaml errors the composer let through
        raise error(f"{path}: not valid YAML: {first_line(exc)}") from None


def typed(schema: type, value: Any, prefix: str, path: Path, lines: dict[str, int],
          error: type[ValueError] = YamlFileError) -> dict:
    """``value`` merged onto ``schema`` as a plain dict; a schema error names the file, line and field."""
    from omegaconf import OmegaConf  # deferred: omegaconf
    from omegaconf.errors import OmegaConfBaseException  # deferred: omegaconf

    try:
        if not isinstance(value, dict) and not OmegaConf.is_dict(value):
            noun = schema.__name__.removesuffix("Schema").lower()
            raise error(f"{where(path, lines, prefix)}: expected a mapping of {noun} fields, got {value!r}")
        cfg = OmegaConf.merge(_structured(schema), value)  # merge copies its first argument
        return OmegaConf.to_container(cfg, throw_on_missing=True)  # type: ignore[return-value]
    except OmegaConfBaseException as exc:
        key = ".".join(k for k in (prefix, str(getattr(exc, "full_key", "") or "")) if k)
        raise error(f"{where(path, lines, key)}: {schema_message(exc, key)}") from None


@lru_cache(maxsize=None)
def _structured(schema: type):
    """The schema as an OmegaConf config, built once per schema (building it is most of a merge's cost)."""
    from omegaconf import OmegaConf  # deferred: omegaconf

    return OmegaConf.structured(schema)


def line_map(text: str, path: Path, error: type[Exception] = YamlFileError) -> dict[str, int]:
    """OmegaConf-style key ("methods[0].alpha_pos") -> 1-based line of that node in the YAML text."""

    try:
        root = yaml.compose(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f":{mark.line + 1}" if mark else ""
        raise error(f"{path}{at}: not valid YAML: {getattr(exc, 'problem', None) or first_line(exc)}") from None
    lines: dict[str, int] = {}

    def walk(node, key: str) -> None:
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                child = f"{key}.{k.value}" if key else str(k.value)
                lines[child] = k.start_mark.line + 1
                walk(v, child)
        elif isinstance(node, yaml.SequenceNode):
            for i, v in enumerate(node.value):
                child = f"{key}[{i}]"
                lines[child] = v.start_mark.line + 1
                walk(v, child)

    if root is not None:
        walk(root, "")
    return lines


def where(path: Path, lines: dict[str, int], key: str) -> str:
    """``file:line (key)`` of ``key``, or of its closest ancestor in the file."""
    probe = key
    while probe:
        if probe in lines:
            return f"{path}:{lines[probe]} ({key})" if key else f"{path}:{lines[probe]}"
        shorter = re.sub(r"(\.[^.\[\]]+|\[\d+\])$", "", probe)
        probe = "" if shorter == probe else shorter
    return str(path)


def schema_message(exc: Exception, key: str) -> str:
    """OmegaConf's error in our words: unknown field, required field, or a field's wrong type."""
    kind = type(exc).__name__
    leaf = key.rsplit(".", 1)[-1] if key else ""
    if kind == "ConfigKeyError":
        return f"unknown field '{leaf}'"
    if kind == "MissingMandatoryValue":
        return f"field '{leaf}' is required"
    if kind in ("ValidationError", "ConfigTypeError"):
        return f"field '{leaf}': {first_line(exc).split('    ')[0]}"
    return first_line(exc)
