"""A pushed batch, checked row by row against the model's source columns.

Why DuckDB does the checking: the source's column types are DuckDB types, and TRY_CAST
says exactly which value does not fit which column, for a million rows as for one. A bad
row is refused with its reason; the good rows of the same batch are kept.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import pyarrow as pa

from pantry.offline.scratch import scratch


@dataclass
class Checked:
    """The rows that fit, typed as the source, and each refused row's index and reason."""

    table: pa.Table
    refused: list[tuple[int, str]] = field(default_factory=list)


def as_frame(rows: Any) -> pd.DataFrame:
    """A DataFrame, a pyarrow table or a list of dicts, as one DataFrame. Dict rows arrive as
    text (JSON, CSV, stream fields), so they are kept as text and cast by DuckDB."""
    if isinstance(rows, pd.DataFrame):
        return rows.reset_index(drop=True)
    if isinstance(rows, pa.Table):
        return rows.to_pandas()
    if isinstance(rows, list) and all(isinstance(r, dict) for r in rows):
        frame = pd.DataFrame.from_records(rows)
        return frame.astype(object).where(frame.notna(), None).map(lambda v: v if v is None else str(v))
    raise TypeError("rows must be a DataFrame, a pyarrow table or a list of dicts")


def check(frame: pd.DataFrame, schema: dict[str, str], required: set[str]) -> Checked:
    """Cast every column to the source's type; refuse a row with an unknown column, a missing
    required value, or a value that does not cast."""
    refused: dict[int, str] = {}
    unknown = [c for c in frame.columns if str(c).lower() not in schema]
    lower = {str(c).lower(): c for c in frame.columns}
    for column in unknown:
        for i in frame.index[frame[column].notna()]:
            refused.setdefault(int(i), f"unknown column '{column}' (the model's source has {', '.join(schema)})")
    con = scratch()
    try:
        data = frame[[lower[c] for c in schema if c in lower]].copy()
        data.columns = [str(c).lower() for c in data.columns]
        data["__i"] = range(len(data))
        con.register("pushed", data)
        selects, checks = [], []
        for column, kind in schema.items():
            if column not in data.columns:
                selects.append(f'CAST(NULL AS {kind}) AS "{column}"')
                if column in required:
                    checks.append(f"'column ''{column}'' is missing'")
                continue
            selects.append(f'TRY_CAST("{column}" AS {kind}) AS "{column}"')
            checks.append(
                f"""CASE WHEN "{column}" IS NOT NULL AND TRY_CAST("{column}" AS {kind}) IS NULL """
                f"""THEN '''' || CAST("{column}" AS VARCHAR) || ''' is not a {_shown(kind)} (column {column})' END"""
            )
            if column in required:
                checks.append(f"""CASE WHEN "{column}" IS NULL THEN 'column ''{column}'' has no value' END""")
        reason = f"COALESCE({', '.join(checks)})" if checks else "NULL"
        typed = con.sql(
            f"SELECT __i, {reason} AS __reason, {', '.join(selects)} FROM pushed ORDER BY __i"
        ).to_arrow_table()
    finally:
        con.close()
    reasons = typed.column("__reason").to_pylist()
    for i, why in enumerate(reasons):
        if why is not None:
            refused.setdefault(i, why)
    keep = pa.array([i not in refused for i in range(typed.num_rows)])
    table = typed.filter(keep).drop(["__i", "__reason"])
    return Checked(table, sorted(refused.items()))


def _shown(kind: str) -> str:
    """A type as a person reads it: TIMESTAMP_NS (pandas' Parquet) is a TIMESTAMP."""
    return "TIMESTAMP" if kind.startswith("TIMESTAMP_") else kind
