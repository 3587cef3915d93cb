"""Each module imports only its own layer or the layers below it (issue 27 part 5).

The layers, bottom to top, are drawn in ``docs/layers.md``; this list is that picture, and
the walk is ``test_import_cycles``'s (every import, inside functions and under
TYPE_CHECKING too). A module belongs to the layer of its longest listed prefix, so a
package may lend one module to a lower layer, named here with its reason.
"""

from __future__ import annotations

from tests.test_import_cycles import _imports, _modules

LAYERS: list[tuple[str, list[str]]] = [
    ("base", ["pantry.errors", "pantry.processes", "pantry.settings"]),
    ("language", ["pantry.spec"]),
    ("compiler", ["pantry.compile"]),
    # the verdict record is storage (SQLite in PANTRY_HOME): the Store's push reads it to refuse a failed partition
    # engines: a warehouse that holds the sources and runs the compiled SQL (issue 28)
    ("storage", ["pantry.offline", "pantry.online", "pantry.engines", "pantry.monitor.verdicts"]),
    ("features and bound checks", ["pantry.features", "pantry.verify"]),
    ("ingestion", ["pantry.ingest"]),
    (
        "the Store",
        [
            "pantry.api.store",
            "pantry.api.catalog",
            "pantry.api.facts",
            "pantry.api.limits",
            "pantry.api.query_pool",
            "pantry.api.query_worker",
        ],
    ),
    ("monitoring", ["pantry.monitor"]),
    ("faces", ["pantry", "pantry.api", "pantry.demo", "pantry.scaffold"]),
    ("Dagster resources", ["pantry_dagster.keys", "pantry_dagster.resources"]),
    ("Dagster sensors", ["pantry_dagster.sensors"]),
    ("Dagster assets", ["pantry_dagster.assets"]),
    ("Dagster definitions", ["pantry_dagster"]),
]


def layer_of(module: str) -> int:
    best: tuple[int, int] | None = None
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and (best is None or len(prefix) > best[1]):
                best = (index, len(prefix))
    assert best is not None, f"{module} is in no layer: add it to LAYERS and to docs/layers.md"
    return best[0]


def upward(graph: dict[str, set[str]]) -> list[str]:
    return [
        f"{module} ({LAYERS[layer_of(module)][0]}) imports {target} ({LAYERS[layer_of(target)][0]})"
        for module, targets in sorted(graph.items())
        for target in sorted(targets)
        if layer_of(target) > layer_of(module)
    ]


def test_the_check_sees_an_upward_import() -> None:
    """On a made-up graph: the language importing the compiler is caught, the reverse is not."""
    graph = {"pantry.spec.load": {"pantry.compile.query"}, "pantry.compile.query": {"pantry.spec.model"}}
    assert upward(graph) == ["pantry.spec.load (language) imports pantry.compile.query (compiler)"]


def test_every_module_imports_only_downward() -> None:
    found = upward(_imports(_modules()))
    assert not found, "imports that run upward (move what both need into the lower layer):\n" + "\n".join(found)


def test_the_picture_in_the_docs_names_every_layer() -> None:
    from pathlib import Path

    picture = (Path(__file__).resolve().parents[1] / "docs" / "layers.md").read_text()
    for name, prefixes in LAYERS:
        assert name in picture, name
        for prefix in prefixes:
            shown = prefix.replace("pantry_dagster.", "").replace("pantry.", "")
            assert shown in picture, (name, prefix)


def test_only_the_storage_layer_talks_to_redis_and_s3() -> None:
    """The Store, the faces, the monitors and Dagster reach Redis and S3 through the online
    and offline store interfaces (``online/store.py``, ``offline/store.py``), the seam where
    another engine's storage plugs in; none of them imports a client library itself."""
    import ast

    storage = LAYERS.index(next(layer for layer in LAYERS if layer[0] == "storage"))
    clients = ("redis", "boto3", "botocore")
    found = []
    for module, path in _modules().items():
        if layer_of(module) <= storage:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            found += [f"{module} imports {n}" for n in names if n.split(".")[0] in clients]
    assert not found, found
