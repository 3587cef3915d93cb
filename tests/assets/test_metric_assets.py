"""Metric assets on a real Dagster instance, writing a real DuckDB file."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path

import dagster as dg
import duckdb
import pandas as pd
import pytest
from dagster._core.definitions.observe import observe  # not re-exported in 1.13; what `dagster asset observe` runs

from pantry import PantryError, Store
from pantry.api.facts import metric_facts
from pantry.offline.metric_tables import read_days, replace_days
from pantry_dagster.assets.location import build_definitions
from pantry_dagster.assets.metrics import build_metric_assets, metric_key
from pantry_dagster.resources.alerts import SlackAlerts
from pantry_dagster.resources.offline import OfflineStore
from tests.conftest import dagster_instance

REPO = Path(__file__).resolve().parents[2]
RANGE_TAGS = ("dagster/asset_partition_range_start", "dagster/asset_partition_range_end")


@pytest.fixture(autouse=True)
def each_offline_store(offline_uri_per_test: str | None) -> str | None:
    """Every test here runs against the local DuckDB file and against S3 (a prefix per test)."""
    return offline_uri_per_test


@pytest.fixture
def shop_copy(shop: tuple[Path, dict[str, pd.DataFrame]], tmp_path: Path) -> Path:
    defs = tmp_path / "metrics_defs"
    shutil.copytree(shop[0], defs)
    return defs


def _materialize(
    defs: Path, home: Path, names: list[str], start: str, end: str, instance: dg.DagsterInstance
) -> dg.ExecuteInProcessResult:
    store = Store(defs=defs, home=home)
    facts = metric_facts(store.definitions)
    assets = [a for a in build_metric_assets(facts) if a.key.path[-1] in names]
    return dg.materialize(
        assets,
        instance=instance,
        resources={"offline": OfflineStore(defs=str(defs), home=str(home)), "alerts": SlackAlerts(home=str(home))},
        tags={RANGE_TAGS[0]: start, RANGE_TAGS[1]: end},
    )


def _stored(home: Path, name: str) -> pd.DataFrame:
    """The metric's stored table, read back through the store the test runs on (file or S3)."""
    con = duckdb.connect()
    try:
        assert Store(home=home).offline.attach(con, views=[], metrics=[name])
        return read_days(con, name, prefix="offline.")
    finally:
        con.close()


ALL_TYPES = [
    "revenue",
    "completed_revenue",
    "buyers",
    "median_amount",
    "revenue_per_buyer",
    "revenue_7d",
    "revenue_mtd",
    "revenue_wow",
    "orders_filled",
]


# On S3 what differs is the store's write and read path, not the compiler: the S3 variants
# check it with a plain sum and a window reaching before the range; every type is the local run's
S3_TYPES = ["revenue", "revenue_7d"]


def test_partition_equals_query_at_day_grain_for_every_metric_type(
    shop_copy: Path, tmp_path: Path, dagster_home: Path, each_offline_store: str | None
) -> None:
    home = tmp_path / "home"
    names = ALL_TYPES if each_offline_store is None else S3_TYPES
    with dagster_instance(dagster_home) as instance:
        # 13 days across a month's end: the month-to-date total restarts, the 7-day window and
        # the week-over-week offset reach back before the range (47 days took 3x as long)
        result = _materialize(shop_copy, home, names, "2024-01-25", "2024-02-06", instance)
        assert result.success
    store = Store(defs=shop_copy, home=home)
    for name in names:
        stored = _stored(home, name)
        expected = store.query(name, group_by="metric_time__day", start_time="2024-01-25", end_time="2024-02-06")
        expected["metric_time__day"] = pd.to_datetime(expected["metric_time__day"]).dt.date
        assert stored["metric_time__day"].min() >= date(2024, 1, 25), name
        assert stored["metric_time__day"].max() == date(2024, 2, 6), name
        pd.testing.assert_frame_equal(
            stored.reset_index(drop=True), expected.reset_index(drop=True), check_dtype=False, obj=name
        )


def test_bar_partitions_hold_the_hand_computed_values(demo_defs: Path, tmp_path: Path, dagster_home: Path) -> None:
    home = tmp_path / "home"
    with dagster_instance(dagster_home) as instance:
        assert _materialize(
            demo_defs,
            home,
            ["revenue_per_classic_drink", "revenue_per_signature_cocktail"],
            "2022-01-03",
            "2022-01-05",
            instance,
        ).success
        events = instance.fetch_materializations(metric_key("revenue_per_classic_drink"), limit=10).records
        assert {e.partition_key for e in events} == {"2022-01-03", "2022-01-04", "2022-01-05"}
        metadata = events[0].asset_materialization.metadata
        assert metadata["rows_written"].value == 3 and metadata["partition_range"].value == "2022-01-03..2022-01-05"
        # each partition's materialization carries its own figures, not the last day's copied onto all
        observed = {r.partition_key: r.asset_materialization.metadata["value"].value for r in events}
        assert observed == pytest.approx({"2022-01-03": 11.0, "2022-01-04": 9.6, "2022-01-05": 79 / 7})
        assert {r.asset_materialization.metadata["rows"].value for r in events} == {1}
        assert len(instance.fetch_observations(metric_key("revenue_per_classic_drink"), limit=10).records) == 0
        checks = {
            r.event.dagster_event.event_specific_data.check_name: r.event.dagster_event.event_specific_data
            for name in ("value", "rows_and_nulls")
            for r in [
                instance.event_log_storage.get_latest_asset_check_execution_by_key(
                    [dg.AssetCheckKey(metric_key("revenue_per_classic_drink"), name)]
                )[dg.AssetCheckKey(metric_key("revenue_per_classic_drink"), name)]
            ]
        }
        # 11.0 and 9.6 make the band [9.6 - 1.4, 11.0 + 1.4]; 79/7 = 11.29 is inside it
        assert checks["value"].passed and checks["rows_and_nulls"].passed
    assert list(_stored(home, "revenue_per_classic_drink")["revenue_per_classic_drink"]) == pytest.approx(
        [11.0, 9.6, 79 / 7]
    )
    assert list(_stored(home, "revenue_per_signature_cocktail")["revenue_per_signature_cocktail"]) == pytest.approx(
        [23.8, 27.0, 80 / 3]
    )


def test_rematerializing_replaces_the_partition(
    shop_copy: Path, tmp_path: Path, dagster_home: Path, shop: tuple[Path, dict[str, pd.DataFrame]]
) -> None:
    home = tmp_path / "home"
    with dagster_instance(dagster_home) as instance:
        assert _materialize(shop_copy, home, ["revenue"], "2024-01-01", "2024-01-10", instance).success
        before = _stored(home, "revenue")
        orders = shop[1]["orders"].copy()
        orders["amount"] = orders["amount"] * 2
        orders.to_parquet(shop_copy / "data" / "orders.parquet", index=False)
        assert _materialize(shop_copy, home, ["revenue"], "2024-01-03", "2024-01-03", instance).success
    after = _stored(home, "revenue").set_index("metric_time__day")["revenue"]
    old = before.set_index("metric_time__day")["revenue"]
    assert len(after) == len(old)
    assert after[date(2024, 1, 3)] == 2 * old[date(2024, 1, 3)]
    assert after[date(2024, 1, 4)] == old[date(2024, 1, 4)]


def test_a_failed_write_leaves_the_previous_version(tmp_path: Path) -> None:
    con = duckdb.connect(str(tmp_path / "offline.duckdb"))
    good = pd.DataFrame({"metric_time__day": [date(2024, 1, 1), date(2024, 1, 2)], "revenue": [1.5, 2.5]})
    replace_days(con, "revenue", good, date(2024, 1, 1), date(2024, 1, 2))
    bad = pd.DataFrame({"metric_time__day": [date(2024, 1, 1)], "revenue": ["not a number"]})
    with pytest.raises(duckdb.Error):
        replace_days(con, "revenue", bad, date(2024, 1, 1), date(2024, 1, 1))
    assert read_days(con, "revenue")["revenue"].tolist() == [1.5, 2.5]
    reshaped = pd.DataFrame({"metric_time__day": [date(2024, 1, 1)], "segment": ["a"], "revenue": [1.0]})
    with pytest.raises(Exception, match="the definition changed shape"):
        replace_days(con, "revenue", reshaped, date(2024, 1, 1), date(2024, 1, 1))
    assert read_days(con, "revenue")["revenue"].tolist() == [1.5, 2.5]


def test_a_failed_run_keeps_the_stored_partition(shop_copy: Path, tmp_path: Path, dagster_home: Path) -> None:
    home = tmp_path / "home"
    with dagster_instance(dagster_home) as instance:
        assert _materialize(shop_copy, home, ["revenue"], "2024-01-01", "2024-01-05", instance).success
        before = _stored(home, "revenue")
        store = Store(defs=shop_copy, home=home)
        facts = metric_facts(store.definitions)
        (shop_copy / "data" / "orders.parquet").write_bytes(b"not parquet")
        asset = [a for a in build_metric_assets(facts) if a.key == metric_key("revenue")]
        result = dg.materialize(
            asset,
            instance=instance,
            partition_key="2024-01-03",
            raise_on_error=False,
            resources={
                "offline": OfflineStore(defs=str(shop_copy), home=str(home)),
                "alerts": SlackAlerts(home=str(home)),
            },
        )
        assert not result.success
    pd.testing.assert_frame_equal(_stored(home, "revenue"), before)


def test_asset_metadata_lineage_code_refs_and_version(shop_copy: Path, tmp_path: Path) -> None:
    defs = build_definitions(str(shop_copy), str(tmp_path / "home"))
    graph = defs.resolve_asset_graph()
    node = graph.get(metric_key("completed_revenue"))
    spec_meta = node.metadata
    lineage = spec_meta["dagster/column_lineage"]
    deps = lineage.deps_by_column["completed_revenue"]
    assert [(d.asset_key.to_user_string(), d.column_name) for d in deps] == [("sources/orders", "amount")]
    assert [(d.asset_key.to_user_string(), d.column_name) for d in lineage.deps_by_column["metric_time__day"]] == [
        ("sources/orders", "ordered_at")
    ]
    ref = spec_meta["dagster/code_references"].code_references[0]
    assert ref.file_path == str((shop_copy / "shop.yaml").resolve())
    lines = (shop_copy / "shop.yaml").read_text().splitlines()
    assert lines[ref.line_number - 1].strip() == "- name: completed_revenue"
    assert [c.name for c in spec_meta["dagster/column_schema"].columns] == ["metric_time__day", "completed_revenue"]
    assert node.owners == ["team:finance"]
    assert node.tags["tier"] == "gold"
    assert node.freshness_policy is not None
    assert node.backfill_policy == dg.BackfillPolicy.single_run()
    assert {metric_key("revenue"), dg.AssetKey(["sources", "orders"])} <= set(graph.get_all_asset_keys())
    assert dg.AssetKey(["sources", "orders"]) in node.parent_keys
    old_version = node.code_version
    text = (shop_copy / "shop.yaml").read_text().replace("= 'completed'", "= 'returned'")
    (shop_copy / "shop.yaml").write_text(text)
    changed = build_definitions(str(shop_copy), str(tmp_path / "home")).resolve_asset_graph()
    assert changed.get(metric_key("completed_revenue")).code_version != old_version
    assert changed.get(metric_key("revenue")).code_version == graph.get(metric_key("revenue")).code_version


def test_daily_schedule_requests_the_newest_partition(shop_copy: Path, tmp_path: Path) -> None:
    defs = build_definitions(str(shop_copy), str(tmp_path / "home"))
    schedules = list(defs.schedules)
    assert len(schedules) == 1
    schedule = defs.resolve_schedule_def(schedules[0].name)
    with dagster_instance() as instance:
        context = dg.build_schedule_context(
            instance=instance, scheduled_execution_time=datetime(2024, 3, 2, 1, 0, tzinfo=UTC)
        )
        result = schedule.evaluate_tick(context)
    assert [r.partition_key for r in result.run_requests] == ["2024-03-01"]
    # on by default, as the feature views' schedules are: nothing to switch on in the UI
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING


def test_dagster_cli_materializes_a_partition_range(
    shop_copy: Path, tmp_path: Path, dagster_home: Path, each_offline_store: str | None
) -> None:
    """Ten days of partitions in one run from the CLI (three on S3: each partition is its own
    object there, and a month's 62 uploads to the S3 stand-in were most of the test). Why
    not a month: one run covers a range of any length the same way; the days only cost."""
    last = 10 if each_offline_store is None else 3
    home = tmp_path / "home"
    env = {**os.environ, "PANTRY_DEFS": str(shop_copy), "PANTRY_HOME": str(home), "DAGSTER_HOME": str(dagster_home)}
    dagster = str(Path(sys.executable).with_name("dagster"))
    done = subprocess.run(
        [
            dagster,
            "asset",
            "materialize",
            "-f",
            str(REPO / "definitions.py"),
            "--select",
            "metrics/revenue,metrics/revenue_7d",
            "--partition-range",
            f"2024-01-01...2024-01-{last:02d}",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    stored = _stored(home, "revenue_7d")
    assert stored["metric_time__day"].min() == date(2024, 1, 1)
    assert stored["metric_time__day"].max() == date(2024, 1, last)
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        records = instance.fetch_materializations(metric_key("revenue"), limit=100).records
    assert len({r.partition_key for r in records}) == last
    if each_offline_store is not None:  # steps in parallel processes, forked from one that imported Pantry
        from pantry_dagster.assets.location import build_definitions

        executor = build_definitions(str(shop_copy), str(home)).executor
        config = executor.apply_config_mapping({"config": {"max_concurrent": 2}}).value["config"]
        assert config["start_method"] == {"forkserver": {"preload_modules": ["pantry_dagster.assets.location"]}}
        assert config["max_concurrent"] == 2  # the rest of the executor's run config is still the user's


def test_sources_are_observable_assets_with_a_data_version(
    shop_copy: Path, tmp_path: Path, shop: tuple[Path, dict[str, pd.DataFrame]]
) -> None:
    defs = build_definitions(str(shop_copy), str(tmp_path / "home"))
    graph = defs.resolve_asset_graph()
    node = graph.get(dg.AssetKey(["sources", "orders"]))
    assert node.is_observable and node.group_name == "sources"
    assert sorted(k.to_user_string() for k in graph.get_all_asset_keys() if k.path[0] == "sources") == [
        "sources/customers",
        "sources/orders",
        "sources/regions",
    ]
    assert [c.name for c in node.metadata["dagster/column_schema"].columns] == [
        "order_id",
        "customer_id",
        "ordered_at",
        "amount",
        "status",
    ]
    source = next(a for a in defs.assets if getattr(a, "key", None) == dg.AssetKey(["sources", "orders"]))
    with dagster_instance() as instance:
        first = observe([source], instance=instance)
        version = first.get_asset_observation_events()[0].event_specific_data.asset_observation.data_version
        shop[1]["orders"].head(10).to_parquet(shop_copy / "data" / "orders.parquet", index=False)
        second = observe([source], instance=instance)
        changed = second.get_asset_observation_events()[0].event_specific_data.asset_observation.data_version
    assert version and changed and version != changed


def test_observe_sources_job_records_every_source(shop_copy: Path, tmp_path: Path) -> None:
    defs = build_definitions(str(shop_copy), str(tmp_path / "home"))
    with dagster_instance() as instance:
        result = defs.resolve_job_def("observe_sources").execute_in_process(instance=instance)
        assert result.success
        observed = {
            key: instance.fetch_observations(dg.AssetKey(["sources", key]), limit=1).records
            for key in ("orders", "customers", "regions")
        }
    assert all(len(records) == 1 and records[0].asset_observation.data_version for records in observed.values())


def test_partitions_end_where_a_finished_data_set_ends(shop_copy: Path, tmp_path: Path) -> None:
    text = (shop_copy / "shop.yaml").read_text()
    (shop_copy / "shop.yaml").write_text(
        text.replace("partitions: {start: 2024-01-01}", "partitions: {start: 2024-01-01, end: 2024-02-29}")
    )
    defs = build_definitions(str(shop_copy), str(tmp_path / "home"))
    graph = defs.resolve_asset_graph()
    keys = graph.get(metric_key("revenue")).partitions_def.get_partition_keys()
    assert (len(keys), keys[0], keys[-1]) == (60, "2024-01-01", "2024-02-29")  # 31 + 29 days of a leap year
    assert list(defs.schedules) == []  # no new day will come: nothing to schedule
    entry = next(e for e in Store(defs=shop_copy, home=tmp_path / "home").catalog("revenue") if e["name"] == "revenue")
    assert entry["partitions"] == {"start": "2024-01-01", "end": "2024-02-29", "grain": "day"}

    (shop_copy / "shop.yaml").write_text(
        text.replace("partitions: {start: 2024-01-01}", "partitions: {start: 2024-01-01, end: 2023-12-31}")
    )
    with pytest.raises(PantryError) as err:
        Store(defs=shop_copy, home=tmp_path / "home").validate()
    assert "metric 'revenue': partitions.end 2023-12-31 comes before partitions.start 2024-01-01" in str(err.value)
    (shop_copy / "shop.yaml").write_text(text.replace("partitions: {start: 2024-01-01}", "partitions: {end: soon}"))
    with pytest.raises(PantryError) as err:
        Store(defs=shop_copy, home=tmp_path / "home").validate()
    assert "project: 'soon' is not a date (write it as YYYY-MM-DD)" in str(err.value)


def test_the_demo_partitions_end_with_its_data(demo_defs: Path, tmp_path: Path) -> None:
    graph = build_definitions(str(demo_defs), str(tmp_path / "home")).resolve_asset_graph()
    flights = graph.get(metric_key("flights")).partitions_def.get_partition_keys()
    assert (len(flights), flights[0], flights[-1]) == (365, "2013-01-01", "2013-12-31")
    bar = graph.get(metric_key("bar_revenue")).partitions_def.get_partition_keys()
    assert bar == ["2022-01-03", "2022-01-04", "2022-01-05"]
    views = [k for k in graph.get_all_asset_keys() if k.path[0] == "features"]
    flights_views = [k for k in views if k.path[1] != "guest_live"]
    assert flights_views and all(graph.get(k).partitions_def.get_partition_keys() == flights for k in flights_views)
    # the streaming view over the bar's pushed tabs: from 2026-12-01 (live.yaml) to the last
    # finished UTC day, never past 2027-12-31
    from datetime import UTC, date, datetime, timedelta

    last = min(datetime.now(UTC).date() - timedelta(days=1), date(2027, 12, 31))
    want = [str(date(2026, 12, 1) + timedelta(days=i)) for i in range((last - date(2026, 12, 1)).days + 1)]
    live = [graph.get(k).partitions_def.get_partition_keys() for k in views if k.path[1] == "guest_live"]
    assert live and all(p == want for p in live)


NEW_TYPES = [
    "visit_buy_rate_7d",  # conversion
    "same_product_rate_7d",  # conversion with a constant property
    "revenue_month_start",  # offset_to_grain
    "revenue_1_month_ago",  # a calendar offset through the spine
    "repeat_customer_revenue",  # a metric filter
    "visits_by_minute",  # a sub-daily measure, stored by day
]


def test_partition_equals_query_for_the_rest_of_the_language(
    shop_copy: Path, tmp_path: Path, dagster_home: Path, each_offline_store: str | None
) -> None:
    """Conversion metrics, offset_to_grain, metric filters and sub-daily measures are assets too."""
    from tests.conftest import FUNNEL_YAML, SHOP_EXTRAS_YAML, funnel_frames

    (shop_copy / "funnel.yaml").write_text(FUNNEL_YAML)
    (shop_copy / "extras.yaml").write_text(SHOP_EXTRAS_YAML)
    for name, frame in funnel_frames().items():
        frame.to_parquet(shop_copy / "data" / f"{name}.parquet", index=False)
    home = tmp_path / "home"
    # on S3, a conversion and the sub-daily measure (the store's path; the compiler is the local run's)
    names = NEW_TYPES if each_offline_store is None else ["visit_buy_rate_7d", "visits_by_minute"]
    with dagster_instance(dagster_home) as instance:
        result = _materialize(shop_copy, home, names, "2024-01-25", "2024-02-06", instance)
        assert result.success
    store = Store(defs=shop_copy, home=home)
    for name in names:
        stored = _stored(home, name)
        # a day after the range: a sub-daily measure's last day is whole in a partition
        expected = store.query(name, group_by="metric_time__day", start_time="2024-01-25", end_time="2024-02-07")
        expected = expected[pd.to_datetime(expected["metric_time__day"]) <= "2024-02-06"]
        expected["metric_time__day"] = pd.to_datetime(expected["metric_time__day"]).dt.date
        assert len(stored) > 5, name
        if name == "visits_by_minute":  # every visit of the last day, by hand
            visits = funnel_frames()["visits"]
            last = visits[visits["ds"].dt.normalize() == "2024-02-06"]
            assert stored.set_index("metric_time__day").loc[date(2024, 2, 6), name] == len(last) > 0
        pd.testing.assert_frame_equal(
            stored.reset_index(drop=True), expected.reset_index(drop=True), check_dtype=False, obj=name
        )
