"""Column lineage, derived by sqlglot from the very SQL that runs.

Why from the compiled SQL and not from the YAML: the SQL is what produces the numbers,
so lineage read off it cannot drift from the truth (joins, filters and offsets included).
"""

from __future__ import annotations

from sqlglot import exp
from sqlglot.lineage import lineage

from pantry.compile.dialects import to_sql
from pantry.compile.sql import SOURCE_SCHEMA


def read_columns(tree: exp.Expression) -> set[tuple[str, str]]:
    """Every ``(semantic model, column)`` the query reads anywhere: in a select, a join, a
    filter or a window. Our trees bind every column to a source alias, so no schema is needed."""
    aliases = {t.alias_or_name: t.name for t in tree.find_all(exp.Table) if t.db == SOURCE_SCHEMA}
    return {(aliases[c.table], c.name) for c in tree.find_all(exp.Column) if c.table in aliases}


def column_lineage(tree: exp.Select) -> dict[str, list[tuple[str, str]]]:
    """Output column -> sorted ``(semantic model, source column)`` pairs it reads.

    A column whose value reads no source column (``count`` of ``1``, or a day from the time
    spine under a cumulative window) still depends on the rows the query keeps and buckets:
    it gets every source column the query reads, the agg-time column among them."""
    sql = to_sql(tree, "duckdb", pretty=False)
    result: dict[str, list[tuple[str, str]]] = {}
    for column in tree.named_selects:
        node = lineage(column, sql, schema=None, dialect="duckdb")
        found: set[tuple[str, str]] = set()
        for item in node.walk():
            if item.downstream or not isinstance(item.source, exp.Table):
                continue
            if item.source.db == SOURCE_SCHEMA:
                found.add((item.source.name, item.name.split(".")[-1]))
        result[column] = sorted(found)
    if any(not deps for deps in result.values()):
        read = sorted(read_columns(tree))
        result = {column: deps or read for column, deps in result.items()}
    return result
