"""Redis key layout and value encoding, in one place.

Why JSON per field: a Java service, a Go service and this Python code must read the same
hash and get back the same types. JSON keeps int, float, string, bool and null apart
(``1`` vs ``1.0`` vs ``"1"`` vs ``true`` vs ``null``) and every language parses it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Sequence
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from sqlglot import exp

if TYPE_CHECKING:  # pandas is imported only when a column is encoded
    import pandas as pd

    from pantry.spec.windows import Window

STAMP_FIELD = "__stamp"
PREFIX = "pantry"


def key_text(key: object) -> str:
    """An entity key's one canonical text, the same for the push and for every read.

    Integers of any width (``BIGINT``, ``UBIGINT`` above 2^63, ``HUGEINT``, ``DECIMAL(38,0)``
    read as ``Decimal``) are their decimal digits, so ``1``, ``Decimal(1)`` and
    ``numpy.uint64(1)`` all name ``pantry:<view>:1``. A string is its own text, so ``"1"``
    finds the integer key 1: JSON clients in languages without 64-bit integers send large
    ids as strings. A whole float is its digits (up to 2^53, where floats stay exact); a
    fractional number, a bool or a null is not a key.
    """
    kind = type(key)
    if kind is str:
        return key  # type: ignore[return-value]
    if kind is int:
        return str(key)
    return _other_key_text(key)


def _other_key_text(key: object) -> str:
    import numbers
    from decimal import Decimal

    from pantry.errors import PantryError

    if isinstance(key, bool) or key is None or (isinstance(key, float) and math.isnan(key)):
        raise PantryError(f"{key!r} is not an entity key", field="entity key", hint="send an integer or a string")
    if isinstance(key, numbers.Integral):
        return str(int(key))
    if isinstance(key, Decimal | numbers.Real):
        whole = Decimal(str(key)) if not isinstance(key, Decimal) else key
        exact = isinstance(key, Decimal) or abs(float(key)) <= 2**53  # type: ignore[arg-type]
        if whole.is_finite() and whole == whole.to_integral_value() and exact:
            return str(int(whole))
        raise PantryError(
            f"{key!r} is not an entity key: keys are integers or strings",
            field="entity key",
            hint="send the id as an integer, or as a string of its digits",
        )
    if isinstance(key, bytes):
        return key.decode()
    if isinstance(key, dict | list | tuple | set):  # {"$ne": 1} from JSON is not a key, nor a match
        raise PantryError(
            f"{type(key).__name__} {str(key)[:40]} is not an entity key",
            field="entity key",
            hint="send an integer or a string",
        )
    return str(key)


def entity_key(view: str, key: object, cluster: bool = False) -> str:
    """``pantry:<view>:<key>``; on a Redis Cluster ``pantry:<view>:{<key>}``.

    Why the entity key is the hash tag: a Redis Cluster places a key by its tag, so every
    view's hash of one entity lives in one slot (a read of several views for one entity
    asks one node), while entities spread evenly over all slots and nodes. The push's
    newer-wins script, which must touch keys of one slot only, is called per slot group.
    """
    text = key_text(key)
    return f"{PREFIX}:{view}:{{{text}}}" if cluster else f"{PREFIX}:{view}:{text}"


def meta_key(view: str) -> str:
    """Where the last pushed stamp of a view is kept (for the absent-entity rule and metrics)."""
    return f"{PREFIX}:__meta__:{view}"


def expires_at(ttl: Window | None, stamp: datetime) -> datetime | None:
    """When a pushed value expires: ``stamp + ttl``. None without a ttl, or with one in
    months, quarters or years, which have no fixed length (the value then never expires)."""
    if ttl is None or ttl.unit in ("month", "quarter", "year"):
        return None
    return stamp + ttl.as_timedelta()


def encode(value: Any) -> str:
    if value is None:
        return "null"
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()  # numpy scalars
    if isinstance(value, float) and math.isnan(value):
        return "null"
    if isinstance(value, (datetime, date)):
        return json.dumps(value.isoformat())
    if type(value).__name__ in ("NAType", "NaTType"):
        return "null"
    return json.dumps(value)


def decode(raw: bytes | str | None) -> Any:
    if raw is None:
        return None
    return json.loads(raw)


def encode_column(values: Any) -> list[str]:
    """A whole column at once: the same text as ``encode`` per value, much faster.

    Numbers go through one ``json.dumps`` of the whole list (C speed), then are split; NaN
    becomes ``null`` as in ``encode``.
    """
    import pandas as pd

    series = pd.Series(values)
    if isinstance(series.dtype, pd.api.extensions.ExtensionDtype) and str(series.dtype).startswith(
        ("Int", "UInt", "Float")
    ):  # nullable numbers (a count over a window): the values as numpy, the missing ones null
        missing = series.isna().to_numpy()
        kind = {"I": "int64", "U": "uint64", "F": "float64"}[str(series.dtype)[0]]
        text = encode_column(series.fillna(0).astype(kind).to_numpy())
        return ["null" if gone else v for v, gone in zip(text, missing)] if missing.any() else text
    if series.dtype.kind in "fiu" and len(series):
        text = json.dumps(series.to_numpy().tolist())[1:-1].split(", ")
        return ["null" if v == "NaN" else v for v in text] if series.dtype.kind == "f" else text
    if series.dtype.kind == "b":
        return ["true" if v else "false" for v in series.to_numpy().tolist()]
    return [encode(v) for v in series.tolist()]


def _float_text(column: str) -> exp.Expression:
    """DuckDB's text for a DOUBLE is Python's ``repr`` (shortest round trip), so this is
    ``encode``'s text; NaN and NULL become ``null``, infinities what ``json.dumps`` writes."""
    col = exp.column(column, quoted=True)
    return (
        exp.case()
        .when(exp.or_(col.is_(exp.null()), exp.func("isnan", col, dialect="duckdb")), exp.Literal.string("null"))
        .when(
            exp.EQ(this=col, expression=exp.cast(exp.Literal.string("inf"), "DOUBLE")), exp.Literal.string("Infinity")
        )
        .when(
            exp.EQ(this=col, expression=exp.cast(exp.Literal.string("-inf"), "DOUBLE")), exp.Literal.string("-Infinity")
        )
        .else_(exp.cast(col, "VARCHAR"))
        .as_(column, quoted=True)
    )


def encoded_rows(
    frame: pd.DataFrame, key: str, names: Sequence[str], rows_per_slice: int = 25_000
) -> Iterator[tuple[Any, tuple[str, ...]]]:
    """``(entity key, encoded values)`` per row of a frame, encoded a slice at a time.

    Why lazily: a push hands these rows to Redis while the next slice is still being
    encoded, so encoding overlaps Redis's own work. Why DuckDB for float64 columns: it
    writes the same text as ``json.dumps`` about five times faster than Python, off the
    GIL, and most features are floats (tested against ``encode`` on edge values).
    """
    import duckdb

    floats = [n for n in names if str(frame[n].dtype) == "float64"]
    con = duckdb.connect() if floats else None
    query = exp.select(*(_float_text(n) for n in floats)).from_("part").sql("duckdb") if floats else ""
    try:
        for start in range(0, len(frame), rows_per_slice):
            part = frame.iloc[start : start + rows_per_slice]
            texts = {}
            if con is not None:
                con.register("part", part[floats])
                texts = con.execute(query).fetchnumpy()
            columns = [texts[n].tolist() if n in texts else encode_column(part[n]) for n in names]
            if columns:
                yield from zip(part[key].tolist(), zip(*columns))
    finally:
        if con is not None:
            con.close()
