"""The feature tables of the local offline store: each view's tiles, the partitions
materialized, and each partition's figures, written in one DuckDB transaction.

Why here and not in ``features/``: this is the store's own SQL (how a day is replaced
atomically), which the local store runs; with it in ``features/tiles.py`` the store and the
tiles imported each other. ``features/`` computes tiles and reads them back through these
names.
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

import duckdb
import pyarrow as pa
from sqlglot import exp

from pantry.offline.atomic import atomically

if TYPE_CHECKING:
    from pantry.compile.view_plan import ViewPlan

FEATURES_SCHEMA = "features"
PARTITIONS_TABLE = f"{FEATURES_SCHEMA}.pantry_partitions"
STATS_TABLE = f"{FEATURES_SCHEMA}.pantry_feature_stats"


def q(name: str) -> str:
    """A quoted identifier, safe for any user-chosen name."""
    return exp.to_identifier(name, quoted=True).sql("duckdb")


def tile_table(view: str) -> str:
    return f"{FEATURES_SCHEMA}.{q(view)}"


def write_tiles(
    con: duckdb.DuckDBPyConnection,
    plan: ViewPlan,
    tiles: pa.Table | pa.RecordBatchReader,
    lo: date,
    hi: date,
    start: date,
    end: date,
) -> int:
    """Replace tiles of days ``lo..hi`` and mark partitions ``start..end`` materialized, atomically."""
    table = tile_table(plan.view.name)
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {FEATURES_SCHEMA}")
    con.execute(f"CREATE TABLE IF NOT EXISTS {PARTITIONS_TABLE} (view VARCHAR, day DATE, materialized_at TIMESTAMPTZ)")
    shape = tiles.schema.empty_table()  # a stream is read once: the table's shape comes from its schema
    con.register("__pantry_tiles_shape", shape)
    try:
        with atomically(con, "__pantry_tiles", tiles):
            con.execute(f"CREATE TABLE IF NOT EXISTS {table} AS SELECT * FROM __pantry_tiles_shape")
            existing = [r[0] for r in con.execute(f"DESCRIBE {table}").fetchall()]
            if existing != shape.column_names:
                con.execute(f"DROP TABLE {table}")  # the view's shape changed: its tiles are rebuilt from here
                con.execute(f"CREATE TABLE {table} AS SELECT * FROM __pantry_tiles_shape")
                con.execute(f"DELETE FROM {PARTITIONS_TABLE} WHERE view = ?", [plan.view.name])
            con.execute(f"DELETE FROM {table} WHERE __day BETWEEN ? AND ?", [lo, hi])
            inserted = int(con.execute(f"INSERT INTO {table} SELECT * FROM __pantry_tiles").fetchall()[0][0])
            con.execute(
                f"DELETE FROM {PARTITIONS_TABLE} WHERE view = ? AND day BETWEEN ? AND ?", [plan.view.name, start, end]
            )
            con.execute(
                f"INSERT INTO {PARTITIONS_TABLE} SELECT ?, CAST(range AS DATE), now() FROM range(?::DATE, ?::DATE + 1, INTERVAL 1 DAY)",
                [plan.view.name, start, end],
            )
    finally:
        con.unregister("__pantry_tiles_shape")
    return inserted


def write_stats(
    con: duckdb.DuckDBPyConnection, view: str, day: date, stats: dict[str, dict[str, float | int | None]]
) -> None:
    con.execute("CREATE SCHEMA IF NOT EXISTS features")
    con.execute(
        f"CREATE TABLE IF NOT EXISTS {STATS_TABLE} (view VARCHAR, feature VARCHAR, day DATE, rows BIGINT, entities_present BIGINT, "
        "null_rate DOUBLE, mean DOUBLE, min DOUBLE, max DOUBLE, distinct_count BIGINT, recorded_at TIMESTAMPTZ)"
    )
    for feature, s in stats.items():
        con.execute(
            f"INSERT INTO {STATS_TABLE} VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, now())",
            [
                view,
                feature,
                day,
                s["rows"],
                s["entities_present"],
                s["null_rate"],
                s["mean"],
                s["min"],
                s["max"],
                s["distinct"],
            ],
        )
