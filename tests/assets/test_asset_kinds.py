"""The kinds the Dagster UI shows on each asset name what computes it: DuckDB by default,
PostgreSQL or Spark when ``PANTRY_ENGINE`` names one (issue 29: they all said duckdb), and a
metric's ``sql`` is the SQL that engine runs, over its own tables. Building the code
location connects to no engine, so nothing listens on these URLs."""

from __future__ import annotations

from pathlib import Path

import pytest

from pantry_dagster.assets.location import build_definitions
from pantry_dagster.keys import feature_key, metric_key


@pytest.mark.parametrize(
    ("engine", "kind"),
    [
        (None, "duckdb"),
        ("duckdb", "duckdb"),
        ("postgresql://pantry@127.0.0.1:1/shop", "postgres"),
        ("sc://127.0.0.1:1", "spark"),
    ],
)
def test_metric_and_feature_assets_show_the_engine_as_their_kind(
    demo_defs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, engine: str | None, kind: str
) -> None:
    if engine is None:
        monkeypatch.delenv("PANTRY_ENGINE", raising=False)
    else:
        monkeypatch.setenv("PANTRY_ENGINE", engine)
    graph = build_definitions(str(demo_defs), str(tmp_path / "home")).resolve_asset_graph()
    sql = graph.get(metric_key("flights")).metadata["sql"].value
    if kind == "spark":  # the source's Parquet read in place, Spark's quoting
        assert f"parquet.`{demo_defs / 'data' / 'flights.parquet'}`" in sql and "src.flights" not in sql, sql
    elif kind == "postgres":  # the demo's sources are files, which a warehouse does not read: said so
        assert "'flights' is not computed on this engine" in sql and "not a table of the engine" in sql, sql
    else:  # the compiled definition over DuckDB's source views
        assert "src.flights" in sql, sql
    metric = graph.get(metric_key("flights")).tags
    feature = graph.get(feature_key("carrier_ops", "flights_7d")).tags
    assert {t.removeprefix("dagster/kind/") for t in metric if t.startswith("dagster/kind/")} == {kind, "sql"}
    assert {t.removeprefix("dagster/kind/") for t in feature if t.startswith("dagster/kind/")} == {kind, "feature"}
