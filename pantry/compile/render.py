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

from sqlglot import Dialect, exp
from sqlglot.tokens import TokenType

from pantry.compile.context import QueryRequest
from pantry.compile.dialects import WEEK_NOTE, to_sql
from pantry.compile.query import Compiler
from pantry.errors import PantryError
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


def compile_checked(catalog: Catalog, request: QueryRequest) -> str:
    """DuckDB SQL for a query that is about to run, checked as text against its tree."""
    with paused_gc():
        tree = Compiler(catalog).compile(request)
        return checked_text(tree, "duckdb")


def checked_text(tree: exp.Expression, dialect: str) -> str:
    """``tree`` as the text an engine runs, checked against the tree.

    Why a second look at the text: each ``where`` already reads back as the tree it was
    checked as (``where_guard.read_back``), but what the engine runs is the whole query's text.
    Tokenizing it (a few milliseconds, a tenth of a parse) and finding exactly one
    statement, no comment and as many SELECTs as the tree has, catches any rendering that
    smuggles a statement or a subquery in, whatever the trick.
    """
    sql = to_sql(tree, dialect, pretty=False)
    selects = sum(1 for node in tree.walk() if isinstance(node, exp.Select))
    tokens = Dialect.get_or_raise(dialect).tokenize(sql.removeprefix(WEEK_NOTE))  # the one comment we write
    seen = sum(1 for t in tokens if t.token_type == TokenType.SELECT)
    if seen != selects or any(t.token_type == TokenType.SEMICOLON or t.comments for t in tokens):
        raise PantryError(
            "the query's SQL does not match what was checked, and was not run",
            field="where",
            hint="simplify the where; if it is plain, report this as a bug",
        )
    return sql
