"""End to end under `dagster dev` (webserver and daemon): a shifted partition alerts Slack once,
and the daemon's push sensor does not serve a partition whose blocking check failed."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import pytest
import redis

from tests.conftest import REPO, RedisServer, SlackStandIn, free_port, stop_group
from tests.monitor.conftest import DAY0, SHIFTED, THIN, write_monitored_defs

pytestmark = pytest.mark.end_to_end  # a minute or so: scheduled first (tests/conftest.py)

BOUND_S = 300
TICK_S = 2  # the daemon runs a sensor at most this often; two more ticks at the end cost 6 s, not 15


def wait_for(condition, seconds: float) -> bool:  # noqa: ANN001
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(1)
    return False


def test_drift_alerts_once_and_a_failed_partition_is_not_served(
    tmp_path: Path, redis_server: RedisServer, slack: SlackStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    defs = write_monitored_defs(tmp_path)
    env = {
        **os.environ,
        "PANTRY_DEFS": str(defs),
        "PANTRY_HOME": str(tmp_path / "home"),
        "DAGSTER_HOME": str(tmp_path / "dagster_home"),
        "PANTRY_REDIS_URL": redis_server.url,
        "PANTRY_SLACK_WEBHOOK_URL": slack.url,
        "PANTRY_SENSOR_SECONDS": str(TICK_S),  # the sensors tick every few seconds, not every 30
    }
    Path(env["DAGSTER_HOME"]).mkdir()
    (tmp_path / "home").mkdir()
    bin_dir = Path(sys.executable).parent
    # materialize before `dagster dev` starts: two processes creating a new instance's SQLite
    # storage at the same moment race on its migrations; the daemon's sensors then find every
    # materialization and verdict on their first ticks. In this process, through the code
    # location's own Definitions and the same instance: a `dagster asset materialize` process
    # paid 9 CPU s, mostly imports
    for name in ("PANTRY_DEFS", "PANTRY_HOME", "DAGSTER_HOME", "PANTRY_REDIS_URL", "PANTRY_SLACK_WEBHOOK_URL"):
        monkeypatch.setenv(name, env[name])
    from pantry_dagster.assets.location import build_definitions

    views = ["amount_1d", "events_1d", "kind_last"]
    with dg.DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
        materialized = (
            build_definitions()
            .resolve_implicit_global_asset_job_def()
            .execute_in_process(
                instance=instance,
                asset_selection=[dg.AssetKey(["features", "spend", v]) for v in views],
                tags={"dagster/asset_partition_range_start": str(DAY0), "dagster/asset_partition_range_end": str(THIN)},
            )
        )
    assert materialized.success
    dev = subprocess.Popen(
        [str(bin_dir / "dagster"), "dev", "-m", "definitions", "-p", str(free_port())],
        cwd=REPO,
        env=env,
        stdout=(tmp_path / "dagster_dev.log").open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:

        def drift_posts() -> list[str]:
            return [t for t in slack.texts() if t.startswith("drift ")]

        assert wait_for(lambda: drift_posts(), BOUND_S), (
            f"no drift alert within {BOUND_S} s: {slack.texts()}\n{(tmp_path / 'dagster_dev.log').read_text()[-3000:]}"
        )
        shifted = f"drift :red_circle: failed: features/spend/amount_1d {SHIFTED}"
        assert drift_posts().count(shifted) == 1
        # the push sensor launched the push; it stops at the thin partition, whose rows_and_nulls failed
        client = redis.Redis.from_url(redis_server.url)
        assert wait_for(
            lambda: any(t.startswith("run :red_circle: failed: runs/online_push") for t in slack.texts()), BOUND_S
        )
        stamp = int(client.hget("pantry:__meta__:spend", "stamp"))
        # the newest stamp served is THIN's eve (partition THIN - 1 day): THIN itself was refused
        assert datetime.fromtimestamp(stamp, UTC).date() == THIN
        assert all(int(client.hget(k, "__stamp")) <= stamp for k in client.scan_iter("pantry:spend:*"))
        # two more alert ticks: still exactly one drift alert
        time.sleep(3 * TICK_S)
        assert drift_posts().count(shifted) == 1
    finally:
        stop_group(dev)
