"""Names and texts that reach an engine's SQL: quoted or escaped by sqlglot, never pasted.

Why one module: a schema, a view's or a feature's name, an asset in the log of writes all
come from definitions; the engine package and the feature partitions kept in an engine
both write SQL around them, and each must quote them the same way.
"""

from __future__ import annotations

from sqlglot import exp


def quoted(name: str, dialect: str = "postgres") -> str:
    """An identifier (a schema, a table, a column), quoted for ``dialect``."""
    return exp.to_identifier(name, quoted=True).sql(dialect)


def literal(value: str, dialect: str = "postgres") -> str:
    """A string literal, escaped for ``dialect``."""
    return exp.Literal.string(value).sql(dialect)
