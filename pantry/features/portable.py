"""One partition of a feature view as portable SQL: the values at its stamp, from the sources.

Why a second form: the stored form (tiles, ``tiles.py``) and its reader lean on DuckDB
(lists, ``ARG_MAX_NULL``, ASOF joins, ``GROUP BY ALL``). A warehouse or Spark does not
need tiles to compute one partition: the values at stamp ``s`` are plain aggregates over
the rows in ``[s - W, s)``, each feature filtered to its own ``[s - window, s)``. This
module writes that query once, parses it as a sqlglot tree and renders it in any dialect;
the test runs the Spark rendering on pyspark and compares it with DuckDB's training read,
value by value. The semantics are docs/features.md's, restated:

- an entity with no row in ``[s - W, s)`` (in any model the view reads) is absent: no row;
- for a present entity, sum and count over an empty window are 0, other aggregations null;
- a dimension feature is the value on the latest row of its model in ``[s - W, s)``, ties
  broken by source order, nulls included (a null last value is the value).
"""

from __future__ import annotations

from datetime import date, timedelta

import sqlglot
from sqlglot import exp

from pantry.compile.dialects import to_sql
from pantry.compile.sql import SOURCE_SCHEMA, qualified
from pantry.compile.view_plan import PlannedFeature, ViewPlan, stamp_of
from pantry.errors import PantryError
from pantry.features.reads import TIMESTAMP
from pantry.features.tiles import q
from pantry.offline.sources import FILE_COLUMN, ROW_COLUMN
from pantry.spec.aggregations import adds_up, aggregation
from pantry.spec.model import SemanticModel

LAST_VALUE = "PANTRY_LAST_VALUE"  # rendered per dialect by ``_last_value``


def _whole_days(days: int, seconds: int) -> bool:
    """A window of whole days (``seconds`` 0 or the days'), not a streaming view's finer one."""
    return seconds in (0, days * 86400)


def _span(days: int, seconds: int) -> str:
    """A window as an interval: whole days, or seconds for a streaming view's finer windows."""
    return f"INTERVAL '{days}' DAY" if _whole_days(days, seconds) else f"INTERVAL '{seconds}' SECOND"


def _since(at: str, raw: str | None, stamp: str, days: int, seconds: int) -> str:
    """``at >= s - span``. With ``raw`` (the time column as the source has it) and a span of
    whole days, compared as dates: ``s`` is a midnight, so a moment is at or after midnight
    ``D`` exactly when its date is at or after ``D``, whatever the column's type. Why: Spark
    then compares a DATE column as it reads it, where casting every row to a timestamp
    first cost 15% of a backfill (bench/README.md)."""
    if raw is not None and _whole_days(days, seconds):
        return f"{raw} >= DATE '{stamp[:10]}' - INTERVAL '{days}' DAY"
    return f"{at} >= TIMESTAMP '{stamp}' - {_span(days, seconds)}"


def _before(at: str, raw: str | None, stamp: str) -> str:
    """``at < s``, as dates with ``raw`` (``_since``'s reason)."""
    return f"{raw} < DATE '{stamp[:10]}'" if raw is not None else f"{at} < TIMESTAMP '{stamp}'"


def _aggregate(planned: PlannedFeature, value: str, at: str, stamp: str, raw: str | None = None) -> str:
    """One feature's aggregate over its own window, inside the model's ``[s - W, s)`` rows."""
    agg = planned.agg
    if agg == "last":
        return f"{LAST_VALUE}({value}, {at}, m0.{q(FILE_COLUMN)}, m0.{q(ROW_COLUMN)})"
    inside = f"CASE WHEN {_since(at, raw, stamp, planned.days, planned.seconds)} THEN {value} END"
    found = aggregation(agg)
    assert found is not None, agg
    if not found.quantile:
        return found.duckdb.format(inside)
    measure = planned.measure
    assert measure is not None
    kind = "PERCENTILE_DISC" if measure.use_discrete_percentile else "PERCENTILE_CONT"
    p = measure.percentile if measure.percentile is not None else 0.5
    return f"{kind}({p}) WITHIN GROUP (ORDER BY {inside})"


def _model_values(plan: ViewPlan, model: SemanticModel, stamp: str, dates: bool = False) -> str:
    """One model's rows in ``[s - W, s)`` grouped by entity; ``dates``: windows of whole days
    compared as dates (``_since``)."""
    from pantry.features.tiles import model_time

    entity = model.entity(plan.view.entity)
    assert entity is not None
    key = qualified(entity.expr, "m0").sql("duckdb")
    column = qualified(model_time(plan, model).expr, "m0").sql("duckdb")
    at = f"CAST({column} AS TIMESTAMP)"
    raw = column if dates else None
    columns = [f"{key} AS __key"]
    for planned in plan.features:
        value = qualified(planned.value_expr, "m0").sql("duckdb")
        mine = planned.model.name == model.name
        columns.append(f"{_aggregate(planned, value, at, stamp, raw) if mine else 'NULL'} AS {q(planned.feature.name)}")
    return (
        f"SELECT {', '.join(columns)} FROM {SOURCE_SCHEMA}.{q(model.name)} AS m0 "
        f"WHERE {_since(at, raw, stamp, plan.window, plan.window_seconds)} AND {_before(at, raw, stamp)} "
        f"AND {key} IS NOT NULL GROUP BY {key}"
    )


def partition_tree(plan: ViewPlan, day: date, dates: bool = False) -> exp.Expression:
    """The view's values at ``stamp_of(day)`` for every present entity, as a sqlglot tree;
    ``dates`` for an engine that compares a time column with a date as dates (``_since``)."""
    scd = [m.name for m in plan.models if m.validity_window() is not None]
    if scd:
        raise PantryError(
            f"feature view '{plan.view.name}' reads the slowly changing model '{scd[0]}', which the portable "
            "(warehouse and Spark) form does not render yet",
            definition=f"feature view '{plan.view.name}'",
            hint="compute it on DuckDB, as Dagster's assets do",
        )
    stamp = stamp_of(day).replace(tzinfo=None).isoformat(sep=" ")
    union = " UNION ALL ".join(f"({_model_values(plan, m, stamp, dates)})" for m in plan.models)
    # one model's branch has one row per key already: grouping it again is a second hash
    # aggregate of every row of every day, which no engine removes (a year of TPC-H SF10 on
    # Spark: 153M rows aggregated twice). Several models' branches are merged by key: each is
    # null for the others' features, and MAX picks the one value.
    merged = len(plan.models) > 1
    outer = []
    for planned in plan.features:
        name = q(planned.feature.name)
        value = f"MAX(v.{name})" if merged else f"v.{name}"
        outer.append(f"COALESCE({value}, 0) AS {name}" if adds_up(planned.agg) else f"{value} AS {name}")
    sql = (
        f"SELECT v.__key AS {q(plan.key)}, TIMESTAMP '{stamp}' AS {TIMESTAMP}, {', '.join(outer)} "
        f"FROM ({union}) AS v {'GROUP BY v.__key ' if merged else ''}ORDER BY v.__key"
    )
    return sqlglot.parse_one(sql, read="duckdb")


def _last_value(dialect: str):  # noqa: ANN202 - a sqlglot transform
    """The value on the latest row, nulls kept: each engine spells "arg max, nulls included" differently."""

    def transform(node: exp.Expression) -> exp.Expression:
        if not (isinstance(node, exp.Anonymous) and node.name.upper() == LAST_VALUE):
            return node
        value, *order = node.expressions
        if dialect == "duckdb":
            return exp.Anonymous(this="ARG_MAX_NULL", expressions=[value, exp.Tuple(expressions=order)])
        if dialect == "spark":
            # MAX_BY keeps a null value; a struct orders field by field
            return exp.Anonymous(this="MAX_BY", expressions=[value, exp.Struct(expressions=order)])
        # Postgres, Snowflake, BigQuery: the first element of the values ordered latest first
        ordered = exp.Order(expressions=[exp.Ordered(this=o, desc=True) for o in order])
        agg = exp.ArrayAgg(this=exp.Order(this=value, expressions=ordered.expressions))
        if dialect == "postgres":  # 1-based: said so, or sqlglot counts from 0 and writes [2]
            return exp.Bracket(this=exp.Paren(this=agg), expressions=[exp.Literal.number(1)], offset=1)
        if dialect == "snowflake":
            return exp.Bracket(this=agg, expressions=[exp.Literal.number(0)])
        # BigQuery refuses null array elements: wrap the value in a struct, take its field
        wrapped = exp.ArrayAgg(
            this=exp.Limit(
                this=exp.Order(this=exp.Struct(expressions=[exp.alias_(value, "v")]), expressions=ordered.expressions),
                expression=exp.Literal.number(1),
            )
        )
        return exp.Dot(
            this=exp.Bracket(
                this=wrapped, expressions=[exp.Anonymous(this="OFFSET", expressions=[exp.Literal.number(0)])]
            ),
            expression=exp.to_identifier("v"),
        )

    return transform


def dialect_tree(plan: ViewPlan, day: date, dialect: str) -> exp.Expression:
    """``partition_tree`` with its latest values spelled for ``dialect`` (still reading ``src.<model>``)."""
    # Spark: dates compared as dates. Not elsewhere: DuckDB compares a TIMESTAMPTZ with a date
    # at the session's zone's midnight, not UTC's
    return partition_tree(plan, day, dates=dialect.lower() == "spark").transform(_last_value(dialect.lower()))


def partition_sql(plan: ViewPlan, day: date, dialect: str = "duckdb", pretty: bool = True) -> str:
    """``partition_tree`` rendered in ``dialect``; ``src.<model>`` names each source, as in metric SQL."""
    return to_sql(dialect_tree(plan, day, dialect), dialect, pretty=pretty)


def window_days(plan: ViewPlan, day: date) -> tuple[date, date]:
    """The source days partition ``day`` reads: ``day - W + 1 .. day``."""
    return day - timedelta(days=plan.window - 1), day
