"""An engine's Arrow answer as the frame the embedded path returns.

Why convert: a user's code must not change with the engine. DuckDB's path gives whole-number
columns as pandas' nullable ``Int64`` (a sum of integers stays an integer, as MetricFlow
returns it) and dates as ``datetime64``. PostgreSQL answers a sum of ``bigint`` as
``numeric`` and an average as ``numeric`` too: a decimal of scale 0 becomes ``Int64``, any
other decimal a float (DuckDB's ``AVG`` is a double).
"""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc


def _numeric(array: pa.ChunkedArray) -> pa.ChunkedArray:
    """PostgreSQL's ``numeric`` as its driver hands it (text): whole numbers, written without
    a decimal point (a sum of integers), are integers; anything else is a double."""
    text = pa.chunked_array([c.storage if isinstance(c, pa.ExtensionArray) else c for c in array.chunks], pa.string())
    if pc.any(pc.match_substring(text, ".")).as_py() or pc.any(pc.match_substring_regex(text, "[eEN]")).as_py():
        return pc.cast(text, pa.float64())
    return pc.cast(text, pa.int64())


def _column(array: pa.ChunkedArray, field: pa.Field) -> pa.ChunkedArray:
    kind = array.type
    if pa.types.is_decimal(kind):
        return pc.cast(array, pa.int64()) if kind.scale == 0 else pc.cast(array, pa.float64())
    if (field.metadata or {}).get(b"ADBC:postgresql:typname") == b"numeric":
        return _numeric(array)
    return array


def arrow_frame(table: pa.Table) -> pd.DataFrame:
    table = pa.table([_column(c, f) for c, f in zip(table.columns, table.schema)], names=table.column_names)
    frame = table.to_pandas(date_as_object=False)
    for name, field in zip(frame.columns, table.schema):
        if pa.types.is_integer(field.type):
            frame[name] = frame[name].astype("Int64")
    return frame
