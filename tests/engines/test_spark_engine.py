"""Spark as the engine, on a real standalone cluster (a master, two workers, a Spark
Connect server): the demo's sources as Parquet files the cluster reads in place, and every
answer compared value by value with the embedded DuckDB path over the same rows.

What runs on the cluster: metric queries, metric partitions and feature view partitions
(written as Hive-partitioned Parquet under the store's location, published by a log row
only once whole), training reads (the entity frame shipped as Arrow), the checks' figures
and the online push. The faults: a worker killed by SIGKILL in the middle of a backfill,
and a Connect server that is not there."""

from __future__ import annotations

import math
import shutil
import socket
import subprocess
import sys
import warnings
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
import yaml

from pantry import PantryError, Store
from pantry.compile.sql import SOURCE_SCHEMA
from pantry.engines import uploads
from pantry.offline.sources import FILE_COLUMN, ROW_COLUMN, connect
from tests.conftest import RedisServer, dagster_instance, free_port
from tests.engines.test_postgres_engine import _same, duck_tiles
from tests.spark_cluster import SparkCluster

# a Spark cluster of four JVMs and the demo's 336,776 flights; one worker runs every Spark test (GROUPS in tests/conftest.py)
pytestmark = pytest.mark.end_to_end

FLIGHTS_DAY = date(2013, 6, 10)


@pytest.fixture(scope="module")
def stores(
    spark_cluster: SparkCluster, demo_defs: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Store, Store]:
    """(the demo on DuckDB, the same demo on Spark): each source written once as Parquet, in
    source order, and named by the Spark copy of the definitions."""
    root = tmp_path_factory.mktemp("spark_engine")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        duck = Store(defs=demo_defs, home=root / "duck_home")
        catalog = duck.definitions
    defs = root / "metrics_defs"
    shutil.copytree(demo_defs, defs, ignore=shutil.ignore_patterns("data"))
    (defs / "data").mkdir()
    con = connect(catalog)
    try:
        for name in catalog.semantic_models:
            described = con.execute(f'DESCRIBE SELECT * FROM {SOURCE_SCHEMA}."{name}"').fetchall()
            columns = ", ".join(  # Spark keeps microseconds: pandas' nanoseconds are cast as Spark would
                f'CAST("{c}" AS TIMESTAMP) AS "{c}"' if t == "TIMESTAMP_NS" else f'"{c}"'
                for c, t, *_ in described
                if c not in (FILE_COLUMN, ROW_COLUMN)
            )
            con.execute(
                f'COPY (SELECT {columns} FROM {SOURCE_SCHEMA}."{name}" ORDER BY {FILE_COLUMN}, {ROW_COLUMN}) '
                f"TO '{defs / 'data' / name}.parquet' (FORMAT PARQUET)"
            )
    finally:
        con.close()
    for path in defs.glob("*.yaml"):
        docs = list(yaml.safe_load_all(path.read_text()))
        for doc in docs:
            for model in doc.get("semantic_models") or []:
                model["source"] = f"data/{model['name']}.parquet"
        path.write_text(yaml.safe_dump_all(docs, sort_keys=False))
    return duck, Store(defs=defs, home=root / "spark_home", engine=spark_cluster.url)


def _duck_rows(duck: Store, sql: str) -> list[tuple]:
    """Rows of ``sql`` over DuckDB's source views (the entities a test draws from)."""
    source = connect(duck.definitions)
    try:
        return source.execute(sql).fetchall()
    finally:
        source.close()


def _plane_rows(duck: Store, n: int, seed: int, first: date, days: int) -> pd.DataFrame:
    """``n`` training rows numbered by ``row``: planes that flew, drawn at random, at minutes
    drawn over ``days`` days from ``first``."""
    import numpy as np

    sql = f'SELECT DISTINCT tailnum FROM {SOURCE_SCHEMA}."flights" WHERE tailnum IS NOT NULL ORDER BY 1'
    planes = np.array([r[0] for r in _duck_rows(duck, sql)], dtype=object)
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "row": np.arange(n),
            "tailnum": planes[rng.integers(0, len(planes), n)],
            "event_timestamp": pd.Timestamp(first) + pd.to_timedelta(rng.integers(0, 60 * 24 * days, n), unit="min"),
        }
    )


def test_every_demo_metric_answers_the_same_on_spark(stores: tuple[Store, Store]) -> None:
    """All of the demo's metrics in one query per grain, on the cluster and on DuckDB. One
    query, not one per metric: a Spark query costs about a second here, and the fused query
    is the harder one (two cumulative metrics' CTEs of one name, which Spark's SQL lifts to
    one WITH: renamed apart, ``relations._unique_ctes``)."""
    duck, spark = stores
    metrics = sorted(duck.definitions.metrics)
    assert sorted(spark.definitions.metrics) == metrics and len(metrics) >= 10
    checked = 0
    args = dict(metrics=metrics, group_by=["metric_time__day"])
    checked += _same(duck.query(**args), spark.query(**args), "every metric by day")
    assert checked > 4_800  # 4,875 on the demo: 375 days, 12 metrics and the day


def test_group_bys_filters_and_ratios_in_one_query(stores: tuple[Store, Store]) -> None:
    duck, spark = stores
    args = dict(
        metrics=["flights", "on_time_ratio", "avg_departure_delay"],
        group_by=["metric_time__day", "flight__carrier"],  # ties in flights: the order breaks them
        where="{{ Dimension('flight__carrier') }} IN ('UA', 'AA', 'DL')",
        start_time=date(2013, 3, 1),
        end_time=date(2013, 5, 31),
        order=["-flights", "metric_time__day", "flight__carrier"],
        limit=40,
    )
    got = spark.query(**args)
    assert len(got) == 40
    _same(duck.query(**args), got, "filtered")
    assert list(got["flights"]) == sorted(got["flights"], reverse=True)
    sql = spark.explain(["flights"], ["metric_time__month"])
    assert f"parquet.`{spark.defs / 'data' / 'flights.parquet'}`" in sql and "src." not in sql


def test_a_connect_server_that_is_not_there_is_one_sentence(tmp_path: Path, demo_defs: Path) -> None:
    import time

    url = f"sc://127.0.0.1:{free_port()}/;token=s3cret"
    engine = Store(defs=demo_defs, home=tmp_path, engine=url).engine
    started = time.monotonic()
    with pytest.raises(PantryError) as err:
        engine.run("SELECT 1")  # type: ignore[union-attr]
    said = str(err.value)
    assert said.startswith(f"cannot reach Spark Connect at sc://127.0.0.1:{url.split(':')[2].split('/')[0]}/;token=***")
    assert "s3cret" not in said and time.monotonic() - started < 30


def test_a_slow_statement_stops_and_a_missing_file_is_named(stores: tuple[Store, Store]) -> None:
    from pantry.errors import QueryTimeout

    _, spark = stores
    engine = spark.engine
    with pytest.raises(QueryTimeout):
        engine.run("SELECT count(*) FROM range(0, 100000000000) WHERE hash(id) = 7", timeout=1.0)  # type: ignore[union-attr]
    with pytest.raises(PantryError) as err:
        engine.run("SELECT * FROM parquet.`/nowhere/at/all.parquet`")  # type: ignore[union-attr]
    assert "PATH_NOT_FOUND" in str(err.value) and err.value.field == "source"
    assert engine.run("SELECT 2 AS two").to_pylist() == [{"two": 2}]  # type: ignore[union-attr]


def test_a_run_is_counted_from_its_footers_or_by_a_job(stores: tuple[Store, Store], tmp_path: Path) -> None:
    """A written run's rows: read from its Parquet footers when this client sees the folder
    (no job on the cluster), counted by a job when it does not (a ``file://`` location
    stands for a folder only the cluster sees). Both say what was written, by hand: 3 + 2."""
    import pyarrow as pa

    from pantry.engines.spark import LOG, SparkEngine

    _, spark = stores
    rows = pa.table(
        {
            "d": pa.array([date(2024, 1, 1)] * 3 + [date(2024, 1, 2)] * 2, pa.date32()),
            "v": pa.array([1, 2, 3, 4, 5], pa.int64()),
        }
    )
    for location in (str(tmp_path / "seen"), f"file://{tmp_path / 'unseen'}"):
        engine = SparkEngine(spark.engine.url, location)  # type: ignore[union-attr]
        engine._session = spark.engine.session()  # type: ignore[union-attr]  # the fixture's: no session setup
        written = engine.replace_days("s", "t", rows, "d", date(2024, 1, 1), date(2024, 1, 2), "t")
        assert written == 5, location
        assert sorted(engine.read("s", "t", "d").column("v").to_pylist()) == [1, 2, 3, 4, 5]
        assert engine.materialized("s", "t") == [date(2024, 1, 1), date(2024, 1, 2)]
    # which path wrote each log row: the client names its file after the run, Spark's tasks theirs
    seen = [f.name for f in (tmp_path / "seen" / "s" / LOG).glob("part-*.parquet")]
    unseen = [f.name for f in (tmp_path / "unseen" / "s" / LOG).glob("part-*.parquet")]
    assert len(seen) == 1 and seen[0].startswith("part-r"), seen
    assert len(unseen) == 1 and not unseen[0].startswith("part-r"), unseen


def test_metric_partitions_are_computed_and_kept_on_spark(stores: tuple[Store, Store]) -> None:
    """A Dagster run of demo metric assets on the cluster: each day computed there and written
    as Hive-partitioned Parquet under the store's location, published by the log, equal to
    the embedded path's days; a rerun publishes a new run of the same rows; a run that fails
    on the cluster publishes nothing and the old days stay."""
    import dagster as dg

    from pantry.api.facts import metric_facts
    from pantry.engines.warehouse import METRICS_SCHEMA
    from pantry_dagster.assets.metrics import build_metric_assets
    from pantry_dagster.resources.alerts import SlackAlerts
    from pantry_dagster.resources.offline import OfflineStore

    duck, spark = stores
    names = ["on_time_ratio", "flights_7d"]  # a ratio and a cumulative metric
    start, end = date(2013, 6, 1), date(2013, 6, 2)
    assets = [a for a in build_metric_assets(metric_facts(spark.definitions, spark.offline)) if a.key.path[-1] in names]
    resources = {
        "offline": OfflineStore(defs=str(spark.defs), home=str(spark.home), engine=spark.engine_url or ""),
        "alerts": SlackAlerts(home=str(spark.home)),
    }
    tags = {"dagster/asset_partition_range_start": str(start), "dagster/asset_partition_range_end": str(end)}
    days = [date(2013, 6, d) for d in range(1, 3)]
    for run in range(2):  # the second run (one metric) replaces the same days with the same rows
        with dagster_instance() as instance:
            chosen = assets if run == 0 else assets[:1]
            assert dg.materialize(chosen, instance=instance, resources=resources, tags=tags).success
        for name in names:
            stored = spark.metric_days(name)
            assert sorted(set(stored["metric_time__day"])) == days, (run, name)
            _same(duck.compute_metric_days(name, start, end), stored, f"{name}, run {run}")
    folder = spark.home / "spark" / METRICS_SCHEMA / "on_time_ratio" / "metric_time__day=2013-06-02"
    runs = sorted(p.name for p in folder.iterdir())
    assert len(runs) == 2 and all(r.startswith("__run=r") for r in runs), runs  # both runs on disk, the newest read
    engine = spark.engine
    assert all(engine.materialized(METRICS_SCHEMA, f"metrics/{n}") == days for n in names)  # type: ignore[union-attr]
    assert engine.materialized(METRICS_SCHEMA, "metrics/not_a_metric") == []  # type: ignore[union-attr]
    assert engine.materialized("pantry_nothing_here", "metrics/flights") == []  # type: ignore[union-attr]
    before = spark.metric_days("on_time_ratio")
    failing = {end: "SELECT CAST(raise_error('a task that fails') AS DOUBLE) AS on_time_ratio"}
    with pytest.raises(PantryError) as err:
        engine.replace_days_from(METRICS_SCHEMA, "on_time_ratio", "metric_time__day", failing, "metrics/on_time_ratio")  # type: ignore[union-attr]
    assert "the stored days are unchanged" in str(err.value) and "a task that fails" in str(err.value)
    _same(before, spark.metric_days("on_time_ratio"), "after a failed write")
    assert len(list(folder.iterdir())) == 2  # nothing of the failed run where readers look


@pytest.mark.parametrize("view", ["carrier_ops", "plane_activity"])
def test_a_view_partition_computed_on_spark_equals_the_training_read(stores: tuple[Store, Store], view: str) -> None:
    """The demo's daily views at one stamp, computed on the cluster from the Parquet sources,
    against DuckDB's training read of the tiles materialized for that day; a dimension
    feature's ties go by file and row index, as on DuckDB."""
    from pantry.compile.view_plan import plan_view, stamp_of

    duck, spark = stores
    plan = plan_view(duck.definitions, duck.definitions.views[view])
    duck_tiles(duck, [view], FLIGHTS_DAY, FLIGHTS_DAY)
    stamp = stamp_of(FLIGHTS_DAY)
    names = [f"{view}:{p.feature.name}" for p in plan.features]
    want = duck.get_historical_features(None, names, start_time=stamp, end_time=stamp)
    want["event_timestamp"] = want["event_timestamp"].dt.tz_localize(None)
    got = spark.compute_view_day(view, FLIGHTS_DAY)
    assert len(got) > 10
    assert _same(want[list(got.columns)], got, f"view {view}") == got.size


def test_a_training_read_joins_on_spark_as_duckdb_does(stores: tuple[Store, Store]) -> None:
    """Two daily views materialized for 2013-06-05..10 on both paths (tiles in DuckDB; the
    values at each stamp as Parquet on the cluster), then 10,000 training rows: planes that
    flew and one that never did, moments before the first stamp, between stamps, on a stamp
    and past the ttl of the last one. The frame goes to the cluster as Arrow; the answers are
    compared row by row in input order, the frame's own columns untouched."""
    import numpy as np

    from pantry.compile.view_plan import plan_view

    duck, spark = stores
    start, end = date(2013, 6, 5), date(2013, 6, 10)  # FLIGHTS_DAY's tiles are in DuckDB already
    views = ["plane_activity", "carrier_ops"]
    duck_tiles(duck, views, start, end)
    flights = _duck_rows(
        duck, f'SELECT DISTINCT tailnum, carrier FROM {SOURCE_SCHEMA}."flights" WHERE tailnum IS NOT NULL ORDER BY 1, 2'
    )
    written = {view: spark.materialize_view(view, start, end) for view in views}
    assert written["plane_activity"] > 10_000 and written["carrier_ops"] == 6 * 15, written
    rng = np.random.default_rng(29)
    n = 10_000
    pick = rng.integers(0, len(flights), n)
    moments = pd.Timestamp("2013-06-03") + pd.to_timedelta(rng.integers(0, 60 * 24 * 44, n), unit="min")
    entity_df = pd.DataFrame(
        {
            "tailnum": [flights[i][0] if i % 10 else "N0NEVER" for i in pick],
            "carrier": [flights[i][1] for i in pick],
            "event_timestamp": moments,
            "label": rng.integers(0, 2, n),
        }
    )
    entity_df.loc[:5, "event_timestamp"] = pd.Timestamp("2013-06-07")  # exactly on a stamp
    names = ["plane_activity:flights_7d", "plane_activity:last_dest", "plane_activity:dep_delay_30d"]
    names += [
        "carrier_ops:" + p.feature.name
        for p in plan_view(spark.definitions, spark.definitions.views["carrier_ops"]).features
    ]
    want = duck.get_historical_features(entity_df, names)
    got = spark.get_historical_features(entity_df, names)
    assert list(got.columns) == list(want.columns)
    assert got[["tailnum", "carrier", "label"]].equals(entity_df[["tailnum", "carrier", "label"]])
    compared = 0
    for column in [c for c in want.columns if c not in entity_df.columns]:
        for i, (x, y) in enumerate(zip(want[column], got[column])):
            if pd.isna(x) or pd.isna(y):
                assert pd.isna(x) and pd.isna(y), (column, i, x, y, entity_df.iloc[i].to_dict())
            elif isinstance(x, str) or isinstance(y, str):
                assert x == y, (column, i, x, y)
            else:
                assert math.isclose(float(x), float(y), rel_tol=1e-9, abs_tol=1e-9), (column, i, x, y)
            compared += 1
    nulls = int(got["flights_7d"].isna().sum())
    assert compared == n * (len(want.columns) - 4) and 0 < nulls < n  # some present, some absent or too old

    # beside an uploaded frame the view's partitions are shuffled, not broadcast (view_join_hint):
    # 6 days of them pass for less than Spark's broadcast limit, and Spark drops a hint it cannot use
    from pantry.engines.spark import _sql

    engine = spark.engine
    sent: list[tuple[str, object, str]] = []
    real = engine.run_with
    engine.run_with = lambda name, rows, sql: sent.append((name, rows, sql)) or real(name, rows, sql)  # type: ignore[method-assign]
    try:
        spark.get_historical_features(entity_df.head(100), names[:1])
    finally:
        del engine.run_with
    ((name, rows, sql),) = sent
    session = engine.session()  # type: ignore[union-attr]
    uploaded = session.createDataFrame(rows)
    plan = _sql(session, sql, {name: uploaded})._explain_string(extended=False)
    joins = [line for line in plan.splitlines() if "Join" in line]  # the days have no gap: no table of days
    assert len(joins) == 1 and "SortMergeJoin" in joins[0] and "LeftOuter" in joins[0], plan
    assert "BroadcastExchange" not in plan, plan
    unhinted = _sql(session, sql.replace("/*+ MERGE(v) */", ""), {name: uploaded})._explain_string(extended=False)
    assert "/*+ MERGE(v) */" in sql and unhinted.count("BroadcastExchange") == 1, unhinted  # the view


def test_feature_assets_judge_and_push_from_spark(stores: tuple[Store, Store], redis_server: RedisServer) -> None:
    """A Dagster run of the demo's two daily views on each path, 2013-06-01..02: tiles in
    DuckDB, the values at each stamp as Parquet written by the cluster. Every check's verdict
    of every partition (drift with its score, rows_and_nulls, consistency with the metrics,
    which query the cluster) is the same on both; then the last partition, pushed from each
    into Redis, serves the same values for every entity, equal to what training reads."""
    import dagster as dg

    from pantry.compile.view_plan import stamp_of
    from pantry.features.facts import feature_facts
    from pantry_dagster.assets.features import IO_MANAGER, build_feature_assets
    from pantry_dagster.resources.alerts import SlackAlerts
    from pantry_dagster.resources.features_io import FeatureValuesIOManager
    from pantry_dagster.resources.offline import OfflineStore
    from tests.engines.test_postgres_engine import _same_verdicts

    duck, spark = stores
    views = ["carrier_ops", "plane_activity"]
    start, end = date(2013, 6, 1), date(2013, 6, 2)  # two days: a range, each day judged (a third added 13 s)
    tags = {"dagster/asset_partition_range_start": str(start), "dagster/asset_partition_range_end": str(end)}
    for store in (duck, spark):
        assets = [
            a
            for a in build_feature_assets(feature_facts(store.definitions, store.offline), store.definitions)
            if a.node_def.name.removeprefix("feature_view__") in views
        ]
        resources = {
            "offline": OfflineStore(defs=str(store.defs), home=str(store.home), engine=store.engine_url or ""),
            "alerts": SlackAlerts(home=str(store.home)),
            IO_MANAGER: FeatureValuesIOManager(defs=str(store.defs), home=str(store.home)),
        }
        with dagster_instance() as instance:
            assert dg.materialize(assets, instance=instance, resources=resources, tags=tags).success
    days = [date(2013, 6, d) for d in range(1, 3)]
    for view in views:  # (other tests of the module materialize other days on each path)
        assert set(days) <= set(spark.materialized_partitions(view)) & set(duck.materialized_partitions(view))
    assert _same_verdicts(duck, spark, days) > 14
    stamp = stamp_of(end)
    served = {}
    for store in (duck, spark):
        redis_server.stop()
        redis_server.start()  # empty: each path's push stands alone
        online = Store(defs=store.defs, home=store.home, engine=store.engine_url, redis_url=redis_server.url)
        for view in views:
            names = [f"{view}:{f.name}" for f in spark.definitions.views[view].features]
            at = online.get_historical_features(None, names, start_time=stamp, end_time=stamp)
            key = at.columns[0]
            assert online.push_online(view, end) == len(at) > 10, view
            values = online.get_online_features(names, [{key: k} for k in at[key]])
            served[(store is spark, view)] = values
            if spark.definitions.views[view].ttl is not None:  # 2013's values are long past their ttl: null
                assert all(v is None for n in names for v in values[n.split(":")[1]]), view
                continue
            for feature in [n.split(":")[1] for n in names]:  # online equals what training read
                for i, (x, y) in enumerate(zip(at[feature], values[feature])):
                    assert (pd.isna(x) and y is None) or x == y or math.isclose(float(x), float(y)), (view, feature, i)
    for view in views:
        assert served[(True, view)] == served[(False, view)], view


def test_a_worker_killed_in_a_backfill_changes_nothing(
    stores: tuple[Store, Store], spark_cluster: SparkCluster
) -> None:
    """A backfill of a view's 14 days on the cluster while one of its two workers (and the
    executor it runs) is killed by SIGKILL: Spark reruns the lost tasks on the other worker,
    the run succeeds, and every value equals a clean run's (here: DuckDB's tiles read at
    each stamp). The worker is started again for the tests after this one."""
    import threading
    import time

    from pantry.compile.view_plan import plan_view, stamp_of

    duck, spark = stores
    view, start, end = "carrier_ops", date(2013, 7, 1), date(2013, 7, 14)
    plan = plan_view(duck.definitions, duck.definitions.views[view])
    duck_tiles(duck, [view], start, end)
    spark.engine.run("SELECT 1")  # type: ignore[union-attr]  # the session made before the clock starts
    outcome: dict[str, object] = {}

    def backfill() -> None:
        try:
            outcome["rows"] = spark.materialize_view(view, start, end)
        except Exception as err:  # noqa: BLE001 - reported below
            outcome["error"] = err

    worker = threading.Thread(target=backfill)
    worker.start()
    time.sleep(1.5)  # the job's tasks are running on both executors
    assert worker.is_alive(), "the backfill ended before the worker could be killed: the test proves nothing"
    killed = spark_cluster.worker_pids(1)
    spark_cluster.kill_worker(1)
    worker.join(timeout=600)
    spark_cluster.start_worker(1)
    assert killed and "error" not in outcome, outcome
    names = [f"{view}:{p.feature.name}" for p in plan.features]
    want = duck.get_historical_features(None, names, start_time=stamp_of(start), end_time=stamp_of(end))
    got = spark.get_historical_features(None, names, start_time=stamp_of(start), end_time=stamp_of(end))
    assert outcome["rows"] == len(got) == len(want) > 100
    assert _same(want, got, "after a lost worker") == got.size


def test_a_training_set_written_on_the_cluster_equals_the_read(
    stores: tuple[Store, Store], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``get_historical_features(..., to=path)``: the join runs on the cluster and the executors
    write the answer as Parquet there; read back, every row holds DuckDB's values for the
    frame's row it carries. An existing path is refused (nothing overwritten), and without
    an engine ``to=`` is one sentence. A frame of more rows than ``PANTRY_COLLECT_ROWS`` is
    written so without ``to=``, at a path of the engine's choosing, which is returned."""
    import pyarrow.parquet as pq

    duck, spark = stores
    start, end = date(2013, 6, 5), date(2013, 6, 7)
    duck_tiles(duck, ["plane_activity"], start, end)
    spark.materialize_view("plane_activity", start, end)
    n = 20_000
    entity_df = _plane_rows(duck, n, seed=7, first=date(2013, 6, 6), days=3)
    names = ["plane_activity:flights_7d", "plane_activity:last_dest"]
    path = str(tmp_path / "training")
    assert spark.get_historical_features(entity_df, names, to=path) == path
    got = pq.read_table(path).to_pandas().sort_values("row").reset_index(drop=True)
    want = duck.get_historical_features(entity_df, names)
    assert list(got.columns) == list(want.columns) and len(got) == n
    assert (got["tailnum"] == want["tailnum"]).all()
    for column in ("flights_7d", "last_dest"):
        for i, (x, y) in enumerate(zip(want[column], got[column])):
            assert (pd.isna(x) and pd.isna(y)) or x == y, (column, i, x, y)
    assert got["flights_7d"].notna().sum() > n // 2
    with pytest.raises(PantryError) as err:
        spark.get_historical_features(entity_df, names, to=path)
    assert "exists already" in str(err.value)
    # a rerun publishes a second run of the same days: the read names only the newest (pinned_table)
    spark.materialize_view("plane_activity", start, end)
    again = pq.read_table(spark.get_historical_features(entity_df, names, to=str(tmp_path / "again")))
    assert again.num_rows == n
    assert again.to_pandas().sort_values("row").reset_index(drop=True).equals(got)
    # the same moments in another zone: written with each row's UTC moment shipped beside
    # the frame (a naive frame's own column is that moment), the same features
    zone = entity_df["event_timestamp"].dt.tz_localize("UTC").dt.tz_convert("America/New_York")
    zoned = spark.get_historical_features(entity_df.assign(event_timestamp=zone), names, to=str(tmp_path / "zoned"))
    zoned_rows = pq.read_table(zoned).to_pandas().sort_values("row").reset_index(drop=True)
    features = ["row", "flights_7d", "last_dest"]
    assert zoned_rows[features].equals(got[features])
    with pytest.raises(PantryError) as err:
        duck.get_historical_features(entity_df, names, to=str(tmp_path / "other"))
    assert "none is set" in str(err.value)
    # past STAGE_ROWS the frame reaches the cluster as Parquet staged in the location (the
    # executors read it; a 10M-row upload held whole in the driver ran it out of memory); the
    # two reads below are staged so, one written and one collected
    from pantry.engines import spark as spark_engine

    monkeypatch.setattr(spark_engine, "STAGE_ROWS", n // 4)
    # beside a staged frame a view whose newest runs are small is broadcast, else the planner chooses
    views = {"v0": "plane_activity"}
    assert spark.engine.view_join_hint("pantry_features", views, n // 4) == "/*+ MERGE(v0) */ "
    assert spark.engine.view_join_hint("pantry_features", views, n) == "/*+ BROADCAST(v0) */ "
    monkeypatch.setattr(spark_engine, "BROADCAST_BYTES", 1000)  # smaller than one day's file
    assert spark.engine.view_join_hint("pantry_features", views, n) == ""
    monkeypatch.setattr(spark_engine, "BROADCAST_BYTES", 32 << 20)
    # a staged frame a killed client left: its process is gone, so the next staging sweeps it
    killed = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    left = uploads.new_folder(Path(spark.engine.location), "entities")
    (left / uploads.OWNER).write_text(f"{socket.gethostname()} {killed.pid}\n")
    killed.kill()
    killed.wait()
    # past PANTRY_COLLECT_ROWS, a read without to= is written on the cluster at a new path of its own
    monkeypatch.setenv("PANTRY_COLLECT_ROWS", str(n - 1))
    with pytest.warns(UserWarning, match=f"{n:,} rows was written on the cluster"):
        written = spark.get_historical_features(entity_df, names)
    assert isinstance(written, str) and written.startswith(f"{spark.engine.location}/training_sets/")
    assert pq.read_table(written).to_pandas().sort_values("row").reset_index(drop=True).equals(got)
    monkeypatch.setenv("PANTRY_COLLECT_ROWS", str(n))  # at the limit: collected, in input order
    staged = spark.get_historical_features(entity_df, names)
    assert staged.equals(want), staged.compare(want)
    assert not any(Path(spark.engine.location, "_uploads").iterdir())  # each staged frame removed after its read
    monkeypatch.setenv("PANTRY_COLLECT_ROWS", "a lot")
    with pytest.raises(PantryError) as err:
        spark.get_historical_features(entity_df, names)
    assert "PANTRY_COLLECT_ROWS='a lot' is not a positive number" in str(err.value)
    # names that would clash in the written set are refused before anything runs, nothing written
    for frame, feature_names, full, said in [
        (entity_df.rename(columns={"row": "__ts"}), names, False, "column '__ts' of entity_df"),
        (entity_df.rename(columns={"row": "Flights_7d"}), names, False, "the name of column 'Flights_7d' of entity_df"),
        (
            entity_df.rename(columns={"row": "plane_activity__last_dest"}),
            names,
            True,
            "column 'plane_activity__last_dest'",
        ),
    ]:
        clash = str(tmp_path / "clash")
        with pytest.raises(PantryError) as err:
            spark.get_historical_features(frame, feature_names, to=clash, full_feature_names=full)
        assert said in str(err.value), str(err.value)
        assert not Path(clash).exists()


def _s3_tables(client: object, bucket: str, prefix: str) -> tuple[list[str], pd.DataFrame | None]:
    """Every key under ``prefix``, and the Parquet files among them read as one frame (boto3,
    not Pantry: the test reads what the executors wrote with a client of its own)."""
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)  # type: ignore[attr-defined]
    keys = sorted(o["Key"] for page in pages for o in page.get("Contents", []))
    parts = [
        pq.read_table(io.BytesIO(client.get_object(Bucket=bucket, Key=k)["Body"].read()))  # type: ignore[attr-defined]
        for k in keys
        if k.endswith(".parquet")
    ]
    return keys, pa.concat_tables(parts).to_pandas() if parts else None


def test_the_offline_store_on_s3_through_s3a(
    stores: tuple[Store, Store],
    spark_cluster: SparkCluster,
    redis_server: RedisServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``PANTRY_OFFLINE_URI=s3://bucket/pantry`` beside the Spark engine: the executors keep
    Pantry's tables at ``s3a://bucket/pantry/engine`` with the cluster's own s3a settings (here
    pointed at a real S3 endpoint, moto_server, which the test reads with boto3). Metric days
    written, rewritten and a failed write that publishes nothing; two views' partitions, a
    training read (the frame uploaded: there is no shared folder to stage it in) and a training
    set written to ``s3a://``; the checks' verdicts; the push into Redis. Each against DuckDB
    over a home of its own with the same partitions, so the checks' references agree."""

    from pantry.compile.view_plan import stamp_of
    from pantry.engines.warehouse import METRICS_SCHEMA
    from pantry.monitor.checks import view_range_checks
    from tests.conftest import AWS_TEST_ENV
    from tests.spark_cluster import s3a_jars

    if not s3a_jars():
        pytest.fail("Hadoop's S3A connector is missing from .venv/share/s3a-jars: run 'make setup'")
    endpoint = spark_cluster.s3  # type: ignore[attr-defined]
    for key, value in {**AWS_TEST_ENV, "AWS_ENDPOINT_URL": endpoint.url}.items():
        monkeypatch.setenv(key, value)
    bucket = endpoint.new_bucket()
    client = endpoint.client()
    _, local = stores
    duck = Store(defs=stores[0].defs, home=tmp_path / "duck")
    spark = Store(
        defs=local.defs, home=tmp_path / "spark", offline_uri=f"s3://{bucket}/pantry", engine=spark_cluster.url
    )
    assert spark.engine.location == f"s3a://{bucket}/pantry/engine"  # type: ignore[union-attr]

    # metric days: written, rewritten (a second run, the newest read), a failed run publishes nothing
    metric, start, end = "on_time_ratio", date(2013, 6, 5), date(2013, 6, 7)
    want = duck.compute_metric_days(metric, start, end)
    for _ in range(2):
        assert spark.offline.replace_metric_days(metric, spark.compute_metric_days(metric, start, end), start, end) == 3
        _same(want, spark.metric_days(metric), "metric days on s3a")
    day_prefix = f"pantry/engine/{METRICS_SCHEMA}/{metric}/metric_time__day=2013-06-07/"
    keys, rows = _s3_tables(client, bucket, day_prefix)
    runs = {k.removeprefix(day_prefix).split("/")[0] for k in keys}
    assert len(runs) == 2 and all(r.startswith("__run=") for r in runs), keys
    assert not any("_temporary" in k for k in keys) and rows is not None and len(rows) == 2  # one row a run
    failing = {end: "SELECT CAST(raise_error('a task that fails') AS DOUBLE) AS on_time_ratio"}
    with pytest.raises(PantryError) as err:
        spark.engine.replace_days_from(METRICS_SCHEMA, metric, "metric_time__day", failing, f"metrics/{metric}")  # type: ignore[union-attr]
    assert "the stored days are unchanged" in str(err.value)
    _same(want, spark.metric_days(metric), "after a failed write on s3a")
    assert {k.removeprefix(day_prefix).split("/")[0] for k in _s3_tables(client, bucket, day_prefix)[0]} == runs

    # two views' partitions, computed on the cluster and written to s3a
    views = ["plane_activity", "carrier_ops"]
    duck_tiles(duck, views, start, end)
    written = {view: spark.materialize_view(view, start, end) for view in views}
    assert written["carrier_ops"] == 3 * 15 and written["plane_activity"] > 5_000, written
    assert all(
        spark.materialized_partitions(v) == duck.materialized_partitions(v) == [start, date(2013, 6, 6), end]
        for v in views
    )

    # a training read, collected and written to s3a://
    n = 5_000
    entity_df = _plane_rows(duck, n, seed=41, first=start, days=4)
    names = ["plane_activity:flights_7d", "plane_activity:last_dest"]
    want_read = duck.get_historical_features(entity_df, names)
    got_read = spark.get_historical_features(entity_df, names)
    assert got_read.equals(want_read), got_read.compare(want_read)
    assert 0 < got_read["flights_7d"].notna().sum() < n  # present, and absent before the first stamp
    to = f"s3a://{bucket}/training/run-1"
    assert spark.get_historical_features(entity_df, names, to=to) == to
    keys, written_set = _s3_tables(client, bucket, "training/run-1/")
    assert written_set is not None and any(k.endswith("_SUCCESS") for k in keys)
    written_set = written_set.sort_values("row").reset_index(drop=True)
    assert list(written_set.columns) == list(want_read.columns)
    for column in ("row", "tailnum", "flights_7d", "last_dest"):
        for i, (x, y) in enumerate(zip(want_read[column], written_set[column])):
            assert (pd.isna(x) and pd.isna(y)) or x == y, (column, i, x, y)
    with pytest.raises(PantryError) as err:
        spark.get_historical_features(entity_df, names, to=to)
    assert "exists already" in str(err.value)

    # the checks read the partitions on the cluster: every verdict as DuckDB's
    for view in views:
        ours, _, _ = view_range_checks(spark, view, [start, date(2013, 6, 6), end])
        theirs, _, _ = view_range_checks(duck, view, [start, date(2013, 6, 6), end])
        assert len(ours) == len(theirs) > 3, view
        assert sorted((v.asset, v.check, v.partition, v.passed, v.summary) for v in ours) == sorted(
            (v.asset, v.check, v.partition, v.passed, v.summary) for v in theirs
        ), view

    # the push reads the newest partition from s3a; online serves what training reads
    online = Store(
        defs=spark.defs,
        home=spark.home,
        offline_uri=spark.offline_uri,
        engine=spark_cluster.url,
        redis_url=redis_server.url,
    )
    stamp = stamp_of(end)
    names = [f"carrier_ops:{f.name}" for f in spark.definitions.views["carrier_ops"].features]
    at = duck.get_historical_features(None, names, start_time=stamp, end_time=stamp)
    assert online.push_online("carrier_ops", end) == len(at) == 15
    key = at.columns[0]
    values = online.get_online_features(names, [{key: k} for k in at[key]])
    for feature in [n.split(":")[1] for n in names]:
        for i, (x, y) in enumerate(zip(at[feature], values[feature])):
            assert (pd.isna(x) and y is None) or x == y or math.isclose(float(x), float(y)), (feature, i, x, y)

    # a metric query over a Parquet source on S3, read in place by the executors (s3:// is s3a://)
    client.upload_file(str(local.defs / "data" / "flights.parquet"), bucket, "sources/flights.parquet")
    defs = tmp_path / "s3_defs"
    shutil.copytree(local.defs, defs)
    for path in defs.glob("*.yaml"):
        docs = list(yaml.safe_load_all(path.read_text()))
        for doc in docs:
            for model in doc.get("semantic_models") or []:
                if model["name"] == "flights":
                    model["source"] = f"s3://{bucket}/sources/flights.parquet"
        path.write_text(yaml.safe_dump_all(docs, sort_keys=False))
    on_s3 = Store(defs=defs, home=tmp_path / "s3_sources", offline_uri=spark.offline_uri, engine=spark_cluster.url)
    sql = on_s3.explain(["flights"], ["metric_time__month"])
    assert f"parquet.`s3a://{bucket}/sources/flights.parquet`" in sql, sql
    args = dict(metrics=["flights", "on_time_ratio"], group_by=["metric_time__month", "flight__carrier"])
    assert _same(duck.query(**args), on_s3.query(**args), "a metric query over S3") > 12 * 15 * 3
