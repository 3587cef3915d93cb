"""Point-in-time reads: docs/features.md, in one place.

For each entity row ``(key, event_timestamp)``:

1. ``s`` is the latest materialized stamp with ``s <= event_timestamp`` (an ASOF join
   against the view's materialized partitions); none, or ``event_timestamp - s > ttl``,
   gives nulls;
2. the entity's tiles of days ``[s - W, s)`` are joined on (key, day range) and combined:
   windowed features over their own ``[s - window, s)``, the dimension features from the
   latest day, presence from the row counts;
3. an entity with no rows in ``[s - W, s)`` is absent: every feature is null. For a
   present entity, sum and count over an empty window are 0, other aggregations null.

The output keeps every input row, in order: rows carry ``__qid`` from start to end.
"""

from __future__ import annotations

import warnings
from datetime import UTC, date, datetime
from decimal import Decimal

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from pantry.compile.view_plan import PlannedFeature, ViewPlan
from pantry.errors import PantryError
from pantry.features.tiles import partial_columns, rows_column
from pantry.offline.feature_tables import PARTITIONS_TABLE, q, tile_table
from pantry.spec.aggregations import aggregation

TIMESTAMP = "event_timestamp"


def combine(
    planned: PlannedFeature, inside: str | None = None, latest: str = "t.__day", ordered: str | None = None
) -> str:
    """SQL combining one feature's tiles inside its window, per query row: ``inside`` says
    which tiles ``t`` of row ``v`` the window holds, ``latest`` orders them for a dimension,
    ``ordered`` (a streaming view's tile column) fixes the order its sums add in."""
    inside = inside or f"t.__day >= v.__sday - {planned.days}"
    columns = [f"t.{q(c)}" for c in partial_columns(planned)]
    found = aggregation(planned.agg)
    if found is not None and ordered is not None and found.ordered_sum:
        # a streaming view adds its tiles' sums oldest first, as the read script in Redis does
        total = f"LIST_SUM(LIST({columns[0]} ORDER BY {ordered}) FILTER (WHERE {inside}))"
        if found.adds_up:
            return f"COALESCE({total}, 0)"
        return f"{total} / NULLIF(SUM({columns[1]}) FILTER (WHERE {inside}), 0)"  # the average: sum / count
    if found is not None and found.combine is not None:  # parts combine by the table's function
        merged = f"{found.combine.upper()}({columns[0]}) FILTER (WHERE {inside})"
        return f"COALESCE({merged}, 0)" if found.adds_up else merged
    if found is not None and found.merge is not None:
        quantile = {}
        if found.quantile:
            measure = planned.measure
            assert measure is not None
            quantile = {
                "kind": "quantile_disc" if measure.use_discrete_percentile else "quantile_cont",
                "p": measure.percentile if measure.percentile is not None else 0.5,
            }
        return found.merge.format(inside=inside, **dict(zip(found.parts, columns)), **quantile)
    part = columns[0]
    rows = f"t.{q(rows_column(planned.model))}"
    return f"ARG_MAX_NULL({part}, {latest}) FILTER (WHERE {rows} > 0)"


def utc_naive(series: pd.Series, column: str) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(series):
        values = series
    elif series.dtype == object:
        try:
            values = pd.to_datetime(series, utc=True)
        except (ValueError, TypeError):
            raise PantryError(
                f"column '{column}' holds values that are not timestamps",
                field=column,
                hint="pass datetimes (naive values are read as UTC) or ISO strings",
            ) from None
    else:
        raise PantryError(
            f"column '{column}' has type {series.dtype}, not a timestamp",
            field=column,
            hint="convert it with pandas.to_datetime",
        )
    if getattr(values.dt, "tz", None) is not None:
        values = values.dt.tz_convert("UTC").dt.tz_localize(None)
    return values.astype("datetime64[us]")


def key_array(keys: pd.Series, column: str) -> pa.Array:
    """Entity keys as an Arrow column of their own type: ``uint64`` above 2^63 and
    ``Decimal`` keys stay exact (no trip through a float or a signed 64-bit integer)."""
    try:
        return pa.Array.from_pandas(keys)
    except (OverflowError, pa.ArrowInvalid, pa.ArrowTypeError):
        values = keys.tolist()
    present = [v for v in values if v is not None]
    if present and all(isinstance(v, int) and not isinstance(v, bool) for v in present):
        if all(v >= 0 for v in present) and max(present) < 2**64:
            return pa.array(values, pa.uint64())
        if all(abs(v) < 10**38 for v in present):
            return pa.array([None if v is None else Decimal(v) for v in values], pa.decimal128(38, 0))
    raise PantryError(
        f"column '{column}' holds keys of mixed or unsupported types",
        field=column,
        hint="give entity keys as integers (any width) or as strings, one type per column",
    )


def read_view(
    con: duckdb.DuckDBPyConnection,
    plan: ViewPlan,
    keys: pd.Series,
    timestamps: pd.Series,
    names: list[str],
    has_tiles: bool,
) -> pd.DataFrame:
    """Feature values for rows ``(keys[i], timestamps[i])``, in input order; ``con`` has ``offline`` attached."""
    con.register("__pantry_q", query_frame(plan, keys, timestamps))
    planned = [plan.feature(n) for n in names]
    ttl = plan.view.ttl
    ttl_filter = f"AND v.__ts - v.__stamp <= INTERVAL '{ttl.count} {ttl.unit}'" if ttl is not None else ""
    if not has_tiles:
        values = ", ".join(f"NULL AS {q(p.feature.name)}" for p in planned)
        sql = f"SELECT {values} FROM __pantry_q ORDER BY __qid"
    else:
        selects = ", ".join(
            f"CASE WHEN a.__present > 0 THEN a.{q(p.feature.name)} END AS {q(p.feature.name)}" for p in planned
        )
        combined = ", ".join(f"{combine(p)} AS {q(p.feature.name)}" for p in planned)
        sql = f"""
        WITH stamps AS (
            SELECT CAST(day + INTERVAL 1 DAY AS TIMESTAMP) AS __stamp FROM offline.{PARTITIONS_TABLE} WHERE view = '{plan.view.name}'
        ), located AS (
            SELECT qq.__qid, qq.__key, qq.__ts, st.__stamp FROM __pantry_q qq ASOF JOIN stamps st ON qq.__ts >= st.__stamp
        ), valid AS (
            SELECT v.*, CAST(v.__stamp AS DATE) AS __sday FROM located v WHERE TRUE {ttl_filter}
        ), agg AS (
            SELECT v.__qid, SUM(t.__rows) AS __present, {combined}
            FROM valid v JOIN offline.{tile_table(plan.view.name)} t
              ON t.__key = v.__key AND t.__day >= v.__sday - {plan.window} AND t.__day < v.__sday
            GROUP BY v.__qid
        )
        SELECT {selects} FROM __pantry_q qq LEFT JOIN agg a ON a.__qid = qq.__qid ORDER BY qq.__qid
        """
    try:
        return run_read(con, sql)
    finally:
        con.unregister("__pantry_q")


def query_frame(plan: ViewPlan, keys: pd.Series, timestamps: pd.Series) -> pa.Table:
    """The read's rows as Arrow: ``__qid`` (input order), ``__key``, ``__ts`` (naive UTC)."""
    # columnar, never row by row: a million training rows cost milliseconds here
    return pa.table(
        {
            "__qid": pa.array(np.arange(len(keys), dtype=np.int64)),
            "__key": key_array(keys, plan.key),
            "__ts": pa.Array.from_pandas(timestamps.astype("datetime64[us]")).cast(pa.timestamp("us")),
        }
    )


def run_read(con: duckdb.DuckDBPyConnection, sql: str) -> pd.DataFrame:
    """Run a read; integer sums come back from DuckDB as HUGEINT (a float in pandas): keep
    them integers, so a count is an int in training and online alike; a sum of doubles
    stays a double."""
    cursor = con.execute(sql)
    kinds = [str(d[1]).upper() for d in con.description or []]
    result = cursor.df()
    for name, kind in zip(result.columns, kinds):
        if kind in ("HUGEINT", "BIGINT", "INTEGER") or (kind.startswith("DECIMAL") and kind.endswith(",0)")):
            result[name] = result[name].astype("Int64")
    return result


def stamps_in(days: list[date], start: datetime | None, end: datetime | None) -> list[datetime]:
    from pantry.compile.view_plan import stamp_of

    stamps = [stamp_of(d) for d in days]
    lo = start.replace(tzinfo=UTC) if start and start.tzinfo is None else start
    hi = end.replace(tzinfo=UTC) if end and end.tzinfo is None else end
    return [s for s in stamps if (lo is None or s >= lo) and (hi is None or s <= hi)]


def present_entities(con: duckdb.DuckDBPyConnection, plan: ViewPlan, stamps: list[datetime]) -> pd.DataFrame:
    """Every (entity, stamp) with a source row in ``[stamp - W, stamp)``: the training spine."""
    if not stamps:
        return pd.DataFrame({"__key": [], TIMESTAMP: []})
    con.register(
        "__pantry_stamps", pa.table({"__stamp": pa.array([s.replace(tzinfo=None) for s in stamps], pa.timestamp("us"))})
    )
    try:  # through Arrow, so DECIMAL(38,0) and HUGEINT keys arrive as exact Decimals, not floats
        return (
            con.sql(
                f"""SELECT DISTINCT t.__key, st.__stamp AS {TIMESTAMP}
            FROM __pantry_stamps st JOIN offline.{tile_table(plan.view.name)} t
              ON t.__day >= CAST(st.__stamp AS DATE) - {plan.window} AND t.__day < CAST(st.__stamp AS DATE)
            WHERE t.__rows > 0 ORDER BY {TIMESTAMP}, t.__key"""
            )
            .to_arrow_table()
            .to_pandas()
        )
    finally:
        con.unregister("__pantry_stamps")


def warn_unmaterialized(view: str) -> None:
    warnings.warn(f"feature view '{view}' has no materialized partition yet: its values are null", stacklevel=3)
