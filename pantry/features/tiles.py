"""Tiles: per-entity, per-day partial aggregates, the stored form of a feature view.

Why tiles and not one row per entity per stamp: a value at stamp ``s`` only depends on
the days in ``[s - W, s)``. Storing each (entity, day) once, as partial aggregates
(sums, counts, min/max, the day's distinct values, the day's last dimension value), makes
a partition cost that window's source rows, and a backfill of years one GROUP BY over
the source. Storing values per stamp would cost entities x days (for TPC-H orders about
10^8 rows) and the same again on every re-materialization. Reads combine the tiles of
a window at query time (``reads.py``), which is cheap because the tiles are small.

Materializing partitions ``A..B`` rewrites the tiles of days ``A - W + 1 .. B``, so the
tiles behind every materialized stamp are complete even when an earlier partition was
never run, and marks ``A..B`` as materialized. One transaction does both: a failed write
leaves the previous tiles and marks in place.

The SQL is DuckDB's (lists, ARG_MAX_NULL, ASOF joins); identifiers are quoted by sqlglot.
"""

from __future__ import annotations

from datetime import date, timedelta

import duckdb
import pyarrow as pa

from pantry.compile.sql import SOURCE_SCHEMA, qualified
from pantry.compile.view_plan import PlannedFeature, ViewPlan
from pantry.offline.feature_tables import q, write_tiles
from pantry.offline.sources import FILE_COLUMN, ROW_COLUMN
from pantry.offline.store import OfflineStore
from pantry.spec.aggregations import aggregation
from pantry.spec.model import Dimension, SemanticModel

# the order rows reached the store: the declared source first, then pushed batches by name
# (arrival time), each in row order; ``stream_events.arrival_rank`` is the same order
# (a batch on S3 is read from its cached copy, ``.../<batch name>/<etag>.parquet``)
BATCH_NAME = r"(\d{20})-([0-9a-f]{8})\.parquet(/[^/]*)?$"
ARRIVAL = f"regexp_matches(m0.{FILE_COLUMN}, '{BATCH_NAME}'), m0.{FILE_COLUMN}, m0.{ROW_COLUMN}"


def rows_column(model: SemanticModel) -> str:
    return f"__rows__{model.name}"


def partial_columns(planned: PlannedFeature) -> list[str]:
    """A feature's partial columns in a tile (``spec/aggregations.py``: its parts)."""
    found = aggregation(planned.agg)
    return [f"{planned.feature.name}__{part}" for part in (found.parts if found is not None else ("part",))]


def _partials(planned: PlannedFeature, value: str, order: str, arrival: str | None = None) -> list[str]:
    """One feature's partial aggregates of a tile. With ``arrival`` (a streaming view), float
    sums add the values in arrival order, as the online tiles in Redis do, so both sides
    round every addition alike and serve the very same double."""
    name = planned.feature.name
    found = aggregation(planned.agg)
    if found is None:  # a dimension: the value on the day's latest row; ties go to the later source row
        return [f"ARG_MAX_NULL({value}, {order}) AS {q(name + '__part')}"]
    if found.combine is not None:  # the tile keeps its own aggregate
        parts = {"part": found.duckdb.format(value)}
    else:
        parts = {part: sql.format(v=value) for part, sql in found.tile_parts}
    if arrival is not None and found.ordered_sum:  # the first part is the sum, added in arrival order
        first = next(iter(parts))
        parts[first] = f"LIST_SUM(LIST({value} ORDER BY {arrival}))"
    return [f"{sql} AS {q(f'{name}__{part}')}" for part, sql in parts.items()]


# An SCD type II model (``validity_params``) is read as events: each version at its start,
# with its values, and at its end (when it has one), with none. The last event before a
# stamp is then the version valid at it, or nothing once the last version has ended.
VALID_AT = "__pantry_valid_at"
VALID = "__pantry_valid"


def model_source(model: SemanticModel) -> str:
    """The rows a view reads from ``model``: its source, or an SCD model's version events."""
    table = f"{SOURCE_SCHEMA}.{q(model.name)}"
    window = model.validity_window()
    if window is None:
        return table
    start, end = window
    events = f"SELECT *, CAST({start.expr} AS TIMESTAMP) AS {VALID_AT}, 1 AS {VALID} FROM {table}"
    if end is not None:
        events += (
            f" UNION ALL SELECT *, CAST({end.expr} AS TIMESTAMP) AS {VALID_AT}, 0 AS {VALID} FROM {table} "
            f"WHERE {end.expr} IS NOT NULL"
        )
    return f"({events})"


def model_time(plan: ViewPlan, model: SemanticModel) -> Dimension:
    """The time dimension that places a model's rows in days: its measures', else its agg-time
    one; for an SCD model, the time of each version event."""
    if model.validity_window() is not None:
        return Dimension(VALID_AT, "time", VALID_AT, "second")
    time_dim = model.dimension(model.agg_time_dimension or "")
    features = [p for p in plan.features if p.model.name == model.name]
    if features and features[0].measure is not None:
        time_dim = model.time_dimension_for(features[0].measure) or time_dim
    assert time_dim is not None
    return time_dim


def tile_start(plan: ViewPlan, at: str) -> str:
    """SQL for ``floor(at, tile)``, epoch-aligned: the stamp a streaming view's row is first served after."""
    return f"time_bucket(INTERVAL '{plan.tile} seconds', {at}, TIMESTAMP '1970-01-01')"


def model_rows(plan: ViewPlan, model: SemanticModel) -> tuple[str, str, str]:
    """SQL for a model's entity key, its rows' time and their source order, over alias ``m0``."""
    entity = model.entity(plan.view.entity)
    assert entity is not None
    key = qualified(entity.expr, "m0").sql("duckdb")
    at = f"CAST({qualified(model_time(plan, model).expr, 'm0').sql('duckdb')} AS TIMESTAMP)"
    if model.validity_window() is not None:  # at one instant, a version's start outranks another's end
        return key, at, f"({at}, m0.{VALID}, m0.{q(FILE_COLUMN)}, m0.{q(ROW_COLUMN)})"
    return key, at, f"({at}, m0.{q(FILE_COLUMN)}, m0.{q(ROW_COLUMN)})"


def _model_tiles(plan: ViewPlan, model: SemanticModel, lo: str, hi: str, keys: str | None = None) -> str:
    """One model's tiles of rows with ``lo <= t < hi`` (timestamp literals); ``keys`` (a table
    with ``__key``) limits them to the entities a read asks for."""
    key, at, order = model_rows(plan, model)
    features = [p for p in plan.features if p.model.name == model.name]
    parts = [f"{key} AS __key"]
    if plan.streaming:
        parts += [f"{tile_start(plan, at)} AS __tile", f"CAST({tile_start(plan, at)} AS DATE) AS __day"]
    else:
        parts.append(f"CAST({at} AS DATE) AS __day")
    parts.append(f"COUNT(*) AS {q(rows_column(model))}")
    arrival = ARRIVAL if plan.streaming else None
    scd = model.validity_window() is not None
    for planned in features:
        value = qualified(planned.value_expr, "m0").sql("duckdb")
        if scd:  # a version's end event carries no value
            value = f"CASE WHEN m0.{VALID} = 1 THEN {value} END"
        parts += _partials(planned, value, order, arrival)
    only = f"AND {key} IN (SELECT __key FROM {keys}) " if keys else ""
    return (
        f"SELECT {', '.join(parts)} FROM {model_source(model)} AS m0 "
        f"WHERE {at} >= TIMESTAMP '{lo}' AND {at} < TIMESTAMP '{hi}' "
        f"AND {key} IS NOT NULL {only}GROUP BY ALL"
    )


def tiles_between(plan: ViewPlan, lo: str, hi: str, keys: str | None = None, ordered: bool = True) -> str:
    """Tiles of rows with ``lo <= t < hi`` for every model the view reads, one row per
    (entity, tile): a day, or a streaming view's tile (``__tile``, with its ``__day``).
    ``ordered`` sorts them by entity and tile, so a day's S3 object has the same bytes on
    every run; a local insert skips the sort (9 s of the churn lab's 22)."""
    models = plan.models
    group = "__key, __tile, __day" if plan.streaming else "__key, __day"
    if len(models) == 1:
        inner = _model_tiles(plan, models[0], lo, hi, keys)
        rows = f"{q(rows_column(models[0]))} AS __rows, "
        return f"SELECT {group}, {rows}* EXCLUDE ({group}) FROM ({inner})" + (f" ORDER BY {group}" if ordered else "")
    union = " UNION ALL BY NAME ".join(f"({_model_tiles(plan, m, lo, hi, keys)})" for m in models)
    counts = [f"COALESCE(SUM({q(rows_column(m))}), 0) AS {q(rows_column(m))}" for m in models]
    total = " + ".join(f"COALESCE(SUM({q(rows_column(m))}), 0)" for m in models)
    values = [f"ANY_VALUE({q(c)}) AS {q(c)}" for p in plan.features for c in partial_columns(p)]
    return f"SELECT {group}, {total} AS __rows, {', '.join(counts + values)} FROM ({union}) GROUP BY {group}" + (
        f" ORDER BY {group}" if ordered else ""
    )


def tiles_sql(plan: ViewPlan, lo: date, hi: date, ordered: bool = True) -> str:
    """Tiles of days ``lo..hi`` for every model the view reads, one row per (entity, tile)."""
    return tiles_between(plan, lo.isoformat(), (hi + timedelta(days=1)).isoformat(), ordered=ordered)


def compute_tiles(source: duckdb.DuckDBPyConnection, plan: ViewPlan, lo: date, hi: date) -> pa.Table:
    return source.sql(tiles_sql(plan, lo, hi)).to_arrow_table()


def stream_tiles(source: duckdb.DuckDBPyConnection, plan: ViewPlan, lo: date, hi: date) -> pa.RecordBatchReader:
    """The tiles as a stream of record batches: a local store inserts them as they come, so
    11M tile rows (the seeds' churn lab) never sit in Python memory as one Arrow table."""
    return source.sql(tiles_sql(plan, lo, hi, ordered=False)).to_arrow_reader(TILE_BATCH_ROWS)


TILE_BATCH_ROWS = 200_000


def materialize(
    source: duckdb.DuckDBPyConnection,
    offline: duckdb.DuckDBPyConnection | OfflineStore,
    plan: ViewPlan,
    start: date,
    end: date,
) -> int:
    """Partitions ``start..end``: tiles of their windows computed, written, marked. Returns tile rows.

    ``offline`` is the store (local file or S3), or an open connection to a DuckDB file."""
    lo = start - timedelta(days=plan.window - 1)
    if isinstance(offline, duckdb.DuckDBPyConnection):
        return write_tiles(offline, plan, stream_tiles(source, plan, lo, end), lo, end, start, end)
    if offline.kind == "local":  # inserted batch by batch; S3 splits a whole table into daily objects
        return offline.write_tiles(plan, stream_tiles(source, plan, lo, end), lo, end, start, end)
    return offline.write_tiles(plan, compute_tiles(source, plan, lo, end), lo, end, start, end)
