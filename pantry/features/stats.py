"""Per-feature statistics of one stamp, for Dagster's plots and the catalog.

Why stored: the catalog shows the latest figures without recomputing a read, and the
Dagster UI plots each materialization's numbers over time.
"""

from __future__ import annotations

import duckdb
import pandas as pd

from pantry.offline.feature_tables import STATS_TABLE


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
