"""The bad-input contract, checked once: a refused command exits 2 with one `error: ...` line on
stderr and writes nothing in its working directory (not even ./.asym)."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from orchestrator.cli import main


def snapshot(root: Path) -> dict:
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*")}


def assert_refused(argv: str, cwd: Path, capsys, message: str) -> str:
    """Run `asym ARGV` in process (cwd already ``cwd``); return its one error line."""
    before = snapshot(cwd)
    with pytest.raises(SystemExit) as exit_info:
        main(shlex.split(argv))
    err = capsys.readouterr().err
    assert exit_info.value.code == 2, err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert message in err, err
    assert snapshot(cwd) == before and not (cwd / ".asym").exists()  # nothing written
    return err
