"""Function-level imports only where they keep a start fast, each saying so (issue 27).

An import inside a function hides an edge of the graph, so it must pay for itself: it spares its
module a HEAVY package (import_graph.HEAVY: over 50 ms, or only in the `verl` extra) that the module
does not load anyway, or it sits in a CLI command module, which ``asym --help`` imports whole. Each
carries a ``# deferred: <what it spares>`` comment.
"""

from __future__ import annotations

import subprocess
import sys

from import_graph import HEAVY, PACKAGES, ROOT, function_level_imports


def is_cli(where: str) -> bool:
    return where.startswith(("orchestrator/commands/", "orchestrator/cli.py"))


def test_every_function_level_import_spares_a_heavy_package_or_keeps_help_fast():
    idle = [f"{d.where} ({d.names})" for d in function_level_imports()
            if not d.spares and not is_cli(d.where)]
    assert idle == [], "these spare nothing: import them at the module's top"


def test_cli_modules_defer_only_project_modules():
    """stdlib and rich are loaded by typer's help anyway: at the top, where the reader looks."""
    cheap = [f"{d.where} ({d.names})" for d in function_level_imports()
             if is_cli(d.where) and not d.spares
             and not any(n.split(".")[0] in PACKAGES for n in d.names.split(","))]
    assert cheap == []


def test_every_function_level_import_says_why():
    silent = [d.where for d in function_level_imports() if "deferred" not in d.comment]
    assert silent == []


def test_the_check_flags_an_import_that_spares_nothing(tmp_path):
    """A copy of a light module with a stdlib import moved into a function is flagged; a torch one is not."""
    for path in (ROOT / "common").rglob("*.py"):
        target = tmp_path / path.relative_to(ROOT)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(path.read_text())
    (tmp_path / "common" / "planted.py").write_text(
        "def f():\n    import json  # deferred: nothing\n    import torch  # deferred: torch\n")
    found = {d.where: d.spares for d in function_level_imports(tmp_path)}
    assert found["common/planted.py:2"] == frozenset()
    assert found["common/planted.py:3"] == frozenset({"torch"})


def test_asym_help_loads_no_heavy_package():
    """What the CLI's deferrals buy: importing the CLI (every command module) loads none of HEAVY."""
    code = ("import sys, orchestrator.cli; "
            "print(','.join(sorted({m.split('.')[0] for m in sys.modules})))")
    loaded = set(subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                                check=True).stdout.strip().split(","))
    assert loaded & HEAVY == set()
