"""Typed values survive the trip: the fast column encoder writes what the scalar one writes."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from pantry.online.layout import encode, encode_column, encoded_rows


@pytest.mark.parametrize(
    "values",
    [
        [0.1, 1e-7, 3.0, float("nan"), 1e20, -2.5],
        [1, 2, -3, 2**40],
        pd.array([1, None, 7], dtype="Int64"),
        pd.array([-(2**63) + 1, 2**63 - 1, None], dtype="Int64"),
        pd.array([0, None, 2**64 - 1], dtype="UInt64"),
        pd.array([3, 4], dtype="Int32"),
        pd.array([1.5, None], dtype="Float64"),
        pd.array([0.1, float("inf"), -0.0, 1e300, None], dtype="Float64"),
        pd.array([], dtype="Int64"),
        ["a", 'b"', None, "ü"],
        [True, False],
    ],
)
def test_column_encoder_matches_scalar_encoder(values: object) -> None:
    scalar = [encode(v) for v in pd.Series(values).tolist()]
    assert encode_column(values) == scalar


def test_types_round_trip() -> None:
    for value in (1, 1.0, "1", True, None, 2.5):
        decoded = json.loads(encode(value))
        assert decoded == value and type(decoded) is type(value)


def test_push_rows_encode_floats_as_json_dumps_does() -> None:
    """The push encodes float64 columns in DuckDB: its text must be exactly json.dumps's,
    edge values included, across slice boundaries, beside columns it leaves to Python."""
    edges = [1.0, -0.0, 0.1 + 0.2, 1e-7, 1e22, 1e16, 5e-324, 1.7976931348623157e308, float("inf"), float("-inf")]
    edges += [float("nan"), 123456789.123, 2.0**53, 1e-5]
    rng = np.random.default_rng(7)
    floats = np.concatenate([np.array(edges), rng.random(500), rng.standard_normal(500) * 1e9])
    with np.errstate(over="ignore"):  # 1.8e308 is inf in float32, on purpose
        halves = floats.astype("float32")
    frame = pd.DataFrame(
        {
            "k": np.arange(len(floats)),
            "x": floats,
            "n": pd.array([None if i % 5 == 0 else i for i in range(len(floats))], dtype="Int64"),
            "s": [f"s{i}" for i in range(len(floats))],
            "h": halves,
        }
    )
    frame.loc[3, "x"] = None

    def expected(value: object) -> str:
        if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
            return "null"
        return json.dumps(value)

    got = list(encoded_rows(frame, "k", ["x", "n", "s", "h"], rows_per_slice=97))
    assert [key for key, _ in got] == list(range(len(floats)))
    for (_, texts), row in zip(got, frame[["x", "n", "s", "h"]].astype(object).itertuples(index=False)):
        assert list(texts) == [
            expected(float(row.x)),
            expected(None if row.n is pd.NA else int(row.n)),
            expected(row.s),
            expected(float(row.h)),
        ]
    assert got[1][1][0] == "-0.0" and got[8][1][0] == "Infinity" and got[3][1][0] == "null"
