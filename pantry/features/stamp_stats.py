"""A view's values at its partitions' stamps, summarized: figures and a drift sample.

Why summaries and not values: the checks of a month of a 2M-customer view once read every
value of every stamp into pandas at once (2M entities x 31 stamps x 25 features) and the
run grew to 23 GB and was killed. What the checks need is small: per feature the rows,
nulls, mean, min, max, distinct values and sum (the consistency check's total), and a
sample of values for the drift test. Features with a dense form get their figures at every
stamp from one pass over the tiles (``window_figures``); the others from a GROUP BY per
stamp that DuckDB spills to disk past ``MEMORY_LIMIT``. Memory then depends on a chunk of
entities or one stamp's entities, never on the number of partitions judged.

The sample is the entities whose key hashes below a cutoff, so about ``sample_rows`` of
them: the same entities every run and every day (a panel), which keeps a partition and its
reference comparable. It is valued by the same combine SQL as a training read.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pandas as pd

from pantry.compile.view_plan import ViewPlan
from pantry.features.reads import combine, run_read
from pantry.features.tiles import partial_columns, rows_column
from pantry.features.window_figures import HASH_SPACE, dense_forms, sample_cut, window_figures
from pantry.offline.feature_tables import q, tile_table

MEMORY_LIMIT = "1GB"  # DuckDB's own limit for a stamp's values; past it, the table spills
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


def summarize_days(
    con: duckdb.DuckDBPyConnection, plan: ViewPlan, days: list[date], names: list[str], sample_rows: int
) -> dict[date, StampSummary]:
    """Partitions ``days`` of a daily view, each summarized at its stamp. ``con`` has the
    offline store attached as ``offline``.

    The figures of features with a dense form come from ``window_figures`` (every stamp in
    one pass over the tiles); the others (count_distinct, median, percentile, min or max of
    non-numbers) from one SQL GROUP BY per stamp. The samples come from the same dense pass,
    or, when some feature has no dense form, from one query over the sampled entities' tiles
    (every feature of an entity from one source, so a sample's rows stay whole)."""
    days = sorted(days)
    forms = dense_forms(con, plan, names)
    cut = sample_cut(con, plan, days, sample_rows)
    dense = {n: f for n, f in forms.items() if f is not None}
    rest = [n for n in names if forms[n] is None]
    figures: dict[date, dict[str, dict]] = {d: {} for d in days}
    entities: dict[date, int] = {}
    samples: dict[date, pd.DataFrame] = {}
    if dense:
        computed, entities, samples = window_figures(con, plan, days, dense, cut)
        for d in days:
            figures[d].update(computed[d])
    if rest:
        for d in days:
            computed_sql, entities[d] = _sql_figures(con, plan, d, rest)
            figures[d].update(computed_sql)
        samples = _samples(con, plan, days, names, cut)  # one panel for every feature
    return {d: StampSummary(d, {n: figures[d][n] for n in names}, samples[d], entities[d]) for d in days}


def _values(plan: ViewPlan, names: list[str], stamp: str) -> str:
    """The combine SQL of ``names`` at ``stamp`` (an SQL date), over tiles ``t``."""
    planned = [plan.feature(n) for n in names]
    return ", ".join(f"{combine(p, inside=f't.__day >= {stamp} - {p.days}')} AS {q(p.feature.name)}" for p in planned)


def _sql_figures(
    con: duckdb.DuckDBPyConnection, plan: ViewPlan, day: date, names: list[str]
) -> tuple[dict[str, dict], int]:
    """Figures of ``names`` at one partition's stamp by a GROUP BY of its window's tiles, kept
    in a temporary table that spills to disk past ``MEMORY_LIMIT``; and its entities present."""
    sday = day + timedelta(days=1)  # the stamp's date: values of the tiles in [sday - window, sday)
    combined = _values(plan, names, f"DATE '{sday}'")
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE __stamp_values AS
        SELECT t.__key{", " + combined if combined else ""}
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
    finally:
        con.execute("DROP TABLE IF EXISTS __stamp_values")
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
    return figures, entities


def _samples(
    con: duckdb.DuckDBPyConnection, plan: ViewPlan, days: list[date], names: list[str], cut: int
) -> dict[date, pd.DataFrame]:
    """Each stamp's drift sample: the present entities whose key hashes below ``cut``
    (``sample_cut``), valued by the same combine SQL as a read. One query for every stamp,
    reading only the sampled entities' tiles."""
    stamps = ", ".join(f"(DATE '{d + timedelta(days=1)}')" for d in days)
    first, last = days[0] - timedelta(days=plan.window - 1), days[-1]
    planned = [plan.feature(n) for n in names]
    columns = ["__key", "__day", "__rows", *dict.fromkeys(c for p in planned for c in partial_columns(p))]
    columns += list(dict.fromkeys(rows_column(p.model) for p in planned))
    needed = ", ".join(q(c) for c in dict.fromkeys(columns))
    values = run_read(
        con,
        f"""WITH s(__sday) AS (VALUES {stamps}),
        sampled AS (SELECT {needed} FROM offline.{tile_table(plan.view.name)}
              WHERE __day BETWEEN DATE '{first}' AND DATE '{last}' AND hash(__key) % {HASH_SPACE} < {cut}),
        t AS (SELECT *, CAST(UNNEST(generate_series(__day + 1, __day + {plan.window}, INTERVAL 1 DAY)) AS DATE) AS __in
              FROM sampled)  -- each tile at every stamp whose window holds it: an equality join
        SELECT s.__sday, {_values(plan, names, "s.__sday")}
        FROM s JOIN t ON t.__in = s.__sday
        GROUP BY s.__sday, t.__key
        HAVING SUM(t.__rows) > 0
        ORDER BY s.__sday, t.__key""",
    )
    stamps_of = pd.to_datetime(values["__sday"]).dt.date if len(values) else pd.Series([], dtype=object)
    return per_partition(values, stamps_of, days, names)


def per_partition(
    values: pd.DataFrame, stamps: pd.Series, days: list[date], names: list[str]
) -> dict[date, pd.DataFrame]:
    """``values`` split by partition: the rows whose stamp date (``stamps``, a partition's
    stamp is the day after it) is each day's, columns ``names`` only; none for a day absent."""
    by_stamp = {d: f for d, f in values.groupby(stamps)} if len(values) else {}
    empty = values[names].iloc[0:0]
    return {
        d: by_stamp[d + timedelta(days=1)][names].reset_index(drop=True) if d + timedelta(days=1) in by_stamp else empty
        for d in days
    }


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
