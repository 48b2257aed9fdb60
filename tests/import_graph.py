"""The package's import graph read with ``ast``, shared by tests/test_layers.py (every import: the floors
and no cycle) and tests/test_deferred_imports.py (module-level imports: what a function-level one spares).
"""

from __future__ import annotations

import ast
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
    typing_only: bool  # under ``if TYPE_CHECKING:``: an edge of the graph, never run


def _closest(name: str, known: set[str]) -> str:
    while name and name not in known:
        name = name.rpartition(".")[0]
    return name


def _is_type_checking(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def _walk(node: ast.AST, in_function: bool = False, typing_only: bool = False):
    """(statement, in_function, typing_only) for every import statement under ``node``."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.Import, ast.ImportFrom)):
            yield child, in_function, typing_only
        yield from _walk(child, in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)),
                         typing_only or _is_type_checking(child))


def statements(path: Path, known: set[str], root: Path) -> list[Import]:
    """Every import statement of ``path`` (``from a.b import c`` names a.b.c when that is a module)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    own = module_name(path, root)
    package = own if path.name == "__init__.py" else own.rpartition(".")[0]
    out = []
    for node, in_function, typing_only in _walk(tree):
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
        out.append(Import(node.lineno, frozenset(project - {"", own}), frozenset(external), in_function, typing_only))
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
    """Module -> the HEAVY packages that importing it loads: what its module-level imports reach,
    followed through (importing a.b.c runs a/__init__ and a/b/__init__ too)."""
    stmts = {m: [s for s in ss if not (s.in_function or s.typing_only)] for m, (_, ss) in all_statements(root).items()}
    edges = {m: {t for s in ss for name in s.project for t in (name, *_parents(name))} | set(_parents(m))
             for m, ss in stmts.items()}
    out = {}
    for module in stmts:
        seen, todo = {module}, [module]
        while todo:
            for target in edges.get(todo.pop(), ()):
                if target in stmts and target not in seen:
                    seen.add(target)
                    todo.append(target)
        out[module] = frozenset(h for m in seen for s in stmts[m] for h in s.external & HEAVY)
    return out


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
            loads = set(s.external & HEAVY).union(*(heavy.get(t, frozenset()) for t in s.project))
            line = lines[s.line - 1]
            comment = line.partition("#")[2].strip() if "#" in line else ""
            out.append(Deferred(f"{path.relative_to(root)}:{s.line}", ",".join(sorted(s.project | s.external)),
                                frozenset(loads - heavy[module]), comment))
    return out

