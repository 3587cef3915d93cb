"""A feature view's partitions computed and kept in the engine, and training reads there.

Why the portable form and not tiles: tiles are DuckDB's (lists, ``ARG_MAX_NULL``, ASOF
joins). In a warehouse a partition is the values at its stamp, plain aggregates over the
rows of ``[s - W, s)`` (``features/portable.py``): each day is one ``INSERT ... SELECT``
inside the engine, so no source row and no value passes through Pantry.

A training read uploads the entity frame (key, timestamp, input order) as a temporary
table and joins it there, the rules of docs/features.md restated in SQL: the latest
materialized stamp at or before each timestamp (from the log of materialized ranges, so a
day with no present entity still counts), null past the view's ttl, null for an entity
absent at that stamp. Only the answer comes back, as Arrow, in input order.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pandas as pd

from pantry.compile.render import checked_text
from pantry.compile.view_plan import ViewPlan, stamp_of
from pantry.engines.base import Engine
from pantry.engines.frames import arrow_frame
from pantry.engines.names import literal, quoted
from pantry.engines.relations import for_engine
from pantry.features.portable import dialect_tree
from pantry.features.reads import TIMESTAMP, query_frame
from pantry.spec.model import Catalog

VIEWS_SCHEMA = "pantry_features"  # the engine's schema of view partitions
DAY = "__day"
LOG = "pantry_materializations"  # the engine's log of writes, beside the tables


def asset(view: str) -> str:
    """A view's name in the engine's log of writes."""
    return f"views/{view}"


def materialize_view(engine: Engine, catalog: Catalog, plan: ViewPlan, start: date, end: date) -> int:
    """Partitions ``start..end`` of the view, computed and replaced in the engine in one transaction."""
    dialect = engine.dialect
    days = [start + timedelta(days=i) for i in range((end - start).days + 1)]
    selects = {d: checked_text(for_engine(dialect_tree(plan, d, dialect), catalog, dialect), dialect) for d in days}
    return engine.replace_days_from(
        VIEWS_SCHEMA, plan.view.name, DAY, selects, asset(plan.view.name), index=(plan.key, TIMESTAMP)
    )


def table_of(plan: ViewPlan) -> str:
    return f"{quoted(VIEWS_SCHEMA)}.{quoted(plan.view.name)}"


def materialized_days(engine: Engine, view: str) -> list[date]:
    """The view's materialized partitions, oldest first, from the engine's log of writes."""
    return engine.materialized(VIEWS_SCHEMA, asset(view))


def stamps_sql(days: list[date]) -> str:
    """The stamps of partitions ``days`` as SQL timestamps (naive UTC, as the table keeps them)."""
    return ", ".join(f"TIMESTAMP '{stamp_of(d).strftime('%Y-%m-%d %H:%M:%S')}'" for d in days)


def present_entities(engine: Engine, plan: ViewPlan, stamps: list[datetime]) -> pd.DataFrame:
    """``(__key, event_timestamp)`` of every entity present at ``stamps`` (each a partition's
    stamp): the spine of a training read without an entity frame, as ``reads.present_entities``."""
    if not stamps:
        return pd.DataFrame({"__key": [], TIMESTAMP: []})
    days = [s.date() - timedelta(days=1) for s in stamps]
    return engine.run(  # as the embedded spine: Arrow's own pandas types, not arrow_frame's nullable ones
        f"SELECT {quoted(plan.key)} AS __key, {TIMESTAMP} FROM {table_of(plan)} "
        f"WHERE {TIMESTAMP} IN ({stamps_sql(days)}) ORDER BY {TIMESTAMP}, 1"
    ).to_pandas()


def read_view(
    engine: Engine, plan: ViewPlan, keys: pd.Series, timestamps: pd.Series, names: list[str], materialized: bool
) -> pd.DataFrame:
    """Feature values for rows ``(keys[i], timestamps[i])`` (naive UTC), in input order;
    all null when nothing of the view is ``materialized`` (its table is not there yet)."""
    if not materialized:
        return pd.DataFrame({n: pd.Series([None] * len(keys), dtype=object) for n in names})
    rows = query_frame(plan, keys, timestamps)
    ttl = plan.view.ttl
    fresh = f" AND l.__ts - l.__stamp <= INTERVAL '{ttl.count} {ttl.unit}'" if ttl is not None else ""
    name = literal(asset(plan.view.name))
    sql = f"""
    WITH days AS MATERIALIZED (
        SELECT DISTINCT CAST(CAST(d AS DATE) + 1 AS TIMESTAMP) AS __stamp
        FROM {quoted(VIEWS_SCHEMA)}.{LOG} AS m,
             generate_series(m.partition_start, m.partition_end, INTERVAL '1 day') AS g(d)
        WHERE m.asset = {name}
    ), located AS (
        SELECT q.__qid, q.__key, q.__ts, (SELECT MAX(__stamp) FROM days WHERE __stamp <= q.__ts) AS __stamp
        FROM __pantry_q AS q
    )
    SELECT {", ".join(f"v.{quoted(n)}" for n in names)}
    FROM located AS l
    LEFT JOIN {table_of(plan)} AS v
      ON v.{quoted(plan.key)} = l.__key AND v.{TIMESTAMP} = l.__stamp{fresh}
    ORDER BY l.__qid
    """
    return arrow_frame(engine.run_with("__pantry_q", rows, sql))
