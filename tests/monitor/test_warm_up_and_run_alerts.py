"""A window is not judged while it fills, a metric's value needs its reference days, and an
alert leaves with the run that judged the partition (the sensor only retries).

Oracle: the warm-up days are counted by hand from the project's first partition; the shifted
day is the conftest's (amounts ~ N(25, 2) against N(10, 2))."""

from __future__ import annotations

import textwrap
from datetime import timedelta
from pathlib import Path

import dagster as dg
import pytest

from pantry import Store
from pantry.monitor.checks import metric_range_checks, view_range_checks
from pantry_dagster.assets.features import feature_key
from pantry_dagster.assets.location import build_definitions
from tests.conftest import SlackStandIn, dagster_instance
from tests.features.test_historical_oracle import materialize_days
from tests.monitor.conftest import DAY0, LAST, SHIFTED, YAML, events

RANGE = ("dagster/asset_partition_range_start", "dagster/asset_partition_range_end")
WINDOWED = YAML.replace(
    "      - {name: events_1d, measure: events.events, window: 1 day}",
    "      - {name: amount_3d, measure: events.amount, window: 3 days}",
)


@pytest.fixture(scope="module")
def windowed(tmp_path_factory: pytest.TempPathFactory) -> Store:
    root = tmp_path_factory.mktemp("windowed")
    defs = root / "metrics_defs"
    (defs / "data").mkdir(parents=True)
    (defs / "defs.yaml").write_text(textwrap.dedent(WINDOWED))
    events().to_parquet(defs / "data" / "events.parquet", index=False)
    store = Store(defs=defs, home=root / "home")
    materialize_days(store, [(DAY0, LAST)])
    return store


def test_a_window_is_not_judged_until_it_and_its_reference_are_full(windowed: Store) -> None:
    days = [DAY0 + timedelta(days=i) for i in range(7, 11)]
    verdicts, drifts, _ = view_range_checks(windowed, "spend", days)
    skipped = {(day, f.feature): f.skipped for day, d in drifts.items() for f in d.features if f.skipped is not None}
    # by hand: 7 reference partitions; a 3-day window is full from DAY0 + 2, so its
    # reference is full from DAY0 + 2 + 7 = DAY0 + 9. The view's rows are the customers of
    # its longest window, so the 1-day and the last-value features wait for it too (their
    # population grows with it: a 1-day sum gains zeros)
    warm_3d = DAY0 + timedelta(days=9)
    assert set(skipped) == {
        (DAY0 + timedelta(days=d), f) for d in (7, 8) for f in ("amount_1d", "amount_3d", "kind_last")
    }
    assert all(f"full from {warm_3d}" in reason for reason in skipped.values())
    drift = {(v.partition, v.asset): v for v in verdicts if v.check == "drift"}
    assert drift[(str(DAY0 + timedelta(days=8)), "features/spend/amount_3d")].passed
    assert "warming up" in drift[(str(DAY0 + timedelta(days=8)), "features/spend/amount_3d")].summary
    assert "warming up" not in drift[(str(warm_3d), "features/spend/amount_1d")].summary
    # once warm, the shifted day is caught by both
    assert not drift[(str(SHIFTED), "features/spend/amount_3d")].passed
    assert not drift[(str(SHIFTED), "features/spend/amount_1d")].passed


def test_a_metric_value_needs_its_reference_days(windowed: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    early = DAY0 + timedelta(days=3)  # 3 reference days
    [value] = [v for v in metric_range_checks(windowed, "amount", [early]) if v.check == "value"]
    assert value.passed and value.summary == "warming up: 3 of 7 reference days"
    monkeypatch.setenv("PANTRY_VALUE_MIN_REFERENCE_DAYS", "3")
    [value] = [v for v in metric_range_checks(windowed, "amount", [early]) if v.check == "value"]
    assert "reference days" in value.summary and "inside" in value.summary
    monkeypatch.delenv("PANTRY_VALUE_MIN_REFERENCE_DAYS")
    [shifted] = [v for v in metric_range_checks(windowed, "amount", [SHIFTED]) if v.check == "value"]
    assert not shifted.passed and "outside" in shifted.summary  # 200 x 25 against 200 x 10 a day


def test_an_alert_leaves_with_the_run_once(
    windowed: Store, tmp_path: Path, dagster_home: Path, slack: SlackStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PANTRY_SLACK_WEBHOOK_URL", slack.url)
    home = tmp_path / "home"
    defs = build_definitions(str(windowed.defs), str(home))
    view = defs.resolve_assets_def(feature_key("spend", "amount_1d"))
    sensor = next(s for s in defs.sensors if s.name == "monitor_alerts_sensor")
    shifted = f"drift :red_circle: failed: features/spend/amount_1d {SHIFTED}"
    with dagster_instance(dagster_home) as instance:
        result = dg.materialize(
            [view],
            instance=instance,
            tags={RANGE[0]: str(DAY0), RANGE[1]: str(SHIFTED)},
            selection=[feature_key("spend", "amount_1d"), feature_key("spend", "amount_3d")],
        )
        assert result.success
        # no sensor has ticked: the run sent it
        assert [t for t in slack.texts() if t.startswith("drift ")].count(shifted) == 1
        drift_alerts = [t for t in slack.texts() if t.startswith("drift ")]
        assert all(str(SHIFTED) in t for t in drift_alerts), drift_alerts  # warm-up days alert nobody
        # each partition of the range run has its own evaluation of its own partition
        key = dg.AssetCheckKey(feature_key("spend", "amount_1d"), "drift")
        records = instance.get_event_records(
            dg.EventRecordsFilter(event_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION), limit=5000
        )
        evaluations = {
            e.partition: e.passed
            for r in records
            if (e := r.event_log_entry.dagster_event.event_specific_data).asset_check_key == key and e.partition
        }
        assert evaluations == {str(DAY0 + timedelta(days=i)): i != 10 for i in range(11)}
        # and the UI's partition view counts them: each names the materialization it judged
        info = {i.partition_key: i for i in instance.event_log_storage.get_asset_check_partition_info([key])}
        assert info[str(SHIFTED)].latest_execution_status.value == "FAILED" and info[str(SHIFTED)].is_current
        assert all(i.is_current for i in info.values() if i.partition_key)
        # the source's schema check, not selected by the run, was judged by it
        schema = dg.AssetCheckKey(dg.AssetKey(["sources", "events"]), "schema")
        latest = instance.event_log_storage.get_latest_asset_check_execution_by_key([schema])[schema]
        assert latest is not None and latest.event.dagster_event.event_specific_data.passed
        # the same range again (a rerun of a backfill): each run keeps its own evaluations
        again = dg.materialize(
            [view],
            instance=instance,
            tags={RANGE[0]: str(DAY0), RANGE[1]: str(SHIFTED)},
            selection=[feature_key("spend", "amount_1d"), feature_key("spend", "amount_3d")],
        )
        assert again.success
        for _ in range(2):  # the retry path finds nothing new
            sensor(dg.build_sensor_context(instance=instance, resources={"alerts": defs.resources["alerts"]}))
        assert [t for t in slack.texts() if t.startswith("drift ")].count(shifted) == 1
