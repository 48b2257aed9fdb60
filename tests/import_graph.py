"""The package's import graph read with ``ast``, shared by tests/test_layers.py (every import: the floors
and no cycle) and tests/test_deferred_imports.py (module-level imports: what a function-level one spares).
"""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("common", "estimators", "tinyrlvr", "experiments", "backends", "orchestrator", "analysis", "cluster")

# Third-party packages worth deferring: each takes over 50 ms to import on the 2-core development VM
# (measured one by one in a fresh interpreter: omegaconf 55 ms, jsonschema 62, numpy 73, matplotlib 194,
# optuna 255, math_verify 259, ray 272, pandas 276, datasets 549, transformers 697, mlflow 950, torch 970,
# verl 4983), or is installed only with the `verl` extra (so the embedded install never imports it).
HEAVY = frozenset({
    "numpy", "pandas", "torch", "ray", "mlflow", "optuna", "matplotlib", "omegaconf", "jsonschema",
    "verl", "vllm", "transformers", "hydra", "math_verify", "datasets", "tokenizers", "huggingface_hub",
    "peft", "tensordict", "torchdata", "codetiming",
})


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@dataclass(frozen=True)
class Import:
    """One import statement: the project modules and third-party top-level packages it names."""
    line: int
    project: frozenset[str]
    external: frozenset[str]
    in_function: bool


def _closest(name: str, known: set[str]) -> str:
    while name and name not in known:
        name = name.rpartition(".")[0]
    return name


def _is_type_checking(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def _walk(node: ast.AST, in_function: bool = False):
    """(statement, in_function) for every import, skipping ``if TYPE_CHECKING:`` blocks."""
    for child in ast.iter_child_nodes(node):
        if _is_type_checking(child):
            continue
        if isinstance(child, (ast.Import, ast.ImportFrom)):
            yield child, in_function
        inner = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
        yield from _walk(child, inner)


def statements(path: Path, known: set[str], root: Path) -> list[Import]:
    """Every import statement of ``path`` (``from a.b import c`` names a.b.c when that is a module)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    own = module_name(path, root)
    package = own if path.name == "__init__.py" else own.rpartition(".")[0]
    out = []
    for node, in_function in _walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
        project = {name if name in known else _closest(name, known) for name in names if name.split(".")[0] in PACKAGES}
        external = {name.split(".")[0] for name in names if name.split(".")[0] not in PACKAGES}
        out.append(Import(node.lineno, frozenset(project - {"", own}), frozenset(external), in_function))
    return out


def package_files(root: Path = ROOT) -> list[Path]:
    return [p for pkg in PACKAGES for p in (root / pkg).rglob("*.py")]


def all_statements(root: Path = ROOT) -> dict[str, tuple[Path, list[Import]]]:
    files = package_files(root)
    known = {module_name(p, root) for p in files}
    return {module_name(p, root): (p, statements(p, known, root)) for p in files}


def graph(root: Path = ROOT) -> dict[str, set[str]]:
    """Module -> the project modules it imports, anywhere in it (module level or inside a function)."""
    return {m: set().union(*(s.project for s in stmts)) for m, (_, stmts) in all_statements(root).items()}


def _parents(module: str) -> list[str]:
    """Importing a.b.c runs a/__init__ and a/b/__init__ first."""
    parts = module.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def heavy_on_import(root: Path = ROOT) -> dict[str, frozenset[str]]:
    """Module -> the HEAVY packages that importing it loads (module-level imports, followed through)."""
    stmts = all_statements(root)
    direct = {m: [s for s in ss if not s.in_function] for m, (_, ss) in stmts.items()}
    memo: dict[str, frozenset[str]] = {}

    def visit(module: str, seen: frozenset[str]) -> frozenset[str]:
        if module in memo:
            return memo[module]
        found: set[str] = set()
        targets = {p for p in _parents(module) if p in direct}
        for s in direct.get(module, []):
            found |= s.external & HEAVY
            targets |= {t for name in s.project for t in (name, *_parents(name)) if t in direct}
        for target in targets - seen - {module}:
            found |= visit(target, seen | {module})
        memo[module] = frozenset(found)
        return memo[module]

    return {m: visit(m, frozenset()) for m in stmts}


@dataclass(frozen=True)
class Deferred:
    """A function-level import and the HEAVY packages it spares its module's own import."""
    where: str  # path:line
    names: str
    spares: frozenset[str]
    comment: str


def function_level_imports(root: Path = ROOT) -> list[Deferred]:
    stmts = all_statements(root)
    heavy = heavy_on_import(root)
    out = []
    for module, (path, ss) in sorted(stmts.items()):
        lines = path.read_text().splitlines()
        for s in ss:
            if not s.in_function:
                continue
            loads = set(s.external & HEAVY).union(*(heavy.get(t, frozenset()) | {h for p in _parents(t)
                                                    for h in heavy.get(p, frozenset())} for t in s.project))
            line = lines[s.line - 1]
            comment = line.partition("#")[2].strip() if "#" in line else ""
            out.append(Deferred(f"{path.relative_to(root)}:{s.line}", ",".join(sorted(s.project | s.external)),
                                frozenset(loads - heavy[module]), comment))
    return out


STDLIB = frozenset(sys.stdlib_module_names)
