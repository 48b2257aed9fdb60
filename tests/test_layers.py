"""The import graph of the packages, read with ``ast`` (every import, module-level or inside a
function): it follows the floors of the README's design section and has no cycle.

    common -> estimators -> tinyrlvr -> experiments -> backends -> orchestrator | analysis | cluster -> CLI

(the CLI is ``orchestrator.cli`` and ``orchestrator.commands``; orchestrator, analysis and cluster
share a floor and never import each other). A module may import its own folder and any floor below
it, never one above or a neighbour on its own floor; the same holds for the folders as a whole.
"""

from __future__ import annotations

from import_graph import PACKAGES, ROOT, graph

RANK = {"common": 0, "estimators": 1, "tinyrlvr": 2, "experiments": 3, "backends": 4,
        "orchestrator": 5, "analysis": 5, "cluster": 5, "cli": 6}


def layer(module: str) -> str:
    if module == "orchestrator.cli" or module.startswith("orchestrator.commands"):
        return "cli"
    return module.split(".")[0]


def upward_imports(edges: dict[str, set[str]]) -> list[str]:
    bad = []
    for module, targets in sorted(edges.items()):
        for target in sorted(targets):
            src, dst = layer(module), layer(target)
            same_rank_other = RANK[src] == RANK[dst] and src != dst  # orchestrator, analysis, cluster
            if RANK[dst] > RANK[src] or same_rank_other:
                bad.append(f"{module} ({src}) imports {target} ({dst})")
    return bad


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected component with more than one module (Tarjan)."""
    index, low, stack, on_stack, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def test_no_import_points_up_a_layer():
    assert upward_imports(graph()) == []


def folder_edges(edges: dict[str, set[str]]) -> dict[str, set[str]]:
    """The graph between top-level folders (the CLI counted as the orchestrator folder it lives in)."""
    out: dict[str, set[str]] = {}
    for module, targets in edges.items():
        out.setdefault(module.split(".")[0], set()).update(t.split(".")[0] for t in targets)
    return out


def test_no_folder_imports_a_folder_above_or_beside_it():
    """Folder by folder (the CLI excepted, which may import every folder): only floors below."""
    edges = {m: t for m, t in graph().items() if layer(m) != "cli"}
    bad = [f"{src} imports {dst}" for src, targets in sorted(folder_edges(edges).items())
           for dst in sorted(targets) if dst != src and RANK[dst] >= RANK[src]]
    assert bad == []


def test_analysis_and_cluster_import_nothing_from_the_orchestrator():
    edges = folder_edges(graph())
    assert "orchestrator" not in edges["analysis"] | edges["cluster"]


def test_the_import_graph_has_no_cycle():
    assert cycles(graph()) == []


PLANTED = {  # an upward import each, and how the check must name it
    "cluster/extra.py": ("from orchestrator.cli import main\n", "cluster.extra (cluster) imports orchestrator.cli (cli)"),
    "analysis/extra2.py": ("from orchestrator import tracking\n",
                           "analysis.extra2 (analysis) imports orchestrator.tracking (orchestrator)"),
    "common/extra.py": ("import estimators.registry\n", "common.extra (common) imports estimators.registry (estimators)"),
    "analysis/extra.py": ("import cluster.submit\n", "analysis.extra (analysis) imports cluster.submit (cluster)"),
    "estimators/extra.py": ("def f():\n    from experiments import plan\n",
                            "estimators.extra (estimators) imports experiments.plan (experiments)"),
}


def test_the_check_catches_an_upward_import(tmp_path):
    """The same check on a copy of the tree with upward imports added fails, naming each."""
    for pkg in PACKAGES:
        for path in (ROOT / pkg).rglob("*.py"):
            target = tmp_path / path.relative_to(ROOT)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(path.read_text())
    for module, (line, _) in PLANTED.items():
        (tmp_path / module).write_text(line)
    found = upward_imports(graph(tmp_path))
    assert sorted(found) == sorted(expected for _, expected in PLANTED.values())


def test_the_check_catches_a_cycle():
    edges = {"orchestrator.a": {"orchestrator.b"}, "orchestrator.b": {"orchestrator.a"}, "orchestrator.c": set()}
    assert cycles(edges) == [["orchestrator.a", "orchestrator.b"]]
