"""Render a compiled tree in one SQL dialect, fixing the traps sqlglot leaves open.

Why a module of its own: a transpiled query that runs but means something else is the
worst kind of bug. The traps we know, each covered by a golden test:

- weeks start on Monday everywhere. BigQuery's ``DATE_TRUNC(d, WEEK)`` starts on Sunday,
  so it gets ``WEEK(MONDAY)``. Snowflake's depends on the ``WEEK_START`` session
  parameter (default 0: Monday), which we state in the SQL as a comment;
- date-add with an interval: ``DATEADD(DAY, n, d)`` in Snowflake and
  ``DATE_ADD(d, INTERVAL n DAY)`` in BigQuery (sqlglot renders these from ``DateAdd``);
- BigQuery has no exact MEDIAN or PERCENTILE_CONT aggregate: a clear error, unless the
  measure asks for ``use_approximate_percentile``, which renders APPROX_QUANTILES;
- Spark renders PERCENTILE_CONT as the approximate PERCENTILE_APPROX; we use Spark's
  exact ``PERCENTILE`` instead;
- PostgreSQL runs a FULL JOIN only on equalities it can hash or merge, and refuses
  ``IS NOT DISTINCT FROM`` (how metrics over the same group-bys are joined, a null key
  matching a null key). There it becomes two equalities with the same meaning: the keys as
  text with nulls as '', and whether each is null (so a null never matches an empty text).
  BigQuery documents the same rule for FULL JOIN and gets the same rewrite (not run here).
"""

from __future__ import annotations

from sqlglot import exp

from pantry.errors import PantryError

DIALECTS = ("duckdb", "postgres", "snowflake", "bigquery", "spark")
WEEK_NOTE = "-- weeks start on Monday: requires WEEK_START = 0 or 1 (Snowflake's default is 0)\n"


def _bigquery(node: exp.Expression) -> exp.Expression:
    if isinstance(node, exp.Join):  # BigQuery's FULL JOIN asks for equalities too (not run here: no account)
        return _postgres(node)
    if isinstance(node, exp.DateTrunc) and node.text("unit").upper() == "WEEK":
        return exp.DateTrunc(this=node.this, unit=exp.WeekStart(this=exp.var("MONDAY")))
    if isinstance(node, exp.WithinGroup) and isinstance(node.this, (exp.PercentileCont, exp.PercentileDisc)):
        raise PantryError(
            "BigQuery has no exact median or percentile aggregate",
            field="agg",
            hint="set 'agg_params: {use_approximate_percentile: true}' on the measure to use APPROX_QUANTILES",
        )
    if isinstance(node, exp.ApproxQuantile):
        quantile = float(node.args["quantile"].this)
        return exp.Bracket(
            this=exp.Anonymous(this="APPROX_QUANTILES", expressions=[node.this, exp.Literal.number(100)]),
            expressions=[exp.Anonymous(this="OFFSET", expressions=[exp.Literal.number(round(quantile * 100))])],
        )
    return node


def _null_safe_equal(left: exp.Expression, right: exp.Expression) -> exp.Expression:
    def text(side: exp.Expression) -> exp.Expression:
        return exp.Coalesce(this=exp.cast(side.copy(), "TEXT"), expressions=[exp.Literal.string("")])

    def missing(side: exp.Expression) -> exp.Expression:
        return exp.Paren(this=exp.Is(this=side.copy(), expression=exp.Null()))

    return exp.and_(
        exp.EQ(this=text(left), expression=text(right)), exp.EQ(this=missing(left), expression=missing(right))
    )


def _postgres(node: exp.Expression) -> exp.Expression:
    if isinstance(node, exp.Join) and node.side == "FULL" and node.args.get("on") is not None:
        on = node.args["on"].transform(
            lambda n: _null_safe_equal(n.this, n.expression) if isinstance(n, exp.NullSafeEQ) else n
        )
        node.set("on", on)
    return node


def _spark(node: exp.Expression) -> exp.Expression:
    if isinstance(node, exp.WithinGroup) and isinstance(node.this, exp.PercentileCont):
        value = node.expression.expressions[0].this
        return exp.Anonymous(this="PERCENTILE", expressions=[value, node.this.this])
    return node


def to_sql(tree: exp.Expression, dialect: str = "duckdb", pretty: bool = True) -> str:
    """The tree as SQL text in ``dialect``."""
    dialect = dialect.lower()
    if dialect not in DIALECTS:
        raise PantryError(f"unknown dialect '{dialect}'", field="dialect", hint=f"use one of {', '.join(DIALECTS)}")
    if dialect == "bigquery":
        tree = tree.transform(_bigquery)  # transform copies; the caller's tree is untouched
    elif dialect == "spark":
        tree = tree.transform(_spark)
    elif dialect == "postgres":
        tree = tree.transform(_postgres)
    sql = tree.sql(dialect=dialect, pretty=pretty)
    if dialect == "snowflake" and "DATE_TRUNC('WEEK'" in sql:
        sql = WEEK_NOTE + sql
    return sql
