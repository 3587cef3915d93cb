"""A pushed batch, checked row by row against the model's source columns.

Why DuckDB does the checking: the source's column types are DuckDB types, and TRY_CAST
says exactly which value does not fit which column, for a million rows as for one. A bad
row is refused with its reason; the good rows of the same batch are kept. A batch whose
every value is in a plain form (``_PLAIN``: what a stream sends) is cast by pyarrow to the
same table instead, without a query; anything else, and every refusal, is DuckDB's.

Why stricter than a cast: a cast alone stores ``1.5`` in an integer key as ``2``, ``"nan"``
as a NaN that makes every sum it meets null, ``+05:00`` as if it were UTC, and a list as
its Python text. Each is refused or converted here, with the reason, because a wrong row
that is stored cannot be told from a right one afterwards. An event time beyond
``PANTRY_MAX_EVENT_SKEW`` seconds ahead of this server's clock is refused too: newer-wins
would let one such row hide every true event of its key online for as long as it lasts.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from pantry.offline.scratch import scratch
from pantry.settings import env_number

DEFAULT_MAX_FIELD_BYTES = 65_536
DEFAULT_MAX_EVENT_SKEW_S = 300.0
_INTEGERS = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT")
_FLOATS = ("FLOAT", "DOUBLE", "REAL")


def max_field_bytes() -> int:
    """``PANTRY_MAX_FIELD_BYTES``: the longest value one field of a pushed row may hold."""
    return int(env_number("PANTRY_MAX_FIELD_BYTES", DEFAULT_MAX_FIELD_BYTES, int))


def max_event_skew() -> float:
    """``PANTRY_MAX_EVENT_SKEW``: how many seconds ahead of the server's clock an event may be."""
    return env_number("PANTRY_MAX_EVENT_SKEW", DEFAULT_MAX_EVENT_SKEW_S)


def nonfinite_allowed() -> bool:
    """``PANTRY_ACCEPT_NONFINITE=1`` lets NaN and infinities into float columns (off by default)."""
    return os.environ.get("PANTRY_ACCEPT_NONFINITE", "").lower() in ("1", "true", "yes")


@dataclass
class Checked:
    """The rows that fit, typed as the source, and each refused row's index and reason."""

    table: pa.Table
    refused: list[tuple[int, str]] = field(default_factory=list)


@dataclass
class Batch:
    """Rows as one frame, with the rows already refused while building it. A pyarrow table
    of text columns stays a table: DuckDB reads it as it is, with no pandas objects made."""

    frame: pd.DataFrame | pa.Table
    refused: dict[int, str] = field(default_factory=dict)

    @property
    def columns(self) -> list[Any]:
        """The columns' labels (a frame's may be other than text)."""
        frame = self.frame
        return frame.column_names if isinstance(frame, pa.Table) else list(frame.columns)

    def __len__(self) -> int:
        return len(self.frame)

    def present(self, column: Any) -> list[int]:
        """Indices of the rows with a value in ``column``."""
        frame = self.frame
        if isinstance(frame, pa.Table):
            return pc.indices_nonzero(pc.is_valid(frame.column(column))).to_pylist()
        return [int(i) for i in frame.index[frame[column].notna()]]

    def text(self, column: Any) -> bool:
        """Whether ``column`` holds text (JSON, CSV, stream fields) for DuckDB to cast."""
        frame = self.frame
        if isinstance(frame, pa.Table):
            return pa.types.is_string(frame.schema.field(column).type)
        return frame[column].dtype == object

    def chosen(self, columns: dict[Any, str]) -> pd.DataFrame | pa.Table:
        """The given columns (a name in the batch: its lower-case name), with ``__i`` the row's index."""
        frame = self.frame
        if isinstance(frame, pa.Table):
            data = frame.select(list(columns)).rename_columns(list(columns.values()))
            return data.append_column("__i", pa.array(np.arange(len(data), dtype=np.int64)))
        data = frame[list(columns)].copy()
        data.columns = list(columns.values())
        data["__i"] = range(len(data))
        return data


def _text(value: Any) -> str | None:
    """A JSON, CSV or stream value as text for DuckDB to cast; a float keeps ``nan``/``inf``
    as words so that the check sees them (pandas would have made NaN a missing value)."""
    if value is None:
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return str(value)


def _row_problem(row: dict[Any, Any], limit: int) -> str | None:
    if all(type(v) is str and len(v) <= limit for v in row.values()):  # the usual row: short text
        names = [str(k).lower() for k in row]
        if len(set(names)) == len(names):
            return None
    seen: dict[str, str] = {}
    for key, value in row.items():
        name = str(key)
        if name.lower() in seen:
            return f"columns '{seen[name.lower()]}' and '{name}' are both given; column names ignore case"
        seen[name.lower()] = name
        if isinstance(value, dict | list | tuple | set):
            kind = "an object" if isinstance(value, dict) else "a list"
            return f"column '{name}' holds {kind}; a value is one number, text or time"
        if isinstance(value, str | bytes) and len(value) > limit:
            return f"column '{name}' holds {len(value):,} characters; at most {limit:,} (PANTRY_MAX_FIELD_BYTES)"
    return None


def as_batch(rows: Any) -> Batch:
    """A DataFrame, a pyarrow table or a list of dicts, as one frame. Dict rows arrive as text
    (JSON, CSV, stream fields), so they are kept as text and cast by DuckDB; a dict row that
    cannot be a row (a list value, a field past the size limit, a name given twice) is
    refused here, with its reason."""
    if isinstance(rows, pd.DataFrame):
        return Batch(rows.reset_index(drop=True))
    if isinstance(rows, pa.Table):
        if all(pa.types.is_string(t) for t in rows.schema.types) and len(set(rows.column_names)) == rows.num_columns:
            return Batch(rows)
        return Batch(rows.to_pandas())
    if isinstance(rows, list) and all(isinstance(r, dict) for r in rows):
        limit = max_field_bytes()
        refused: dict[int, str] = {}
        columns: dict[str, None] = {}
        for i, row in enumerate(rows):
            problem = _row_problem(row, limit)
            if problem is not None:
                refused[i] = problem
            else:
                columns.update(dict.fromkeys(str(k) for k in row))
        data = {
            column: [
                None if i in refused else (value if type(value := row.get(column)) is str else _text(value))
                for i, row in enumerate(rows)
            ]
            for column in columns
        }
        frame = pd.DataFrame(data, index=range(len(rows)), dtype=object)
        return Batch(frame, refused)
    raise TypeError("rows must be a DataFrame, a pyarrow table or a list of dicts")


def _typed(column: str, kind: str, text: bool) -> str:
    """The value as the source's type. Text with a UTC offset is converted to UTC, not cut."""
    if kind.startswith("TIMESTAMP") and "TIME ZONE" not in kind and text:
        return f"""TRY_CAST(TRY_CAST("{column}" AS TIMESTAMPTZ) AT TIME ZONE 'UTC' AS {kind})"""
    return f'TRY_CAST("{column}" AS {kind})'


def _strict(column: str, kind: str, typed: str, event_time: bool, latest: datetime) -> list[str]:
    """Reasons a value that casts is still wrong for its column."""
    checks = []
    if kind in _INTEGERS:
        checks.append(
            f"""CASE WHEN {typed} IS NOT NULL AND TRY_CAST("{column}" AS DOUBLE) <> CAST({typed} AS DOUBLE) """
            f"""THEN '''' || CAST("{column}" AS VARCHAR) || ''' is not a whole number (column {column})' END"""
        )
    if kind in _FLOATS and not nonfinite_allowed():
        checks.append(
            f"CASE WHEN {typed} IS NOT NULL AND NOT isfinite({typed}) "
            f"""THEN '''' || CAST("{column}" AS VARCHAR) || ''' is not a finite number (column {column}; """
            f"""PANTRY_ACCEPT_NONFINITE=1 allows it)' END"""
        )
    if event_time and kind.startswith("TIMESTAMP"):
        checks.append(
            f"CASE WHEN {typed} > TIMESTAMP '{latest:%Y-%m-%d %H:%M:%S}' "
            f"""THEN 'event time ' || CAST({typed} AS VARCHAR) || ' is more than {max_event_skew():g} s ahead of """
            f"""the server''s clock (column {column}; PANTRY_MAX_EVENT_SKEW sets how far)' END"""
        )
    return checks


# Text that both pyarrow and DuckDB read as the same value: the plain forms a stream sends.
# A column with anything else (spaces, "1.0" for an integer, "nan", an offset, a date alone)
# goes to DuckDB, which says what is wrong with which row.
_PLAIN = {
    "BIGINT": (pa.int64(), r"^-?[0-9]{1,18}$"),  # pyarrow refuses a leading +
    "INTEGER": (pa.int32(), r"^-?[0-9]{1,9}$"),
    "SMALLINT": (pa.int16(), r"^-?[0-9]{1,4}$"),
    "DOUBLE": (pa.float64(), r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]{1,3})?$"),
    "TIMESTAMP": (pa.timestamp("us"), r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[ T][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?$"),
    # pandas' datetimes in Parquet; at most microseconds, as DuckDB's cast through TIMESTAMPTZ keeps
    "TIMESTAMP_NS": (pa.timestamp("ns"), r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[ T][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?$"),
    "VARCHAR": (pa.string(), None),
}


def _plain(
    batch: Batch, schema: dict[str, str], required: set[str], event_time: str | None, latest: datetime
) -> Checked | None:
    """The batch cast by pyarrow when every value is in a plain form (``_PLAIN``) and every row
    passes, as DuckDB would cast it; None when any value or column needs DuckDB's checks.

    Why: a stream drain checks a thousand rows at a time, and one DuckDB query per batch (its
    binding and planning more than its work) was the slowest step of the consumer."""
    frame = batch.frame
    if not isinstance(frame, pa.Table) or batch.refused or frame.num_rows == 0:
        return None
    by_lower = {str(c).lower(): c for c in frame.column_names}
    if len(by_lower) != frame.num_columns or any(c not in schema for c in by_lower):
        return None
    columns = []
    for column, kind in schema.items():
        if kind not in _PLAIN:
            return None
        arrow_type, pattern = _PLAIN[kind]
        if column not in by_lower:
            if column in required:
                return None
            columns.append(pa.nulls(frame.num_rows, arrow_type))
            continue
        values = frame.column(by_lower[column])
        if column in required and values.null_count:
            return None
        if pattern is not None:
            matched = pc.sum(pc.cast(pc.match_substring_regex(values, pattern), pa.int64())).as_py() or 0
            if matched != len(values) - values.null_count:
                return None
            values = pc.cast(values, arrow_type)
            if kind == "DOUBLE" and pc.all(pc.is_finite(values)).as_py() is False:
                return None  # 1e999: DuckDB says it is not a finite number
        if column == event_time and kind.startswith("TIMESTAMP") and values.null_count < len(values):
            if pc.max(values).as_py() > latest:
                return None
        columns.append(values)
    return Checked(pa.Table.from_arrays(columns, names=list(schema)))


def check(batch: Batch, schema: dict[str, str], required: set[str], event_time: str | None = None) -> Checked:
    """Cast every column to the source's type; refuse a row with an unknown column, a missing
    required value, a value that does not cast or does not fit (see the module's docstring)."""
    latest = datetime.now(UTC).replace(tzinfo=None) + timedelta(seconds=max_event_skew())
    plain = _plain(batch, schema, required, event_time, latest)
    return plain if plain is not None else checked_in_duckdb(batch, schema, required, event_time, latest)


def checked_in_duckdb(
    batch: Batch, schema: dict[str, str], required: set[str], event_time: str | None, latest: datetime
) -> Checked:
    """``check`` by one DuckDB query: every row's cast and, for a row that does not fit, why."""
    refused: dict[int, str] = dict(batch.refused)
    unknown = [c for c in batch.columns if str(c).lower() not in schema]
    lower = {str(c).lower(): c for c in batch.columns}
    for column in unknown:
        for i in batch.present(column):
            refused.setdefault(i, f"unknown column '{column}' (the model's source has {', '.join(schema)})")
    con = scratch()  # in UTC (a time without an offset is UTC, whatever the machine's zone): scratch.py
    try:
        data = batch.chosen({lower[c]: c for c in schema if c in lower})
        con.register("pushed", data)
        # each value is cast once, in an inner SELECT (``__t<n>``); the checks and the output
        # read the cast there: a timestamp's parse was repeated by every check that named it
        selects, checks, casts = [], [], ["__i"]
        for n, (column, kind) in enumerate(schema.items()):
            if column not in lower:
                selects.append(f'CAST(NULL AS {kind}) AS "{column}"')
                if column in required:
                    checks.append(f"'column ''{column}'' is missing'")
                continue
            casts += [f'"{column}"', f"{_typed(column, kind, batch.text(lower[column]))} AS __t{n}"]
            typed = f"__t{n}"
            selects.append(f'{typed} AS "{column}"')
            checks.append(
                f"""CASE WHEN "{column}" IS NOT NULL AND {typed} IS NULL """
                f"""THEN '''' || CAST("{column}" AS VARCHAR) || ''' is not a {_shown(kind)} (column {column})' END"""
            )
            checks += _strict(column, kind, typed, column == event_time, latest)
            if column in required:
                checks.append(f"""CASE WHEN "{column}" IS NULL THEN 'column ''{column}'' has no value' END""")
        reason = f"COALESCE({', '.join(checks)})" if checks else "NULL"
        typed_rows = con.sql(
            f"SELECT __i, {reason} AS __reason, {', '.join(selects)} FROM (SELECT {', '.join(casts)} FROM pushed) "
            "ORDER BY __i"
        ).to_arrow_table()
    finally:
        con.close()
    reasons = typed_rows.column("__reason")
    if reasons.null_count < len(reasons):  # some row refused: only those are read into Python
        at = pc.indices_nonzero(pc.is_valid(reasons))
        for i, why in zip(at.to_pylist(), pc.take(reasons, at).to_pylist()):
            refused.setdefault(i, why)
    table = typed_rows.drop(["__i", "__reason"])
    if refused:
        keep = np.ones(typed_rows.num_rows, dtype=bool)
        keep[[i for i in refused if i < len(keep)]] = False
        table = table.filter(pa.array(keep))
    return Checked(table, sorted(refused.items()))


def _shown(kind: str) -> str:
    """A type as a person reads it: TIMESTAMP_NS (pandas' Parquet) is a TIMESTAMP."""
    return "TIMESTAMP" if kind.startswith("TIMESTAMP_") else kind
