"""Request in, SQL text out: the one entry point the Store and the benchmarks use.

Why the garbage collector is paused: a query of 80 metrics builds a tree of ~100k
sqlglot nodes with parent links. Python's cyclic collector then walks the young objects
again and again while the tree grows, which doubled compile time and made it jumpy in
the benchmark. The tree is short-lived, so collection waits until it is rendered.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

from pantry.compile.dialects import to_sql
from pantry.compile.query import Compiler, QueryRequest
from pantry.spec.model import Catalog


@contextmanager
def paused_gc() -> Iterator[None]:
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def compile_sql(catalog: Catalog, request: QueryRequest, dialect: str = "duckdb", pretty: bool = True) -> str:
    with paused_gc():
        return to_sql(Compiler(catalog).compile(request), dialect, pretty=pretty)
