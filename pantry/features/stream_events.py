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
from sqlglot import exp

from pantry.compile.sql import SOURCE_SCHEMA, qualified
from pantry.compile.view_plan import ViewPlan
from pantry.features.tiles import BATCH_NAME, model_rows, q
from pantry.offline.scratch import scratch
from pantry.offline.sources import FILE_COLUMN, ROW_COLUMN
from pantry.online.layout import encode, key_text
from pantry.online.stream_tiles import ORDER_OFFSET, PackedEvents, StreamLayout
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


def rank_texts(files: Iterable[str]) -> dict[str, str]:
    """Each file's (origin, rank) as the fixed-width digits an order key carries."""
    return {f: f"{origin}{rank:030d}" for f, (origin, rank) in file_ranks(files).items()}


RANKS_TABLE = "__pantry_file_ranks"


def _floor_div(value: str, divisor: int) -> str:
    """``value // divisor`` rounded down, as Python's ``//`` (DuckDB's rounds toward zero)."""
    return f"(({value}) - (((({value}) % {divisor}) + {divisor}) % {divisor})) // {divisor}"


def _number_text(value: str, kind: str) -> str:
    """An int or float value as ``number_text`` writes it, '' for a null: DuckDB's text for a
    DOUBLE is Python's ``repr`` (shortest round trip), for an integer its digits."""
    if kind == "int":
        return f"COALESCE(CAST(CAST({value} AS HUGEINT) AS VARCHAR), '')"
    return f"COALESCE(CAST(CAST({value} AS DOUBLE) AS VARCHAR), '')"


def _literal(text: str) -> str:
    return exp.Literal.string(text).sql("duckdb")


def _where(plan: ViewPlan, model: SemanticModel, since: datetime | None) -> str:
    """The rows that are events: a key and a time, at or after ``since`` when given."""
    key, at, _ = model_rows(plan, model)
    after = f" AND {at} >= TIMESTAMP '{since.isoformat(sep=' ')}'" if since is not None else ""
    return f"{key} IS NOT NULL AND {at} IS NOT NULL{after}"


def _events_sql(
    plan: ViewPlan,
    layout: StreamLayout,
    model: SemanticModel,
    table: str,
    since: datetime | None,
    ranks: dict[str, str],
    extra: tuple[str, ...] = (),
) -> tuple[str, list[int]]:
    """The events' texts, a row per event in arrival order: the key, then what the tile
    script reads (id, tile, order key, model, values). A text feature's column holds its
    value, which ``_text`` writes as JSON afterwards; its position is returned."""
    key, at, _ = model_rows(plan, model)
    primary = model.entity(model.primary or "")
    assert primary is not None, "a push model has a primary entity (checked at load)"
    index = layout.models.index(model.name) + 1
    row = f"m0.{q(ROW_COLUMN)}"
    one = len(ranks) == 1  # a pushed batch: its rank is a literal; else each file's, joined (RANKS_TABLE)
    rank = f"'{next(iter(ranks.values()))}'" if one else "r.__rank"
    source = f"{table} AS m0" if one else f"{table} AS m0 JOIN {RANKS_TABLE} AS r ON r.__file = m0.{q(FILE_COLUMN)}"
    texts: list[int] = []
    values = []
    for position, (planned, feature) in enumerate(zip(plan.features, layout.features), start=4):
        value = qualified(planned.value_expr, "m0").sql("duckdb")
        if planned.model.name != model.name:
            values.append("''")
        elif feature.kind == "text":
            texts.append(position)
            values.append(value)
        else:
            values.append(_number_text(value, feature.kind))
    epoch = f"epoch_us({at})"
    columns = [
        f"{key} AS __key",
        f"{_literal(model.name + ':')} || CAST({qualified(primary.expr, 'm0').sql('duckdb')} AS VARCHAR)",
        f"CAST({_floor_div(epoch, layout.tile * 1_000_000)} * {layout.tile} AS VARCHAR)",
        f"lpad(CAST({epoch} + {ORDER_OFFSET} AS VARCHAR), 20, '0') || {rank} || lpad(CAST({row} AS VARCHAR), 12, '0')",
        f"'{index}'",
        *values,
        *extra,
    ]
    order = f" ORDER BY {row}" if one else f" ORDER BY {rank}, {row}"
    return f"SELECT {', '.join(columns)} FROM {source} WHERE {_where(plan, model, since)}{order}", texts


def _packed_sql(plan: ViewPlan, layout: StreamLayout, model: SemanticModel, table: str, name: str) -> str:
    """One file's events as the tile script's arguments, already in Redis's wire form: a row
    per entity and run of ``CHUNK`` rows (so at most ``CHUNK`` events, its runs in arrival
    order) with its key, its event count and every argument of its events as RESP bulk
    strings (``$<bytes>\\r\\n<text>\\r\\n``). ``concat``, not ``||``: twice as fast here."""
    sql, texts = _events_sql(plan, layout, model, table, None, rank_texts([name]), extra=(f"m0.{q(ROW_COLUMN)}",))
    assert not texts, "a view with text features takes the unpacked path (their JSON is written in Python)"
    width = 4 + len(layout.features)
    names = [f"__a{i}" for i in range(width)]
    bulk = "concat(" + ", ".join(f"'$', strlen({n}), chr(13), chr(10), {n}, chr(13), chr(10)" for n in names) + ")"
    return (
        f"SELECT __key, count(*), encode(string_agg({bulk}, '' ORDER BY __row)) "
        f"FROM ({sql}) AS e(__key, {', '.join(names)}, __row) "
        f"GROUP BY __key, __row // {CHUNK} ORDER BY __row // {CHUNK}"
    )


def _text(value: Any) -> str:
    """A text feature's value as a tile keeps it: its JSON, '' for a null (a text min must not pick 'null')."""
    text = encode(value)
    return "" if text == "null" else text


def events_of(
    con: duckdb.DuckDBPyConnection,
    plan: ViewPlan,
    layout: StreamLayout,
    model: SemanticModel,
    table: str,
    since: datetime | None = None,
    files: list[str] | None = None,
) -> dict[str, list[list[str]]]:
    """The rows of ``table`` (a model's columns, with file and row) as events by entity key;
    ``files``, when the caller knows them, are the files its rows come from.

    Why DuckDB writes the texts: a stream drain turns every event into them, and a Python
    loop over the values cost as much as checking and storing the batch."""
    if files is None:
        found = con.execute(
            f"SELECT DISTINCT m0.{q(FILE_COLUMN)} FROM {table} AS m0 WHERE {_where(plan, model, since)}"
        )
        files = [f for (f,) in found.fetchall()]
    if not files:
        return {}
    ranks = rank_texts(files)
    sql, texts = _events_sql(plan, layout, model, table, since, ranks)
    if len(ranks) > 1:  # a replay reads many files (a drain writes one per batch): a table, not a CASE per row
        con.register(RANKS_TABLE, pa.table({"__file": list(ranks), "__rank": list(ranks.values())}))
    try:
        if texts:  # the values as DuckDB hands them to Python, as the offline read's are encoded
            rows = [list(r) for r in con.execute(sql).fetchall()]
            for r in rows:
                for position in texts:
                    r[position + 1] = _text(r[position + 1])
            keys = [r.pop(0) for r in rows]
        else:
            found_rows = con.sql(sql).to_arrow_table()
            keys = found_rows.column(0).to_pylist()
            rows = [list(r) for r in zip(*(c.to_pylist() for c in found_rows.columns[1:]))]
    finally:
        if len(ranks) > 1:
            con.unregister(RANKS_TABLE)
    events: dict[str, list[list[str]]] = {}
    for key, event in zip(keys, rows):
        events.setdefault(key_text(key), []).append(event)
    return events


CHUNK = 500  # an entity's events per script call at most: a burst of one entity does not hold Redis long


def batch_events(
    plan: ViewPlan, layout: StreamLayout, model: SemanticModel, batch: pa.Table, name: str
) -> dict[str, list[list[str]]] | PackedEvents:
    """A pushed batch's rows as events; ``name`` is the batch's file, row ``i`` its ``i``-th row.

    Why packed when the view has no text feature: a drain turns every event into a dozen
    texts, and building them as Python lists, then packing them, cost about as much as the
    tile script itself. DuckDB writes each entity's arguments in Redis's wire form instead,
    and Python touches an entity once, not every value (issue 26)."""
    con = scratch()
    try:
        rows = batch.append_column(FILE_COLUMN, pa.array([name] * batch.num_rows, pa.string())).append_column(
            ROW_COLUMN,
            pa.array(np.arange(batch.num_rows, dtype=np.int64)),  # pa.array(range) is slow
        )
        con.register("__pantry_batch", rows)
        if any(f.kind == "text" for f in layout.features):
            return events_of(con, plan, layout, model, "__pantry_batch", files=[name])
        found = con.execute(_packed_sql(plan, layout, model, "__pantry_batch", name)).fetchall()
        return PackedEvents([(key_text(key), count, body) for key, count, body in found])
    finally:
        con.close()


def merged(parts: Iterable[dict[str, list[list[str]]]]) -> dict[str, list[list[str]]]:
    out: dict[str, list[list[str]]] = {}
    for part in parts:
        for key, rows in part.items():
            out.setdefault(key, []).extend(rows)
    return out
