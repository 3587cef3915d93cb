"""Feature view multi_assets on a real Dagster instance, checked against the oracle."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from pantry_dagster.assets.features import feature_key
from pantry_dagster.assets.location import build_definitions
from tests.conftest import dagster_instance
from tests.features.oracle import expected
from tests.features.test_historical_oracle import FEATURES, SPECS, TTL, build, compare, generated_rows

RANGE = ("dagster/asset_partition_range_start", "dagster/asset_partition_range_end")


@pytest.fixture(scope="module", autouse=True)
def each_offline_store(offline_uri: str | None) -> str | None:
    """Every test here runs against the local DuckDB file and against S3."""
    return offline_uri


@pytest.fixture
def project(tmp_path: Path):  # noqa: ANN201
    rows = generated_rows()
    store = build(tmp_path, rows)
    return store, rows


def test_backfill_range_then_reads_match_the_oracle(project, dagster_home: Path) -> None:  # noqa: ANN001
    store, rows = project
    defs = build_definitions(str(store.defs), str(store.home), offline_uri=store.offline_uri)
    view = defs.resolve_assets_def(feature_key("shopper", "revenue_7d"))
    with dagster_instance(dagster_home) as instance:
        result = dg.materialize([view], instance=instance, tags={RANGE[0]: "2024-01-01", RANGE[1]: "2024-01-12"})
        assert result.success
        assert len(instance.fetch_materializations(feature_key("shopper", "median_7d"), limit=50).records) == 12
        record = instance.fetch_materializations(feature_key("shopper", "revenue_7d"), limit=1).records[0]
        assert record.asset_materialization.metadata["partition_range"].value == "2024-01-01..2024-01-12"
        # each partition's own figures, on its own materialization (not the last day's copied onto all 12)
        observed = {
            r.partition_key: r.asset_materialization.metadata
            for r in instance.fetch_materializations(feature_key("shopper", "revenue_7d"), limit=100).records
        }
        assert sorted(observed) == [f"2024-01-{d:02d}" for d in range(1, 13)]
        for day in (date(2024, 1, 5), date(2024, 1, 12)):
            metadata = observed[day.isoformat()]
            at = datetime(day.year, day.month, day.day) + timedelta(days=1)
            present = [k for k in range(1, 9) if expected(rows, [day], TTL, SPECS, k, at)["revenue_7d"] is not None]
            assert metadata["entities_present"].value == len(present)
            values = [expected(rows, [day], TTL, SPECS, k, at)["revenue_7d"] for k in present]
            assert metadata["mean"].value == pytest.approx(sum(values) / len(values))
            assert metadata["max"].value == pytest.approx(max(values))
            assert metadata["null_rate"].value == 0
        loaded = defs.get_asset_value_loader(instance=instance).load_asset_value(
            feature_key("shopper", "status_last"), partition_key="2024-01-05"
        )
    days = [date(2024, 1, 1) + timedelta(days=i) for i in range(12)]
    entity_df = pd.DataFrame(
        {
            "customer_id": [1, 2, 3, 7, 9],
            "event_timestamp": pd.to_datetime(
                ["2024-01-04", "2024-01-08 10:00", "2024-01-13", "2024-01-09", "2024-01-06"], format="ISO8601"
            ),
        }
    )
    compare(store, rows, days, entity_df)
    want = {k: expected(rows, days, TTL, SPECS, k, datetime(2024, 1, 6))["status_last"] for k in range(1, 9)}
    assert dict(zip(loaded["customer_id"], loaded["status_last"])) == {k: v for k, v in want.items() if v is not None}
    assert set(loaded["event_timestamp"].dt.tz_localize(None)) == {pd.Timestamp("2024-01-06")}


def test_subset_reports_only_selected_features(project, dagster_home: Path) -> None:  # noqa: ANN001
    store, _ = project
    defs = build_definitions(str(store.defs), str(store.home), offline_uri=store.offline_uri)
    view = defs.resolve_assets_def(feature_key("shopper", "revenue_7d"))
    with dagster_instance(dagster_home) as instance:
        result = dg.materialize(
            [view], instance=instance, partition_key="2024-01-05", selection=[feature_key("shopper", "max_7d")]
        )
        assert result.success
        assert [e.asset_key for e in result.get_asset_materialization_events()] == [feature_key("shopper", "max_7d")]


def test_feature_specs_carry_metadata(project) -> None:  # noqa: ANN001
    store, _ = project
    defs = build_definitions(str(store.defs), str(store.home), offline_uri=store.offline_uri)
    graph = defs.resolve_asset_graph()
    keys = sorted(k.to_user_string() for k in graph.get_all_asset_keys() if k.path[0] == "features")
    assert keys == sorted([f"features/{f.replace(':', '/')}" for f in FEATURES] + ["features/recent/revenue_2d"])
    node = graph.get(feature_key("shopper", "revenue_7d"))
    assert node.owners == ["team:growth-ml"] and node.tags["pii"] == "false"
    assert node.backfill_policy == dg.BackfillPolicy.single_run() and node.freshness_policy is not None
    lineage = node.metadata["dagster/column_lineage"].deps_by_column
    assert [(d.asset_key.to_user_string(), d.column_name) for d in lineage["revenue_7d"]] == [
        ("sources/orders", "amount")
    ]
    assert [(d.asset_key.to_user_string(), d.column_name) for d in lineage["customer_id"]] == [
        ("sources/orders", "customer_id")
    ]
    assert [c.name for c in node.metadata["dagster/column_schema"].columns] == [
        "customer_id",
        "event_timestamp",
        "revenue_7d",
    ]
    ref = node.metadata["dagster/code_references"].code_references[0]
    assert "revenue_7d" in Path(ref.file_path).read_text().splitlines()[ref.line_number - 1]
    before = {k: graph.get(k).code_version for k in graph.get_all_asset_keys() if k.path[0] == "features"}
    yaml_file = store.defs / "views.yaml"
    yaml_file.write_text(
        yaml_file.read_text().replace(
            "{name: revenue_7d, measure: orders.revenue, window: 7 days}",
            "{name: revenue_7d, measure: orders.revenue, window: 8 days}",
        )
    )
    after_graph = build_definitions(
        str(store.defs), str(store.home), offline_uri=store.offline_uri
    ).resolve_asset_graph()
    changed = {k.path[-1] for k, v in before.items() if after_graph.get(k).code_version != v}
    assert "revenue_7d" in changed and "min_2d" in changed  # W grew, so presence changed for every feature


def test_catalog_lists_features_with_latest_stats(project, dagster_home: Path) -> None:  # noqa: ANN001
    store, rows = project
    defs = build_definitions(str(store.defs), str(store.home), offline_uri=store.offline_uri)
    view = defs.resolve_assets_def(feature_key("shopper", "revenue_7d"))
    with dagster_instance(dagster_home) as instance:
        assert dg.materialize([view], instance=instance, tags={RANGE[0]: "2024-01-01", RANGE[1]: "2024-01-04"}).success
    entries = {e["name"]: e for e in store.catalog("shopper")}
    entry = entries["shopper:revenue_7d"]
    assert entry["kind"] == "feature" and entry["owner"] == "growth-ml" and entry["tags"] == {"pii": "false"}
    assert entry["materialized_days"] == "2024-01-01..2024-01-04"
    at = datetime(2024, 1, 5)
    present = [
        k for k in range(1, 9) if expected(rows, [date(2024, 1, 4)], TTL, SPECS, k, at)["revenue_7d"] is not None
    ]
    assert entry["latest_stats"]["entities_present"] == len(present)
    assert entry["source_columns"] == ["orders.amount", "orders.customer_id", "orders.ordered_at"]
    assert [e["name"] for e in store.catalog("p90")] == ["shopper:p90_7d"]


def test_a_failed_run_keeps_the_previous_tiles(project, dagster_home: Path) -> None:  # noqa: ANN001
    store, _ = project
    defs = build_definitions(str(store.defs), str(store.home), offline_uri=store.offline_uri)
    view = defs.resolve_assets_def(feature_key("shopper", "revenue_7d"))
    entity_df = pd.DataFrame(
        {"customer_id": [1, 2, 3], "event_timestamp": pd.to_datetime(["2024-01-05", "2024-01-06", "2024-01-07"])}
    )
    with dagster_instance(dagster_home) as instance:
        assert dg.materialize([view], instance=instance, tags={RANGE[0]: "2024-01-01", RANGE[1]: "2024-01-06"}).success
        before = store.get_historical_features(entity_df, FEATURES)
        (store.defs / "data" / "orders.parquet").write_bytes(b"broken")
        failed = dg.materialize([view], instance=instance, partition_key="2024-01-06", raise_on_error=False)
        assert not failed.success
    pd.testing.assert_frame_equal(store.get_historical_features(entity_df, FEATURES), before)
