"""Rows of a streaming view's models as the events its online tiles count.

Why one path for every row: the tiles in Redis must hold exactly what the offline read
computes from the same rows. A pushed batch (live) and the offline store's rows (a sync,
after a restart or for rows already stored) both pass through ``events_of``: the same
key, the same tile, the same source order for "the latest row wins", the same value text.

Source order is the offline store's: declared rows before pushed ones, then by file and
row. Here it is an all-digit order key (time, origin, file rank, row), so the script in
Redis compares it as text the same way under any locale. Its tail (origin, file rank,
row) is the order rows arrived in, which is the order a tile's sums add them in.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from pantry.compile.sql import SOURCE_SCHEMA, qualified
from pantry.features.plan import ViewPlan
from pantry.features.tiles import BATCH_NAME, model_rows, q
from pantry.offline.scratch import scratch
from pantry.offline.sources import FILE_COLUMN, ROW_COLUMN
from pantry.online.layout import encode, key_text
from pantry.online.stream_tiles import ORDER_OFFSET, StreamLayout, number_text
from pantry.spec.model import SemanticModel

_INTEGERS = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT")


def kind_of(duck_type: str) -> str:
    """int, float or text: how a value crosses the Redis script and comes back."""
    kind = duck_type.upper()
    if kind in _INTEGERS or (kind.startswith("DECIMAL") and kind.endswith(",0)")):
        return "int"
    if kind in ("FLOAT", "DOUBLE", "REAL") or kind.startswith("DECIMAL"):
        return "float"
    return "text"


def feature_kinds(con: duckdb.DuckDBPyConnection, plan: ViewPlan) -> dict[str, str]:
    """Each feature's value type, read from its model's source (``src.<model>`` on ``con``)."""
    kinds: dict[str, str] = {}
    for model in plan.models:
        mine = [p for p in plan.features if p.model.name == model.name]
        values = ", ".join(f"{qualified(p.value_expr, 'm0').sql('duckdb')} AS {q(p.feature.name)}" for p in mine)
        con.execute(f"SELECT {values} FROM {SOURCE_SCHEMA}.{q(model.name)} AS m0 LIMIT 0")
        for planned, column in zip(mine, con.description or []):
            kinds[planned.feature.name] = kind_of(str(column[1]))
    return kinds


def file_ranks(files: Iterable[str]) -> dict[str, tuple[int, int]]:
    """(origin, rank) of each row's file, in ``tiles.ARRIVAL``'s order: the declared source's
    files first, by path, then pushed batches by name (arrival time, then a random suffix)."""
    ranks: dict[str, tuple[int, int]] = {}
    declared = []
    for path in set(files):
        match = re.search(BATCH_NAME, path)
        if match is None:
            declared.append(path)
        else:
            ranks[path] = (1, int(match.group(1)) * 2**32 + int(match.group(2), 16))
    ranks.update({path: (0, i) for i, path in enumerate(sorted(declared))})
    return ranks


def _events_sql(plan: ViewPlan, model: SemanticModel, table: str, since: datetime | None) -> str:
    key, at, _ = model_rows(plan, model)
    primary = model.entity(model.primary or "")
    assert primary is not None, "a push model has a primary entity (checked at load)"
    values = [
        f"{qualified(p.value_expr, 'm0').sql('duckdb') if p.model.name == model.name else 'NULL'} AS {q(p.feature.name)}"
        for p in plan.features
    ]
    after = f"AND {at} >= TIMESTAMP '{since.isoformat(sep=' ')}'" if since is not None else ""
    return (
        f"SELECT {key} AS __key, epoch_us({at}) AS __at, CAST({qualified(primary.expr, 'm0').sql('duckdb')} AS VARCHAR) "
        f"AS __id, m0.{q(FILE_COLUMN)} AS __file, m0.{q(ROW_COLUMN)} AS __row, {', '.join(values)} "
        f"FROM {table} AS m0 WHERE {key} IS NOT NULL AND {at} IS NOT NULL {after}"
    )


def _text(value: Any, kind: str) -> str:
    if kind == "text":
        text = encode(value)
        return "" if text == "null" else text  # a null is no value: a text min must not pick 'null'
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    return number_text(int(value) if kind == "int" else float(value))


def events_of(
    con: duckdb.DuckDBPyConnection,
    plan: ViewPlan,
    layout: StreamLayout,
    model: SemanticModel,
    table: str,
    since: datetime | None = None,
) -> dict[str, list[list[str]]]:
    """The rows of ``table`` (a model's columns, with file and row) as events by entity key."""
    cursor = con.execute(_events_sql(plan, model, table, since))
    index = layout.models.index(model.name) + 1
    kinds = [f.kind for f in layout.features]
    mine = [p.model.name == model.name for p in plan.features]
    tile_us = layout.tile * 1_000_000
    found = cursor.fetchall()
    ranks = file_ranks(r[3] for r in found)
    events: dict[str, list[list[str]]] = {}
    for key, at, event_id, file, row, *values in found:
        origin, rank = ranks[file]
        order = f"{at + ORDER_OFFSET:020d}{origin}{rank:030d}{row:012d}"
        texts = [_text(v, k) if m else "" for v, k, m in zip(values, kinds, mine)]
        tile = str((at // tile_us) * layout.tile)
        events.setdefault(key_text(key), []).append([f"{model.name}:{event_id}", tile, order, str(index), *texts])
    return events


def batch_events(
    plan: ViewPlan, layout: StreamLayout, model: SemanticModel, batch: pa.Table, name: str
) -> dict[str, list[list[str]]]:
    """A pushed batch's rows as events; ``name`` is the batch's file, row ``i`` its ``i``-th row."""
    con = scratch()
    try:
        rows = batch.append_column(FILE_COLUMN, pa.array([name] * batch.num_rows, pa.string())).append_column(
            ROW_COLUMN,
            pa.array(np.arange(batch.num_rows, dtype=np.int64)),  # pa.array(range) is slow
        )
        con.register("__pantry_batch", rows)
        return events_of(con, plan, layout, model, "__pantry_batch")
    finally:
        con.close()


def merged(parts: Iterable[dict[str, list[list[str]]]]) -> dict[str, list[list[str]]]:
    out: dict[str, list[list[str]]] = {}
    for part in parts:
        for key, rows in part.items():
            out.setdefault(key, []).extend(rows)
    return out
