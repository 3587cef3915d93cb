"""The kinds the Dagster UI shows on each asset name what computes it: DuckDB by default,
PostgreSQL or Spark when ``PANTRY_ENGINE`` names one (issue 29: they all said duckdb).
Building the code location connects to no engine, so nothing listens on these URLs."""

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
    metric = graph.get(metric_key("flights")).tags
    feature = graph.get(feature_key("carrier_ops", "flights_7d")).tags
    assert {t.removeprefix("dagster/kind/") for t in metric if t.startswith("dagster/kind/")} == {kind, "sql"}
    assert {t.removeprefix("dagster/kind/") for t in feature if t.startswith("dagster/kind/")} == {kind, "feature"}
