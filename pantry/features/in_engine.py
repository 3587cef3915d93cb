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
import pyarrow as pa
import pyarrow.compute as pc

from pantry.compile.render import checked_text
from pantry.compile.view_plan import ViewPlan, stamp_of
from pantry.engines.base import Engine
from pantry.engines.frames import arrow_frame
from pantry.engines.names import quoted
from pantry.engines.relations import for_engine
from pantry.errors import PantryError
from pantry.features.portable import dialect_tree
from pantry.features.reads import TIMESTAMP, query_frame
from pantry.spec.model import Catalog

VIEWS_SCHEMA = "pantry_features"  # the engine's schema of view partitions
DAY = "__day"


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


def table_of(engine: Engine, plan: ViewPlan, pinned: bool = False) -> str:
    """The view's partitions as the engine's readers name them; ``pinned`` for one large read
    (``Engine.pinned_table``: one statement more, which a training read repays)."""
    if pinned:
        return engine.pinned_table(VIEWS_SCHEMA, plan.view.name, DAY)
    return engine.table(VIEWS_SCHEMA, plan.view.name, DAY)


def materialized_days(engine: Engine, view: str) -> list[date]:
    """The view's materialized partitions, oldest first, from the engine's log of writes."""
    return engine.materialized(VIEWS_SCHEMA, asset(view))


def pinned_days(engine: Engine, plan: ViewPlan) -> tuple[list[date], str]:
    """``materialized_days`` and the view's partitions pinned for one large read
    (``table_of(..., pinned=True)``), of the same moment and, on Spark, one statement."""
    return engine.pinned_days(VIEWS_SCHEMA, asset(plan.view.name), plan.view.name, DAY)


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
        f"SELECT {quoted(plan.key)} AS __key, {TIMESTAMP} FROM {table_of(engine, plan)} AS v "
        f"WHERE {TIMESTAMP} IN ({stamps_sql(days)}) ORDER BY {TIMESTAMP}, 1"
    ).to_pandas()


def read_stamps(
    engine: Engine, plan: ViewPlan, names: list[str], stamps: list[datetime]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every entity present at ``stamps`` (each a partition's stamp) with its values there:
    ``(spine, values)``, as ``present_entities`` then ``read_view`` would give them, read in
    one statement. Why: at its own stamp a partition's rows are the answer (no earlier stamp
    to find, never past the ttl), so the spine read of a push or a check needs no upload and
    no join; on a cluster each statement is a job of its own."""
    if not stamps:
        spine = pd.DataFrame({"__key": [], TIMESTAMP: []})
        return spine, pd.DataFrame({n: pd.Series([], dtype=object) for n in names})
    days = [s.date() - timedelta(days=1) for s in stamps]
    columns = ", ".join(f"v.{quoted(n)}" for n in names)
    parts = ", ".join(f"DATE '{d}'" for d in days)
    answer = engine.run(
        f"SELECT v.{quoted(plan.key)} AS __key, v.{TIMESTAMP}, {columns} FROM {table_of(engine, plan)} AS v "
        f"WHERE v.{DAY} IN ({parts}) AND v.{TIMESTAMP} IN ({stamps_sql(days)})"
    )
    # ordered here as the spine is (stamp, then key), not by ORDER BY: on a cluster a global sort is a job
    answer = answer.take(pc.sort_indices(answer, sort_keys=[(TIMESTAMP, "ascending"), ("__key", "ascending")]))
    return answer.select(["__key", TIMESTAMP]).to_pandas(), arrow_frame(answer.select(names))


def _located(days: list[date]) -> str:
    """Each calendar day from the first materialized stamp's to the last one's, with the
    latest materialized stamp at or before its midnight and the partition that holds it, as a
    VALUES list ``(__date, __stamp, __part)``.

    Why a table of days and an equality join: stamps are midnights, so the latest stamp at or
    before a moment depends only on the moment's date. An equality join is a hash join on
    every engine, where "the greatest stamp <= ts" is a correlated subquery PostgreSQL
    answers per row and Spark cannot plan at all. Why the partition too: joining the view on
    its partition column lets the engine prune partitions and hash on a column it stores
    once per directory, not read and compare every row's stamp (Spark's Hive layout)."""
    stamps = sorted({stamp_of(d) for d in days})
    first, last = stamps[0].date(), stamps[-1].date()
    rows, i = [], 0
    for n in range((last - first).days + 1):
        day = first + timedelta(days=n)
        while i + 1 < len(stamps) and stamps[i + 1].date() <= day:
            i += 1
        part = stamps[i].date() - timedelta(days=1)  # stamp_of(part) == stamps[i]
        rows.append(f"(DATE '{day}', TIMESTAMP '{stamps[i]:%Y-%m-%d %H:%M:%S}', DATE '{part}')")
    return ", ".join(rows)


def _locate(days: list[date], ts: str, alias: str) -> tuple[str, str, str]:
    """The join that finds, for a row at moment ``ts``, its stamp and the partition holding
    it (``_located``; a moment at or past the last stamp takes the last), and those two
    expressions: ``(join, stamp, part)``. One place for the training read and ``to=``.

    When the materialized days have no gap (a backfilled range, the usual case), no join:
    a moment between the first stamp and the last takes its own day's midnight, the
    partition of the day before. Why: on Spark the join of a million uploaded rows to the
    table of days was a broadcast and a stage more, about 0.65 s of a 6.9 s written read on
    the bench's cluster."""
    unique = sorted(set(days))
    first, last = stamps_sql(unique[:1]), stamps_sql(unique[-1:])
    if (unique[-1] - unique[0]).days + 1 == len(unique):
        stamp = f"(CASE WHEN {ts} >= {last} THEN {last} WHEN {ts} >= {first} THEN CAST(CAST({ts} AS DATE) AS TIMESTAMP) END)"
        part = (
            f"(CASE WHEN {ts} >= {last} THEN DATE '{unique[-1]}' WHEN {ts} >= {first} THEN CAST({ts} AS DATE) - 1 END)"
        )
        return "", stamp, part
    join = (
        f"LEFT JOIN (VALUES {_located(days)}) AS {alias}(__date, __stamp, __part) "
        f"ON {alias}.__date = CAST({ts} AS DATE)"
    )
    stamp = f"(CASE WHEN {ts} >= {last} THEN {last} ELSE {alias}.__stamp END)"
    part = f"(CASE WHEN {ts} >= {last} THEN DATE '{unique[-1]}' ELSE {alias}.__part END)"
    return join, stamp, part


def _view_join(engine: Engine, plan: ViewPlan, days: list[date], key: str, ts: str, n: str, table: str) -> str:
    """The joins that bring a row with key ``key`` at moment ``ts`` the view's values: its
    stamp located (``_locate``), then the partitions ``table`` as ``v<n>`` on the key and the
    partition day (and the stamp, where the engine wants it), null past the view's ttl. One
    place for the training read and ``to=``."""
    located, stamp, part = _locate(days, ts, f"m{n}")
    on = f"v{n}.{quoted(plan.key)} = {key} AND v{n}.{DAY} = {part}"
    if engine.joins_on_stamp:
        on += f" AND v{n}.{TIMESTAMP} = {stamp}"
    if plan.view.ttl is not None:
        on += f" AND {ts} - {stamp} <= INTERVAL '{plan.view.ttl.count} {plan.view.ttl.unit}'"
    return f"{located} LEFT JOIN {table} AS v{n} ON {on}"


def _refuse_clashes(
    columns: list[str], views: list[tuple[ViewPlan, list[str], list[date]]], full_feature_names: bool
) -> None:
    """The written set's column names are the frame's, then each feature's: two equal names
    (as an engine compares them, ignoring case) would be the engine's own ambiguous-column
    error, or a column silently dropped. Named here, before anything runs."""
    taken: dict[str, str] = {c.lower(): f"column '{c}' of entity_df" for c in columns}
    if "__ts" in taken:
        raise PantryError(
            f"{taken['__ts']} has the name Pantry gives each row's moment while it joins in the engine",
            field="entity_df",
            hint="rename that column before passing the frame with to=",
        )
    for plan, names, _ in views:
        view = plan.view.name
        for name in names:
            out = f"{view}__{name}" if full_feature_names else name
            if out.lower() in taken:
                raise PantryError(
                    f"feature '{view}:{name}' would be written as column '{out}', the name of {taken[out.lower()]}",
                    field="features",
                    hint="rename the entity_df column, or pass full_feature_names=True to name features '<view>__<feature>'",
                )
            taken[out.lower()] = f"feature '{view}:{name}'"


def write_training(
    engine: Engine,
    frame: pd.DataFrame,
    moments: pd.Series | None,
    views: list[tuple[ViewPlan, list[str], list[date]]],
    full_feature_names: bool,
    to: str,
    tables: dict[str, str] | None = None,
) -> None:
    """The training set of ``frame`` (its own columns, then each view's features) joined in
    the engine and written there as Parquet at ``to``; nothing but the frame's upload passes
    through the client, so its memory does not grow with the answer. Rows are in no order:
    each carries the frame's columns it was asked for. ``moments``: each row's UTC moment
    (``utc_naive``) when the frame's own column is not that already (zone-aware, text);
    ``tables``: each view's pinned partitions when the caller read them (``pinned_days``)."""
    columns = [str(c) for c in frame.columns]
    _refuse_clashes(columns, views, full_feature_names)
    # the frame's own buffers where Arrow can share them (integers, naive timestamps): a copy
    # first (``reset_index``) was the whole frame again, 160 MB of a 10M-row write's +223 MB
    upload = pa.Table.from_pandas(frame, preserve_index=False)
    if moments is None:
        # naive: the column is already each row's UTC moment (``utc_naive``), so it is not
        # shipped twice; a copy was a third column to upload, join and write, 20% of a
        # million-row write on two workers
        moment = f"q.{quoted(TIMESTAMP)}"
    else:
        upload = upload.append_column("__ts", pa.Array.from_pandas(moments.astype("datetime64[us]")))
        moment = "q.__ts"
    selects = [f"q.{quoted(c)}" for c in columns]
    joins = []
    for i, (plan, names, days) in enumerate(views):
        table = (tables or {}).get(plan.view.name) or table_of(engine, plan, pinned=True)
        joins.append(_view_join(engine, plan, days, f"q.{quoted(plan.key)}", moment, str(i), table))
        view = plan.view.name
        selects += [f"v{i}.{quoted(n)} AS {quoted(f'{view}__{n}' if full_feature_names else n)}" for n in names]
    hint = engine.view_join_hint(
        VIEWS_SCHEMA, {f"v{i}": plan.view.name for i, (plan, _, _) in enumerate(views)}, upload.num_rows
    )
    sql = f"SELECT {hint}{', '.join(selects)} FROM __pantry_entities AS q {' '.join(joins)}"
    engine.write_with("__pantry_entities", upload, sql, to)


def read_view(
    engine: Engine,
    plan: ViewPlan,
    keys: pd.Series,
    timestamps: pd.Series,
    names: list[str],
    days: list[date],
    table: str | None = None,
) -> pd.DataFrame:
    """Feature values for rows ``(keys[i], timestamps[i])`` (naive UTC), in input order;
    all null when no partition of the view is materialized (``days``: those that are;
    ``table``: the view's pinned partitions when the caller read them with the days)."""
    if not days:
        return pd.DataFrame({n: pd.Series([None] * len(keys), dtype=object) for n in names})
    rows = query_frame(plan, keys, timestamps)
    # the stamp and partition inside the join's condition, not projected in a subquery first:
    # Spark's optimizer evaluates a projection of an uploaded frame (a local relation) itself,
    # row by row in the Connect server, which took a million-row read from 6.6 to 9.5 s
    join = _view_join(engine, plan, days, "q.__key", "q.__ts", "", table or table_of(engine, plan, pinned=True))
    hint = engine.view_join_hint(VIEWS_SCHEMA, {"v": plan.view.name}, len(rows))
    sql = f"SELECT {hint}q.__qid, {', '.join(f'v.{quoted(n)}' for n in names)} FROM __pantry_q AS q {join}"
    # put in input order here, not by ORDER BY: on a cluster a global sort is a sampling job
    # and a range shuffle of every row (half of a million-row read on Spark), here one take
    answer = engine.run_with("__pantry_q", rows, sql)
    answer = answer.take(pc.sort_indices(answer.column("__qid"))).drop_columns(["__qid"])
    return arrow_frame(answer)
