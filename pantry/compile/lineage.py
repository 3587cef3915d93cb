"""Column lineage, derived by sqlglot from the very SQL that runs.

Why from the compiled SQL and not from the YAML: the SQL is what produces the numbers,
so lineage read off it cannot drift from the truth (joins, filters and offsets included).
"""

from __future__ import annotations

from sqlglot import exp
from sqlglot.lineage import lineage

from pantry.compile.dialects import to_sql
from pantry.compile.query import SOURCE_SCHEMA


def column_lineage(tree: exp.Select) -> dict[str, list[tuple[str, str]]]:
    """Output column -> sorted ``(semantic model, source column)`` pairs it reads."""
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
    return result
