"""Per-feature statistics of one stamp, for Dagster's plots and the catalog.

Why stored: the catalog shows the latest figures without recomputing a read, and the
Dagster UI plots each materialization's numbers over time.
"""

from __future__ import annotations

from datetime import date

import duckdb
import pandas as pd

STATS_TABLE = "features.pantry_feature_stats"


def feature_stats(values: pd.DataFrame, name: str) -> dict[str, float | int | None]:
    column = values[name] if name in values else pd.Series([], dtype=float)
    numeric = pd.to_numeric(column, errors="coerce") if column.dtype != object else pd.Series([], dtype=float)
    present = len(column)
    nulls = int(column.isna().sum())
    return {
        "rows": present,
        "entities_present": present,
        "null_rate": (nulls / present) if present else None,
        "mean": float(numeric.mean()) if numeric.notna().any() else None,
        "min": float(numeric.min()) if numeric.notna().any() else None,
        "max": float(numeric.max()) if numeric.notna().any() else None,
        "distinct": int(column.nunique(dropna=True)),
    }


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


def latest_stats(con: duckdb.DuckDBPyConnection, prefix: str = "") -> dict[tuple[str, str], dict[str, object]]:
    table = f"{prefix}{STATS_TABLE}"
    try:
        rows = con.execute(
            f"SELECT view, feature, day, rows, entities_present, null_rate, mean, min, max, distinct_count, recorded_at "
            f"FROM {table} QUALIFY row_number() OVER (PARTITION BY view, feature ORDER BY recorded_at DESC) = 1"
        ).fetchall()
    except duckdb.CatalogException:
        return {}
    keys = ["day", "rows", "entities_present", "null_rate", "mean", "min", "max", "distinct", "recorded_at"]
    return {(r[0], r[1]): dict(zip(keys, r[2:])) for r in rows}
