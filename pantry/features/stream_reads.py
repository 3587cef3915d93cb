"""Point-in-time reads of a streaming view (``stream: {tile: ...}``), straight from its rows.

Why not from stored tiles: a streaming view's rows are servable at the next tile boundary,
not once a day, so a training read at ``t`` must see every row made durable before it,
exactly as the online store does. Pushed rows are durable in the offline store the moment
a push returns, so this read computes the view's tiles from the sources for the entities
and times it is asked about, then combines them as ``reads.py`` combines daily tiles.

For each row ``(key, event_timestamp = t)``, with ``s = floor(t, tile)`` (epoch-aligned):

1. ``t - s > ttl`` gives nulls (only possible with a ttl shorter than a tile);
2. the entity's tiles in ``[s - W, s)`` are combined: windowed features over their own
   ``[s - window, s)``, dimension features from the latest tile holding their model's rows;
3. no row in ``[s - W, s)``: absent, every feature null; a present entity's sum and count
   over an empty window are 0, other aggregations null.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import duckdb
import pandas as pd
import pyarrow as pa

from pantry.compile.view_plan import ViewPlan
from pantry.features.reads import TIMESTAMP, combine, query_frame, run_read
from pantry.features.tiles import q, tile_start, tiles_between
from pantry.spec.windows import Window


def _inside(seconds: int) -> str:
    return f"t.__tile >= v.__stamp - INTERVAL '{seconds} seconds'"


def _bounds(plan: ViewPlan, first: datetime, last: datetime) -> tuple[str, str]:
    """The rows a read needs: from the first stamp's window start to the last stamp."""
    tile = plan.tile or 1
    lo = _floor(first, tile) - timedelta(seconds=plan.window_seconds)
    hi = _floor(last, tile)
    return lo.isoformat(sep=" "), hi.isoformat(sep=" ")


EXPIRED_STAMP = -(2**40)  # a stamp no tile is near: the online read finds the entity absent


def serving_stamp(tile: int, ttl: Window | None, now: float) -> int:
    """The stamp an online read at epoch second ``now`` serves: ``floor(now, tile)``, or
    ``EXPIRED_STAMP`` when ``now - stamp`` is past the ttl (rule 1 above, as the training
    read applies it). A ttl in months or longer is never shorter than a tile."""
    stamp = int(now // tile) * tile
    if ttl is not None and ttl.unit not in ("month", "quarter", "year"):
        if now - stamp > ttl.as_timedelta().total_seconds():
            return EXPIRED_STAMP
    return stamp


def _floor(at: datetime, tile: int) -> datetime:
    epoch = datetime(1970, 1, 1)
    return epoch + timedelta(seconds=(int((at - epoch).total_seconds()) // tile) * tile)


def read_stream_view(
    con: duckdb.DuckDBPyConnection, plan: ViewPlan, keys: pd.Series, timestamps: pd.Series, names: list[str]
) -> pd.DataFrame:
    """Feature values for rows ``(keys[i], timestamps[i])``, in input order; ``con`` has the
    view's models registered as ``src.<model>``."""
    frame = query_frame(plan, keys, timestamps)
    planned = [plan.feature(n) for n in names]
    con.register("__pantry_q", frame)
    try:
        first, last = con.execute("SELECT min(__ts), max(__ts) FROM __pantry_q").fetchall()[0]
        if first is None:
            values = ", ".join(f"NULL AS {q(p.feature.name)}" for p in planned)
            return run_read(con, f"SELECT {values} FROM __pantry_q ORDER BY __qid")
        lo, hi = _bounds(plan, first, last)
        ttl = plan.view.ttl
        ttl_filter = f"WHERE v.__ts - v.__stamp <= INTERVAL '{ttl.count} {ttl.unit}'" if ttl is not None else ""
        selects = ", ".join(
            f"CASE WHEN a.__present > 0 THEN a.{q(p.feature.name)} END AS {q(p.feature.name)}" for p in planned
        )
        combined = ", ".join(
            f"{combine(p, _inside(p.seconds), 't.__tile', 't.__tile')} AS {q(p.feature.name)}" for p in planned
        )
        sql = f"""
        WITH located AS (
            SELECT __qid, __key, __ts, {tile_start(plan, "__ts")} AS __stamp FROM __pantry_q
        ), valid AS (
            SELECT * FROM located v {ttl_filter}
        ), tiles AS ({tiles_between(plan, lo, hi, keys="__pantry_q")}
        ), agg AS (
            SELECT v.__qid, SUM(t.__rows) AS __present, {combined}
            FROM valid v JOIN tiles t
              ON t.__key = v.__key AND t.__tile >= v.__stamp - INTERVAL '{plan.window_seconds} seconds'
             AND t.__tile < v.__stamp
            GROUP BY v.__qid
        )
        SELECT {selects} FROM __pantry_q qq LEFT JOIN agg a ON a.__qid = qq.__qid ORDER BY qq.__qid
        """
        return run_read(con, sql)
    finally:
        con.unregister("__pantry_q")


def present_at(con: duckdb.DuckDBPyConnection, plan: ViewPlan, stamps: list[datetime]) -> pd.DataFrame:
    """Every (entity, stamp) with a row in ``[stamp - W, stamp)``: the training spine of a
    streaming view at the given stamps (its daily partitions' stamps, for checks and drift)."""
    if not stamps:
        return pd.DataFrame({"__key": [], TIMESTAMP: []})
    naive = sorted(s.replace(tzinfo=None) for s in stamps)
    lo, hi = _bounds(plan, naive[0], naive[-1])
    con.register("__pantry_stamps", pa.table({"__stamp": pa.array(naive, pa.timestamp("us"))}))
    try:
        return (
            con.sql(
                f"""SELECT DISTINCT t.__key, st.__stamp AS {TIMESTAMP}
            FROM __pantry_stamps st JOIN ({tiles_between(plan, lo, hi)}) t
              ON t.__tile >= st.__stamp - INTERVAL '{plan.window_seconds} seconds' AND t.__tile < st.__stamp
            WHERE t.__rows > 0 ORDER BY {TIMESTAMP}, t.__key"""
            )
            .to_arrow_table()
            .to_pandas()
        )
    finally:
        con.unregister("__pantry_stamps")
