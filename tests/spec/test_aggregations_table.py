"""The table of aggregations (``spec/aggregations.py``) is complete for every rule the code
asks of it, so a new aggregation is one entry: each one a tile can keep says how, and each
one the definition check binds has its SQL. Checked against DuckDB itself, by hand values."""

from __future__ import annotations

import duckdb
import pytest

from pantry.spec.aggregations import AGGREGATIONS, aggregation

VALUES = [3.0, 1.0, 4.0, 1.0, 5.0]  # by hand: sum 14, count 5, mean 2.8, min 1, max 5, 4 distinct, median 3


@pytest.mark.parametrize("name", sorted(AGGREGATIONS))
def test_each_aggregation_says_how_a_tile_keeps_it_and_how_tiles_merge(name: str) -> None:
    found = AGGREGATIONS[name]
    assert found.combine is not None or (found.tile_parts and found.merge), name
    assert found.combine is None or not found.tile_parts, f"{name}: one way to keep it, not two"
    if found.quantile:
        assert "{kind}" in (found.merge or "") and "{p}" in (found.merge or ""), name


def test_the_tile_rules_give_duckdbs_own_answers_over_two_tiles() -> None:
    """Each aggregation over five values split into two tiles, merged by the table's rules,
    equals the hand value (and DuckDB's own aggregate over all five)."""
    expected = {"sum": 14, "count": 5, "average": 2.8, "min": 1, "max": 5, "count_distinct": 4, "median": 3}
    con = duckdb.connect()
    con.execute("CREATE TABLE t AS SELECT * FROM (VALUES (0, 3.0), (0, 1.0), (1, 4.0), (1, 1.0), (1, 5.0)) v(tile, x)")
    for name, want in expected.items():
        found = aggregation(name)
        assert found is not None
        if found.combine is not None:
            parts = {"part": found.duckdb.format("x")}
            merge = f"{found.combine.upper()}(part) FILTER (WHERE true)"
        else:
            parts = {part: sql.format(v="x") for part, sql in found.tile_parts}
            merge = found.merge.format(inside="true", kind="quantile_cont", p=found.percentile, **{p: p for p in parts})
        tiles = ", ".join(f"{sql} AS {part}" for part, sql in parts.items())
        (got,) = con.execute(f"SELECT {merge} FROM (SELECT {tiles} FROM t GROUP BY tile)").fetchall()[0]
        (whole,) = con.execute(f"SELECT {found.duckdb.format('x')} FROM t").fetchall()[0]
        assert float(got) == pytest.approx(want) == pytest.approx(float(whole)), name


def test_a_percentile_needs_its_fraction_and_a_median_has_one() -> None:
    assert aggregation("median").percentile == 0.5
    assert aggregation("percentile").percentile is None  # agg_params.percentile is required
    assert aggregation("avg") is aggregation("average")  # MetricFlow's other spelling
