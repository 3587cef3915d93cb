"""The quick check of a pushed batch (pyarrow, ``rows._plain``) against DuckDB's (the oracle,
``rows.checked_in_duckdb``): for batches in the plain forms a stream sends, the same typed
table, value by value and type by type; for anything else, no quick answer, so DuckDB's
refusals (each row's reason) stand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa
import pytest

from pantry.ingest.rows import _plain as plain
from pantry.ingest.rows import as_batch, check, checked_in_duckdb

SCHEMA = {
    "event_id": "BIGINT",
    "customer_id": "INTEGER",
    "small": "SMALLINT",
    "ts": "TIMESTAMP",
    "amount": "DOUBLE",
    "kind": "VARCHAR",
}
REQUIRED = {"event_id", "ts"}
LATEST = datetime.now(UTC).replace(tzinfo=None) + timedelta(minutes=5)


def _float_text(rng: np.random.Generator) -> str:
    value = float(rng.normal(0, 10 ** int(rng.integers(-3, 9))))
    form = int(rng.integers(0, 5))
    if form == 0:
        return repr(value)
    if form == 1:
        return f"{value:.3e}".replace("e", "E")
    if form == 2:
        return f"{abs(value):.0f}."  # "12."
    if form == 3:
        return f".{int(rng.integers(0, 10**6))}"  # ".5"
    return f"{value:+.6f}"


def _batch(rng: np.random.Generator, n: int) -> pa.Table:
    now = datetime(2026, 12, 1, 8)
    ts = []
    for i in range(n):
        at = now + timedelta(microseconds=int(rng.integers(0, 10**11)))
        digits = int(rng.integers(0, 7))
        text = at.strftime("%Y-%m-%d" + ("T" if i % 3 == 0 else " ") + "%H:%M:%S")
        ts.append(text + (f".{at.microsecond:06d}"[: digits + 1] if digits else ""))
    maybe = lambda v: None if rng.random() < 0.1 else v  # noqa: E731 - optional columns have gaps
    return pa.table(
        {
            "event_id": [str(int(rng.integers(-(10**17), 10**17))) for _ in range(n)],
            "customer_id": [maybe(f"{'-' if i % 5 == 0 else ''}{int(rng.integers(0, 10**9))}") for i in range(n)],
            "small": [maybe(str(int(rng.integers(-9999, 9999)))) for _ in range(n)],
            "ts": ts,
            "amount": [maybe(_float_text(rng)) for _ in range(n)],
            "kind": [maybe(str(rng.choice(["click", "bûy", "", "x" * 40, "ünïcode ✓"]))) for _ in range(n)],
        },
        schema=pa.schema([(c, pa.string()) for c in SCHEMA]),
    )


@pytest.mark.parametrize("time_kind", ["TIMESTAMP", "TIMESTAMP_NS"])  # TIMESTAMP_NS: pandas' datetimes in Parquet
@pytest.mark.parametrize("seed", range(6))
def test_a_plain_batch_is_typed_as_duckdb_types_it(seed: int, time_kind: str) -> None:
    rng = np.random.default_rng(seed)
    rows = _batch(rng, int(rng.integers(1, 400)))
    if seed % 2:  # an optional column absent from the batch: nulls of its type
        rows = rows.drop(["small"])
    schema = {**SCHEMA, "ts": time_kind}
    quick = plain(as_batch(rows), schema, REQUIRED, "ts", LATEST)
    oracle = checked_in_duckdb(as_batch(rows), schema, REQUIRED, "ts", LATEST)
    assert quick is not None and oracle.refused == [] and quick.refused == []
    assert quick.table.schema == oracle.table.schema
    assert quick.table.equals(oracle.table), (quick.table.to_pylist()[:3], oracle.table.to_pylist()[:3])


@pytest.mark.parametrize(
    ("column", "text"),
    [
        ("event_id", " 5"),  # spaces
        ("customer_id", "+5"),  # a plus sign (pyarrow refuses it, DuckDB reads 5)
        ("event_id", "1.0"),  # a whole number written as a decimal
        ("event_id", "99999999999999999999"),  # past BIGINT
        ("small", "40000"),  # past SMALLINT
        ("amount", "nan"),
        ("amount", "1e999"),
        ("amount", "1,5"),
        ("ts", "2026-12-06"),  # a date alone
        ("ts", "2026-12-06 11:00:00Z"),
        ("ts", "2026-12-06 11:00:00+02:00"),  # an offset: DuckDB converts it to UTC
        ("ts", "2026-12-06 11:00:00.1234567"),
        ("ts", None),  # a required value missing
        ("ts", "2999-01-01 00:00:00"),  # past the skew (a fixed text: every xdist worker collects the same ids)
    ],
)
def test_anything_else_goes_to_duckdb_and_gets_its_answer(column: str, text: str | None) -> None:
    rows = _batch(np.random.default_rng(1), 50)
    values = rows.column(column).to_pylist()
    values[7] = text
    rows = rows.set_column(rows.column_names.index(column), column, pa.array(values, pa.string()))
    assert plain(as_batch(rows), SCHEMA, REQUIRED, "ts", LATEST) is None
    got = check(as_batch(rows), SCHEMA, REQUIRED, "ts")
    want = checked_in_duckdb(as_batch(rows), SCHEMA, REQUIRED, "ts", LATEST)
    assert got.refused == want.refused and got.table.equals(want.table)


def test_an_unknown_column_goes_to_duckdb() -> None:
    rows = _batch(np.random.default_rng(2), 20).append_column("extra", pa.array(["x"] * 20))
    assert plain(as_batch(rows), SCHEMA, REQUIRED, "ts", LATEST) is None
    refused = check(as_batch(rows), SCHEMA, REQUIRED, "ts").refused
    assert len(refused) == 20 and "unknown column 'extra'" in refused[0][1]
