"""The layers import downward: no two modules import each other, directly or around a
circle, counting the imports inside functions (which hide circles from Python itself).

Walks the source with ``ast``, so nothing is imported to check it. The circles this
found (compile/fused <-> compile/query, api/cli <-> demo/run, features/tiles <-> the local
offline store) were broken by leaf modules: ``compile/sql.py``, ``api/tables.py``,
``offline/feature_tables.py``, and ``pantry_dagster/keys.py`` for the sensors.
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("pantry", "pantry_dagster")
KNOWN: list[set[str]] = []  # none left; a circle added on purpose would be listed here, with its reason


def _modules() -> dict[str, Path]:
    out = {}
    for package in PACKAGES:
        for path in (REPO / package).rglob("*.py"):
            name = ".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")
            out[name] = path
    return out


def _imports(modules: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> the modules of ours it imports, anywhere in its source."""

    def ours(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {m: set() for m in modules}
    for module, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text())):
            targets: list[str] = []
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            for target in targets:
                found = ours(target)
                if found is not None and found != module and not module.startswith(found + "."):
                    graph[module].add(found)
    return graph


def _circles(graph: dict[str, set[str]]) -> list[set[str]]:
    """Strongly connected components of more than one module (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[set[str]] = []
    counter = 0
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1:
                    out.append(component)
    return out


def test_the_walk_finds_a_circle_it_is_shown() -> None:
    """The detector itself, on a made-up graph: a -> b -> c -> a is one circle, d is not in it."""
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set()}
    assert _circles(graph) == [{"a", "b", "c"}]


def test_no_module_imports_another_that_imports_it_back() -> None:
    circles = _circles(_imports(_modules()))
    new = [sorted(c) for c in circles if c not in KNOWN]
    assert not new, f"import circles: {new}; move what both need into a module below them"


def test_pantry_has_no_dagster_and_sensors_do_not_import_assets() -> None:
    graph = _imports(_modules())
    for module, path in _modules().items():
        if module.startswith("pantry.") or module == "pantry":
            text = path.read_text()
            assert "import dagster" not in text and "from dagster" not in text, module
    sideways = {m: sorted(t for t in ts if t.startswith("pantry_dagster.assets")) for m, ts in graph.items()}
    assert not any(v for m, v in sideways.items() if m.startswith("pantry_dagster.sensors")), sideways
