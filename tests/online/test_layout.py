"""Typed values survive the trip: the fast column encoder writes what the scalar one writes."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from pantry.online.layout import encode, encode_column


@pytest.mark.parametrize(
    "values",
    [
        [0.1, 1e-7, 3.0, float("nan"), 1e20, -2.5],
        [1, 2, -3, 2**40],
        pd.array([1, None, 7], dtype="Int64"),
        pd.array([1.5, None], dtype="Float64"),
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
