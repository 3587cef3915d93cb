"""The same SQL on Spark: every demo metric and feature view, one partition each, run on
the test cluster (a session of its own on the Connect server) and compared with DuckDB value
by value.

The oracle is DuckDB's own answer through the paths users take: a metric's stored day
(``compute_days``) and a view's training read at the partition's stamp
(``get_historical_features``, from tiles). Spark runs what ``pantry compile --dialect spark``
prints. The sources are handed to Spark as Parquet written from DuckDB's source views, so
both engines read the same rows with the same types and the same source order.
"""

from __future__ import annotations

import json
import math
import shutil
from datetime import date
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest

from pantry import Store
from pantry.compile.sql import DAY, SOURCE_SCHEMA, SPINE_TABLE
from pantry.compile.view_plan import plan_view, stamp_of
from pantry.features.portable import partition_sql
from pantry.features.tiles import materialize
from pantry.offline.metric_tables import compute_days
from pantry.offline.sources import FILE_COLUMN, ROW_COLUMN, connect
from tests.features.test_historical_oracle import build, generated_rows

pytestmark = [
    pytest.mark.skipif(shutil.which("java") is None, reason="pyspark needs Java (17+); none on PATH"),
    pytest.mark.end_to_end,  # on the worker, and the cluster, of the engine's Spark tests (GROUPS in tests/conftest.py)
]

FLIGHTS_DAY = date(2013, 6, 10)
BAR_DAY = date(2022, 1, 4)
SHOPPER_DAY = date(2024, 1, 12)


@pytest.fixture(scope="module")
def spark(spark_cluster):  # noqa: ANN001, ANN201 - yields a SparkSession on the test cluster
    """A Connect session of this module's own (its temporary views are its own), the compiled
    SQL's calendar and the ``src`` database the sources are named in."""
    from pyspark.sql import SparkSession

    session = SparkSession.builder.remote(spark_cluster.url).create()
    session.conf.set("spark.sql.session.timeZone", "UTC")
    session.conf.set("spark.sql.shuffle.partitions", "2")
    session.sql(
        f"CREATE OR REPLACE TEMP VIEW {SPINE_TABLE} AS "
        "SELECT explode(sequence(DATE'1990-01-01', DATE'2050-12-31', INTERVAL 1 DAY)) AS ds"
    )
    session.sql(f"CREATE DATABASE IF NOT EXISTS {SOURCE_SCHEMA}")
    yield session
    # stopped while the cluster is up: a session left to the interpreter's exit retried its
    # last release calls against a stopped server, and the exit waited for them
    session.stop()


def hand_sources_to_spark(spark, store: Store, folder: Path) -> None:  # noqa: ANN001
    """Each ``src.<model>`` as Parquet written by DuckDB, then a Spark view with the same
    source-order columns (file and row number) that DuckDB's source views carry."""
    con = connect(store.definitions)
    try:
        for name in store.definitions.semantic_models:
            path = folder / f"{name}.parquet"
            described = con.execute(f'DESCRIBE SELECT * FROM {SOURCE_SCHEMA}."{name}"').fetchall()
            # Spark reads microseconds: nanosecond timestamps (pandas' default) are cast, as Spark would store them
            columns = ", ".join(
                f'CAST("{c}" AS TIMESTAMP) AS "{c}"' if t == "TIMESTAMP_NS" else f'"{c}"'
                for c, t, *_ in described
                if c not in (FILE_COLUMN, ROW_COLUMN)
            )
            con.execute(
                f'COPY (SELECT {columns} FROM {SOURCE_SCHEMA}."{name}" '
                f"ORDER BY {FILE_COLUMN}, {ROW_COLUMN}) TO '{path}' (FORMAT parquet)"
            )
            # one statement a source: a Spark statement costs about a CPU second on the test cluster
            spark.sql(
                f"CREATE OR REPLACE VIEW {SOURCE_SCHEMA}.`{name}` AS SELECT *, '' AS {FILE_COLUMN}, "
                f"_metadata.row_index AS {ROW_COLUMN} FROM parquet.`{path}`"
            )
    finally:
        con.close()


def _plain(value: object) -> object:
    """A cell as a comparable Python value: NA/NaN -> None, numbers -> float, dates -> ISO."""
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, (int, float, Decimal)) and not isinstance(value, bool):
        return float(value)
    if hasattr(value, "isoformat"):
        return pd.Timestamp(value).tz_localize(None).isoformat() if hasattr(value, "hour") else value.isoformat()
    return value


def assert_same_rows(spark_rows: list[dict], duck: pd.DataFrame, key: list[str], what: str) -> None:
    got = sorted(({k: _plain(v) for k, v in row.items()} for row in spark_rows), key=lambda r: [str(r[k]) for k in key])
    want = sorted(
        ({k: _plain(v) for k, v in row.items()} for row in duck.to_dict("records")),
        key=lambda r: [str(r[k]) for k in key],
    )
    assert len(got) == len(want), f"{what}: Spark {len(got)} rows, DuckDB {len(want)}"
    assert len(want) > 0, f"{what}: no rows to compare; pick a partition with data"
    for g, w in zip(got, want):
        assert set(g) == set(w), (what, sorted(g), sorted(w))
        for column in w:
            a, b = g[column], w[column]
            if isinstance(b, float) and a is not None:
                assert a == pytest.approx(b, rel=1e-9, abs=1e-9), (what, column, g, w)
            else:
                assert a == b, (what, column, g, w)


@pytest.fixture(scope="module")
def demo_store(spark, demo_defs: Path, tmp_path_factory: pytest.TempPathFactory) -> Store:  # noqa: ANN001
    store = Store(defs=demo_defs, home=tmp_path_factory.mktemp("spark_demo_home"), offline_uri=None)
    hand_sources_to_spark(spark, store, tmp_path_factory.mktemp("spark_demo_sources"))
    return store


def test_every_demo_metric_agrees_with_duckdb(spark, demo_store: Store) -> None:  # noqa: ANN001
    """Each metric's partition SQL as printed, run as one statement: the partitions' rows as
    JSON, one branch per metric. Why one: a Spark statement costs about a CPU second on this
    cluster whatever its size, and the SQL of each branch is still the printed one."""
    catalog = demo_store.definitions
    metrics = catalog.public_metrics()
    days = {m.name: BAR_DAY if "bar" in str(m.origin.shown_as) else FLIGHTS_DAY for m in metrics}
    branches = [
        f"SELECT '{m.name}' AS metric, to_json(struct(*), map('ignoreNullFields', 'false')) AS row "
        f"FROM ({demo_store.compile_partition(days[m.name], metric=m.name, dialect='spark')}) AS q{i}"
        for i, m in enumerate(metrics)
    ]
    answered: dict[str, list[dict]] = {m.name: [] for m in metrics}
    for row in spark.sql(" UNION ALL ".join(branches)).collect():
        answered[row["metric"]].append(json.loads(row["row"]))
    con = connect(catalog)
    checked = []
    try:
        for metric in metrics:
            day = days[metric.name]
            duck = compute_days(con, catalog, metric, day, day)
            rows = answered[metric.name]
            assert_same_rows(rows, duck, [c for c in duck.columns if c != metric.name], f"metric {metric.name}")
            assert duck[DAY].tolist()[0] == day
            checked.append(metric.name)
    finally:
        con.close()
    assert len(checked) == len(metrics) >= 10


def _view_parity(spark, store: Store, view: str, day: date) -> int:  # noqa: ANN001
    plan = plan_view(store.definitions, store.definitions.views[view])
    source = connect(store.definitions)
    try:
        materialize(source, store.offline, plan, day, day)
        names = [f"{view}:{p.feature.name}" for p in plan.features]
        stamp = stamp_of(day)
        duck = store.get_historical_features(None, names, start_time=stamp, end_time=stamp)
        # the portable SQL in DuckDB's own dialect agrees too (one engine, two forms)
        portable = source.sql(partition_sql(plan, day, "duckdb")).df()
    finally:
        source.close()
    duck["event_timestamp"] = duck["event_timestamp"].dt.tz_localize(None)
    rows = [r.asDict() for r in spark.sql(store.compile_partition(day, view=view, dialect="spark")).collect()]
    assert_same_rows(rows, duck, [plan.key], f"view {view} (Spark)")
    assert_same_rows(portable.to_dict("records"), duck, [plan.key], f"view {view} (DuckDB, portable form)")
    return len(rows)


def test_every_demo_feature_view_agrees_with_the_training_read(spark, demo_store: Store) -> None:  # noqa: ANN001
    views = list(demo_store.definitions.views)
    assert sorted(views) == ["carrier_ops", "guest_live", "plane_activity"]
    # guest_live (a streaming view) has no rows before the demo pushes them; its portable
    # form is checked against a brute force in tests/ingest/test_streaming_view.py
    for view in ["carrier_ops", "plane_activity"]:
        assert _view_parity(spark, demo_store, view, FLIGHTS_DAY) > 10


def test_every_aggregation_agrees_on_spark(spark, tmp_path: Path) -> None:  # noqa: ANN001
    """The oracle's view: sum, count, count_distinct, average, min, max, median, p90,
    sum_boolean and a last value (with ties at midnight and null amounts)."""
    store = build(tmp_path, generated_rows())
    (tmp_path / "sources").mkdir()
    hand_sources_to_spark(spark, store, tmp_path / "sources")
    for day in (SHOPPER_DAY, date(2024, 1, 20)):  # the second: customer 7's windows have emptied
        _view_parity(spark, store, "shopper", day)
