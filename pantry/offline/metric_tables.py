"""Metric partitions in the offline store: computed at day grain, replaced atomically.

Why delete-and-insert in one transaction: a re-materialized day must replace the old
one completely or not at all. DuckDB's transactions give exactly that, so a failed run
leaves the previous version readable and no partial partition behind.
"""

from __future__ import annotations

import hashlib
from datetime import date

import duckdb
import pandas as pd

from pantry.compile.context import QueryRequest
from pantry.compile.render import compile_sql
from pantry.compile.sql import DAY
from pantry.errors import PantryError
from pantry.offline.atomic import atomically
from pantry.spec.model import Catalog, Metric

METRICS_SCHEMA = "metrics"
LOG_TABLE = "metrics.pantry_materializations"


def day_request(metric: Metric, start: date | None = None, end: date | None = None) -> QueryRequest:
    """The query that defines a metric's stored table: day grain, declared dimensions."""
    return QueryRequest(
        metrics=(metric.name,), group_by=(DAY, *metric.dimensions), start_time=start, end_time=end, whole_days=True
    )


def metric_sql(catalog: Catalog, metric: Metric) -> str:
    return compile_sql(catalog, day_request(metric), "duckdb", pretty=True)


def code_version(catalog: Catalog, metric: Metric) -> str:
    """A hash of the compiled definition: it changes exactly when the numbers could."""
    return hashlib.sha256(metric_sql(catalog, metric).encode()).hexdigest()[:16]


def compute_days(
    con: duckdb.DuckDBPyConnection, catalog: Catalog, metric: Metric, start: date, end: date
) -> pd.DataFrame:
    """The metric's rows for days ``start..end`` (inclusive), on a connection from ``sources.connect``."""
    frame = run_frame(con, compile_sql(catalog, day_request(metric, start, end), "duckdb", pretty=False))
    frame[DAY] = pd.to_datetime(frame[DAY]).dt.date
    return frame


def run_frame(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> pd.DataFrame:
    """Run SQL to a DataFrame; DuckDB's HUGEINT sums come back as integers, as MetricFlow returns them."""
    result = con.execute(sql, params or [])
    types = [str(d[1]).upper() for d in con.description or []]
    frame = result.df()
    for name, kind in zip(frame.columns, types):
        if kind in ("HUGEINT", "NUMBER", "BIGINT", "INTEGER") or (kind.startswith("DECIMAL") and kind.endswith(",0)")):
            frame[name] = frame[name].astype("Int64")
    return frame


def table_name(metric_name: str) -> str:
    return f'{METRICS_SCHEMA}."{metric_name}"'


def replace_days(con: duckdb.DuckDBPyConnection, metric_name: str, frame: pd.DataFrame, start: date, end: date) -> int:
    """Replace days ``start..end`` of the metric's table with ``frame``, atomically."""
    target = table_name(metric_name)
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {METRICS_SCHEMA}")
    with atomically(con, "__pantry_new_days", frame):
        con.execute(f"CREATE TABLE IF NOT EXISTS {target} AS SELECT * FROM __pantry_new_days LIMIT 0")
        existing = [r[0] for r in con.execute(f"DESCRIBE {target}").fetchall()]
        if existing != list(frame.columns):
            raise PantryError(
                f"stored table {target} has columns {existing}, the definition now gives {list(frame.columns)}",
                definition=f"metric '{metric_name}'",
                field="dimensions",
                hint=f"the definition changed shape; drop the old table with DROP TABLE {target} and backfill",
            )
        con.execute(f'DELETE FROM {target} WHERE "{DAY}" BETWEEN ? AND ?', [start, end])
        con.execute(f"INSERT INTO {target} SELECT * FROM __pantry_new_days")
        con.execute(
            f"CREATE TABLE IF NOT EXISTS {LOG_TABLE} (asset VARCHAR, partition_start DATE, partition_end DATE, "
            "rows BIGINT, materialized_at TIMESTAMPTZ)"
        )
        con.execute(
            f"INSERT INTO {LOG_TABLE} VALUES (?, ?, ?, ?, now())", [f"metrics/{metric_name}", start, end, len(frame)]
        )
    return len(frame)


def read_days(
    con: duckdb.DuckDBPyConnection,
    metric_name: str,
    start: date | None = None,
    end: date | None = None,
    prefix: str = "",
) -> pd.DataFrame:
    """Stored days of a metric (``prefix`` ``offline.`` when the store is attached so)."""
    sql = f"SELECT * FROM {prefix}{table_name(metric_name)}"
    params: list[date] = []
    if start is not None and end is not None:
        sql += f' WHERE "{DAY}" BETWEEN ? AND ?'
        params = [start, end]
    frame = run_frame(con, sql + " ORDER BY ALL", params)
    frame[DAY] = pd.to_datetime(frame[DAY]).dt.date
    return frame


def last_materializations(con: duckdb.DuckDBPyConnection, prefix: str = "") -> dict[str, dict[str, object]]:
    """Asset -> latest materialization time and the day range stored, from the log table
    (``prefix`` ``offline.`` when the store is attached under that name)."""
    exists = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE database_name = coalesce(nullif(?, ''), current_database()) "
        "AND schema_name = ? AND table_name = 'pantry_materializations'",
        [prefix.rstrip("."), METRICS_SCHEMA],
    ).fetchall()[0][0]
    if not exists:
        return {}
    rows = con.execute(
        f"SELECT asset, max(materialized_at), min(partition_start), max(partition_end) FROM {prefix}{LOG_TABLE} GROUP BY asset"
    ).fetchall()
    return {r[0]: {"materialized_at": r[1], "first_day": r[2], "last_day": r[3]} for r in rows}
