"""online_push_sensor against a real Dagster instance and a real redis-server."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import dagster as dg
import pandas as pd

from pantry import Store
from pantry_dagster.assets.features import feature_key
from pantry_dagster.assets.location import build_definitions
from tests.conftest import RedisServer, dagster_instance
from tests.features.test_historical_oracle import FEATURES, build
from tests.online.test_online_store import DAY0, TODAY, recent_rows

RANGE = ("dagster/asset_partition_range_start", "dagster/asset_partition_range_end")


def test_sensor_pushes_each_new_partition_once(tmp_path: Path, redis_server: RedisServer) -> None:
    built = build(tmp_path, recent_rows())
    defs = build_definitions(str(built.defs), str(built.home), redis_url=redis_server.url)
    store = Store(defs=built.defs, home=built.home, redis_url=redis_server.url)
    view = defs.resolve_assets_def(feature_key("shopper", "revenue_7d"))
    sensor = defs.resolve_sensor_def("online_push_sensor")
    push_job = defs.resolve_job_def("online_push")
    first, last = TODAY - timedelta(days=5), TODAY - timedelta(days=3)
    with dagster_instance() as instance:
        # a backfill of three partitions, then the sensor catches up in one tick
        assert dg.materialize(
            [view], instance=instance, tags={RANGE[0]: first.isoformat(), RANGE[1]: last.isoformat()}
        ).success
        result = sensor(dg.build_sensor_context(instance=instance, definitions=defs))
        assert len(result.run_requests) == 1
        request = result.run_requests[0]
        assert request.tags["pantry/partitions"] == f"{first}..{last}"
        run = push_job.execute_in_process(run_config=request.run_config, instance=instance, tags=request.tags)
        assert run.success
        counts = run.output_for_node("push_partitions")
        assert sorted(counts) == [str(first + timedelta(days=i)) for i in range(3)]
        # nothing new: nothing pushed twice
        again = sensor(dg.build_sensor_context(instance=instance, cursor=result.cursor, definitions=defs))
        assert again.run_requests == []
        # a scheduled run of the next day is picked up alone
        assert dg.materialize([view], instance=instance, partition_key=str(TODAY - timedelta(days=2))).success
        later = sensor(dg.build_sensor_context(instance=instance, cursor=again.cursor, definitions=defs))
        assert [r.tags["pantry/partitions"] for r in later.run_requests] == [str(TODAY - timedelta(days=2))]
        assert push_job.execute_in_process(run_config=later.run_requests[0].run_config, instance=instance).success
    stamp = pd.Timestamp(TODAY - timedelta(days=1))
    keys = list(range(1, 10))
    offline = store.get_historical_features(
        pd.DataFrame({"customer_id": keys, "event_timestamp": [stamp] * len(keys)}), FEATURES
    )
    online = store.get_online_features(FEATURES, [{"customer_id": k} for k in keys])
    for feature in [f.split(":")[1] for f in FEATURES]:
        want = [None if pd.isna(v) else v for v in offline[feature]]
        got = online[feature]
        assert [None if v is None else round(float(v), 9) if not isinstance(v, str) else v for v in got] == [
            None if v is None else round(float(v), 9) if not isinstance(v, str) else v for v in want
        ], feature
    assert DAY0 < first


def test_daily_schedules_for_views(tmp_path: Path) -> None:
    built = build(tmp_path, recent_rows())
    defs = build_definitions(str(built.defs), str(built.home))
    names = sorted(s.name for s in defs.schedules)
    assert names == ["features_daily_recent_schedule", "features_daily_shopper_schedule"]
    schedule = defs.resolve_schedule_def("features_daily_shopper_schedule")
    from datetime import UTC, datetime

    with dagster_instance() as instance:
        tick = schedule.evaluate_tick(
            dg.build_schedule_context(
                instance=instance, scheduled_execution_time=datetime(2024, 3, 2, 0, 30, tzinfo=UTC)
            )
        )
    assert [r.partition_key for r in tick.run_requests] == ["2024-03-01"]
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING  # as the metrics' schedules
