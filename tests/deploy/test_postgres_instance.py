"""The code location on a Dagster instance kept in a real PostgreSQL server (deploy/dagster.yaml).

What production runs: a materialization, a range backfill through the dagster CLI and
the online push sensor, with runs and the event log in Postgres. The rows are checked
in Postgres itself, not only through Dagster's API.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import dagster as dg
import pandas as pd
import psycopg2
import pytest

from pantry import Store
from pantry_dagster.assets.features import feature_key
from pantry_dagster.assets.location import build_definitions
from pantry_dagster.assets.metrics import metric_key
from tests.conftest import PostgresServer, RedisServer
from tests.features.test_historical_oracle import FEATURES, build
from tests.online.test_online_store import TODAY, recent_rows

REPO = Path(__file__).resolve().parents[2]
RANGE = ("dagster/asset_partition_range_start", "dagster/asset_partition_range_end")


@pytest.fixture
def pg_home(postgres: PostgresServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A DAGSTER_HOME holding the shipped dagster.yaml, on a fresh database of the server."""
    con = psycopg2.connect(host="127.0.0.1", port=postgres.port, user=postgres.user, dbname="postgres")
    con.autocommit = True
    name = f"dagster_{tmp_path.name[-12:].lower().replace('-', '_')}"
    con.cursor().execute(f'DROP DATABASE IF EXISTS "{name}"')
    con.cursor().execute(f'CREATE DATABASE "{name}"')
    con.close()
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "deploy" / "dagster.yaml", home / "dagster.yaml")
    for key, value in {**postgres.env, "DAGSTER_PG_DB": name, "DAGSTER_HOME": str(home)}.items():
        monkeypatch.setenv(key, value)
    yield home


def _count(postgres: PostgresServer, sql: str) -> int:
    con = psycopg2.connect(host="127.0.0.1", port=postgres.port, user=postgres.user, dbname=os.environ["DAGSTER_PG_DB"])
    try:
        cur = con.cursor()
        cur.execute(sql)
        return int(cur.fetchone()[0])
    finally:
        con.close()


def test_materialize_backfill_and_push_sensor_on_postgres(
    postgres: PostgresServer, pg_home: Path, tmp_path: Path, redis_server: RedisServer
) -> None:
    built = build(tmp_path, recent_rows())
    defs = build_definitions(str(built.defs), str(built.home), redis_url=redis_server.url)
    with dg.DagsterInstance.get() as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
        # 1. a materialization
        view = defs.resolve_assets_def(feature_key("shopper", "revenue_7d"))
        first, last = TODAY - timedelta(days=5), TODAY - timedelta(days=3)
        assert dg.materialize([view], instance=instance, partition_key=str(first)).success
        # 3. the online push sensor, over a backfill of three partitions
        assert dg.materialize([view], instance=instance, tags={RANGE[0]: str(first), RANGE[1]: str(last)}).success
        sensor = defs.resolve_sensor_def("online_push_sensor")
        tick = sensor(dg.build_sensor_context(instance=instance, definitions=defs))
        [request] = tick.run_requests
        assert request.tags["pantry/partitions"] == f"{first}..{last}"
        push = defs.resolve_job_def("online_push")
        assert push.execute_in_process(run_config=request.run_config, instance=instance, tags=request.tags).success
        again = sensor(dg.build_sensor_context(instance=instance, cursor=tick.cursor, definitions=defs))
        assert again.run_requests == []
        partitions = {
            r.partition_key
            for r in instance.fetch_materializations(feature_key("shopper", "median_7d"), limit=50).records
        }
        assert partitions == {str(first + timedelta(days=i)) for i in range(3)}
    store = Store(defs=built.defs, home=built.home, redis_url=redis_server.url)
    stamp = pd.Timestamp(last + timedelta(days=1))
    keys = list(range(1, 9))
    offline = store.get_historical_features(
        pd.DataFrame({"customer_id": keys, "event_timestamp": [stamp] * len(keys)}), ["shopper:revenue_7d"]
    )
    online = store.get_online_features(["shopper:revenue_7d"], [{"customer_id": k} for k in keys])
    assert online["revenue_7d"] == [None if pd.isna(v) else v for v in offline["revenue_7d"]]
    assert any(v is not None for v in online["revenue_7d"])
    # the runs and their events are rows in Postgres: 3 runs (2 materializations, 1 push)
    assert _count(postgres, "SELECT count(*) FROM runs") == 3
    assert _count(postgres, "SELECT count(*) FROM event_logs WHERE dagster_event_type = 'ASSET_MATERIALIZATION'") == (
        len(FEATURES) * 4  # every feature of the view: one partition, then three
    )


def test_the_dagster_cli_backfills_a_range_on_postgres(
    postgres: PostgresServer, pg_home: Path, shop: tuple[Path, dict], tmp_path: Path
) -> None:
    defs = tmp_path / "metrics_defs"
    shutil.copytree(shop[0], defs)
    env = {**os.environ, "PANTRY_DEFS": str(defs), "PANTRY_HOME": str(tmp_path / "home")}
    done = subprocess.run(
        [
            str(Path(sys.executable).with_name("dagster")),
            "asset",
            "materialize",
            "-f",
            str(REPO / "definitions.py"),
            "--select",
            "metrics/revenue",
            "--partition-range",
            "2024-01-01...2024-01-31",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    with dg.DagsterInstance.get() as instance:
        records = instance.fetch_materializations(metric_key("revenue"), limit=100).records
    assert len({r.partition_key for r in records}) == 31
    assert _count(postgres, "SELECT count(*) FROM runs WHERE status = 'SUCCESS'") == 1
    assert (
        _count(
            postgres,
            "SELECT count(DISTINCT partition) FROM event_logs WHERE dagster_event_type = 'ASSET_MATERIALIZATION'",
        )
        == 31
    )
