"""A view's values at one partition's stamp, summarized in SQL: figures and a drift sample.

Why in SQL, one stamp at a time: the checks of a month of a 2M-customer view read every
value of every stamp into pandas at once (2M entities x 38 stamps x 25 features) and the
run grew to 23 GB and was killed. What the checks need is small: per feature the rows,
nulls, mean, min, max, distinct values and sum (the consistency check's total), and a
sample of values for the drift test. DuckDB computes the values of one stamp (the same
tiles and the same combine SQL as a training read), keeps them in a temporary table that
spills to disk past ``MEMORY_LIMIT``, and hands back only those. Memory then depends on
one stamp's entities at most, never on the number of partitions judged.

The sample is the entities whose key hashes below a cutoff, so about ``sample_rows`` of
them: the same entities every run and every day (a panel), which keeps a partition and its
reference comparable.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pandas as pd

from pantry.features.plan import ViewPlan
from pantry.features.reads import combine, run_read
from pantry.features.tiles import q, tile_table

MEMORY_LIMIT = "1GB"  # DuckDB's own limit for a stamp's values; past it, the table spills
HASH_SPACE = 1_000_003  # a prime: key hashes modulo it decide the sample
NUMERIC = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT")
NUMERIC += ("FLOAT", "DOUBLE", "REAL", "BOOLEAN")


@dataclass(frozen=True)
class StampSummary:
    """One partition's values at its stamp: figures per feature, and a sample of the values."""

    day: date
    figures: dict[str, dict[str, float | int | None]]
    sample: pd.DataFrame
    entities: int


def limit_memory(con: duckdb.DuckDBPyConnection, home: Path) -> None:
    """Cap the connection's DuckDB memory and let it spill under ``PANTRY_HOME/tmp``."""
    spill = Path(home) / "tmp"
    spill.mkdir(parents=True, exist_ok=True)
    con.execute(f"SET memory_limit = '{MEMORY_LIMIT}'")
    con.execute("SET temp_directory = ?", [str(spill)])  # a path, never spliced into SQL
    con.execute("SET preserve_insertion_order = false")


def summarize(
    con: duckdb.DuckDBPyConnection, plan: ViewPlan, day: date, names: list[str], sample_rows: int
) -> StampSummary:
    """Partition ``day`` of a daily view: its stamp's values per present entity, summarized.
    ``con`` has the offline store attached as ``offline``."""
    sday = day + timedelta(days=1)  # the stamp's date: values of the tiles in [sday - window, sday)
    planned = [plan.feature(n) for n in names]
    inside = {p.feature.name: f"t.__day >= DATE '{sday}' - {p.days}" for p in planned}
    combined = ", ".join(f"{combine(p, inside=inside[p.feature.name])} AS {q(p.feature.name)}" for p in planned)
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE __stamp_values AS
        SELECT t.__key, {combined}
        FROM offline.{tile_table(plan.view.name)} t
        WHERE t.__day >= DATE '{sday}' - {plan.window} AND t.__day < DATE '{sday}'
        GROUP BY t.__key
        HAVING SUM(t.__rows) > 0"""
    )
    try:
        types = {str(r[0]): str(r[1]).upper() for r in con.execute("DESCRIBE __stamp_values").fetchall()}
        aggregates = ["COUNT(*)"]
        for name in names:
            c = q(name)
            aggregates += [f"COUNT({c})", f"COUNT(DISTINCT {c})"]
            if types[name].split("(")[0] in NUMERIC or types[name].startswith("DECIMAL"):
                v = f"CAST({c} AS DOUBLE)"
                aggregates += [f"AVG({v})", f"MIN({v})", f"MAX({v})", f"SUM({v})"]
            else:
                aggregates += ["NULL", "NULL", "NULL", "NULL"]
        row = con.execute(f"SELECT {', '.join(aggregates)} FROM __stamp_values").fetchall()[0]
        entities = int(row[0])
        figures = {}
        for i, name in enumerate(names):
            present, distinct, mean, low, high, total = row[1 + 6 * i : 7 + 6 * i]
            figures[name] = {
                "rows": entities,
                "entities_present": entities,
                "null_rate": (entities - int(present)) / entities if entities else None,
                "mean": mean,
                "min": low,
                "max": high,
                "distinct": int(distinct),
                "sum": total,
            }
        cutoff = HASH_SPACE if entities <= sample_rows else math.ceil(sample_rows / entities * HASH_SPACE)
        columns = ", ".join(q(n) for n in names)
        sample = run_read(con, f"SELECT {columns} FROM __stamp_values WHERE hash(__key) % {HASH_SPACE} < {cutoff}")
    finally:
        con.execute("DROP TABLE IF EXISTS __stamp_values")
    return StampSummary(day, figures, sample, entities)


def frame_summary(day: date, values: pd.DataFrame, names: list[str], sample_rows: int) -> StampSummary:
    """The same summary from values already read (a streaming view's stamp, read as training
    reads it: its windows end inside the day, so the tiles alone do not give its values)."""
    from pantry.features.stats import feature_stats

    figures = {}
    for name in names:
        figure = dict(feature_stats(values, name))
        numeric = pd.to_numeric(values[name], errors="coerce") if values[name].dtype != object else None
        figure["sum"] = float(numeric.sum()) if numeric is not None and numeric.notna().any() else None
        figures[name] = figure
    sample = values[names] if len(values) <= sample_rows else values[names].sample(n=sample_rows, random_state=0)
    return StampSummary(day, figures, sample.reset_index(drop=True), len(values))
