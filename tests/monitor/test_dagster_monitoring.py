"""Monitoring under a real Dagster instance: checks on the assets, the push gate, freshness and alerts."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import pandas as pd
import redis

from pantry.monitor.verdicts import verdicts_for
from pantry_dagster.assets.features import feature_key
from pantry_dagster.assets.location import build_definitions
from pantry_dagster.resources.alerts import SlackAlerts
from pantry_dagster.sensors.online_push import PushConfig
from tests.conftest import RedisServer, SlackStandIn, dagster_instance
from tests.monitor.conftest import CALM, DAY0, SHIFTED, THIN, build_monitored

RANGE = ("dagster/asset_partition_range_start", "dagster/asset_partition_range_end")


def latest_check(instance: dg.DagsterInstance, key: dg.AssetKey, name: str):  # noqa: ANN201
    check = dg.AssetCheckKey(key, name)
    execution = instance.event_log_storage.get_latest_asset_check_execution_by_key([check])[check]
    return execution.event.dagster_event.event_specific_data


def test_checks_on_the_assets_and_the_push_gate(tmp_path: Path, dagster_home: Path, redis_server: RedisServer) -> None:
    store = build_monitored(tmp_path)
    defs = build_definitions(str(store.defs), str(store.home), redis_server.url)
    view = defs.resolve_assets_def(feature_key("spend", "amount_1d"))
    with dagster_instance(dagster_home) as instance:
        assert dg.materialize([view], instance=instance, tags={RANGE[0]: str(DAY0), RANGE[1]: str(SHIFTED)}).success
        drift = latest_check(instance, feature_key("spend", "amount_1d"), "drift")
        assert not drift.passed and drift.metadata["failed_partitions"].value == [str(SHIFTED)]
        # every partition of the range has its own verdict (the first 7 skip: their reference is not complete)
        assert drift.metadata["partitions_judged"].value == f"{DAY0}..{SHIFTED} (11 of 11)"
        recorded = verdicts_for(store.home, "features/spend/amount_1d")
        assert sorted(v.partition for v in recorded if v.check == "drift") == [
            str(DAY0 + timedelta(days=i)) for i in range(11)
        ]
        assert [v.passed for v in sorted(recorded, key=lambda v: v.partition) if v.check == "drift"] == [True] * 10 + [
            False
        ]
        assert drift.metadata["method"].value.startswith("Wasserstein") and drift.metadata["threshold"].value == 0.1
        report = Path(drift.metadata["report_path"].value)
        assert report == store.home / "reports" / "features" / "spend" / f"{SHIFTED}.html" and report.exists()
        assert latest_check(instance, feature_key("spend", "kind_last"), "drift").passed
        assert latest_check(instance, feature_key("spend", "amount_1d"), "rows_and_nulls").passed

        assert dg.materialize([view], instance=instance, partition_key=str(THIN)).success
        rows = latest_check(instance, feature_key("spend", "amount_1d"), "rows_and_nulls")
        assert not rows.passed and "5 rows, below 50%" in rows.metadata["summary"].value

        push = defs.resolve_job_def("online_push")
        refused = push.execute_in_process(
            instance=instance,
            run_config=dg.RunConfig(ops={"push_partitions": PushConfig(view="spend", partitions=[str(THIN)])}),
            raise_on_error=False,
        )
        assert not refused.success
        failure = refused.get_step_failure_events()[0].event_specific_data.error.to_string()
        assert f"partition {THIN} of feature view 'spend' failed a blocking check, so it is not pushed" in failure
        assert "rows_and_nulls of features/spend/amount_1d: 5 rows" in failure
        assert not list(redis.Redis.from_url(redis_server.url).scan_iter("pantry:spend:*"))
        assert push.execute_in_process(
            instance=instance,
            run_config=dg.RunConfig(ops={"push_partitions": PushConfig(view="spend", partitions=[str(CALM)])}),
        ).success
        assert list(redis.Redis.from_url(redis_server.url).scan_iter("pantry:spend:*"))


FRESH_YAML = """
semantic_models:
  - name: sales
    source: data/sales.parquet
    defaults: {{agg_time_dimension: at}}
    entities: [{{name: sale, type: primary, expr: sale_id}}]
    dimensions: [{{name: at, type: time, type_params: {{time_granularity: day}}}}]
    measures: [{{name: amount, agg: sum, expr: amount}}]
metrics:
  - {{name: sales, type: simple, type_params: {{measure: amount}}, partitions: {{start: {start}}}}}
"""


def test_a_late_partition_fails_freshness_and_alerts_once(
    tmp_path: Path, dagster_home: Path, slack: SlackStandIn
) -> None:
    today = datetime.now(UTC).date()
    start = today - timedelta(days=4)
    defs_dir = tmp_path / "metrics_defs"
    (defs_dir / "data").mkdir(parents=True)
    (defs_dir / "defs.yaml").write_text(textwrap.dedent(FRESH_YAML.format(start=start)))
    days = [start + timedelta(days=i) for i in range(4)]
    pd.DataFrame(
        {"sale_id": range(4), "at": [datetime(d.year, d.month, d.day, 9) for d in days], "amount": [1.0, 2.0, 3.0, 4.0]}
    ).to_parquet(defs_dir / "data" / "sales.parquet")
    home = tmp_path / "home"
    defs = build_definitions(str(defs_dir), str(home))
    key = dg.AssetKey(["metrics", "sales"])
    everything = defs.resolve_implicit_global_asset_job_def()
    fresh_job = defs.resolve_job_def("freshness_checks")
    freshness = next(k for c in defs.asset_checks for k in c.check_keys if k.asset_key == key)
    sensor = next(s for s in defs.sensors if s.name == "monitor_alerts_sensor")
    alerts = SlackAlerts(home=str(home), webhook_url=slack.url)
    with dagster_instance(dagster_home) as instance:
        # only the first day: every later day is late
        assert everything.execute_in_process(instance=instance, partition_key=str(start), asset_selection=[key]).success
        fresh_job.execute_in_process(instance=instance, raise_on_error=False)
        assert not latest_check(instance, key, freshness.name).passed
        for _ in range(3):  # three ticks: one alert
            sensor(dg.build_sensor_context(instance=instance, resources={"alerts": alerts}))
        late = [p for p in slack.posts if "freshness" in p["text"]]
        assert [p["text"] for p in late] == ["freshness :red_circle: failed: metrics/sales"]
        assert "late: the latest partition was not materialized by its deadline" in late[0]["blocks"][1]["text"]["text"]
        # the data lands: materialize the missing days, the check passes, one recovery
        assert everything.execute_in_process(
            instance=instance,
            asset_selection=[key],
            tags={RANGE[0]: str(start), RANGE[1]: str(today - timedelta(days=1))},
        ).success
        fresh_job.execute_in_process(instance=instance, raise_on_error=False)
        assert latest_check(instance, key, freshness.name).passed
        for _ in range(2):
            sensor(dg.build_sensor_context(instance=instance, resources={"alerts": alerts}))
        assert [p["text"] for p in slack.posts if "freshness" in p["text"]] == [
            "freshness :red_circle: failed: metrics/sales",
            "freshness :white_check_mark: recovered: metrics/sales",
        ]
