"""The shop parity set on PostgreSQL: every query MetricFlow answered (``bench/metricflow_parity.py
--record``, its CSVs under ``tests/compile/metricflow_answers/``) asked again of Pantry with
PostgreSQL as its engine, over the same rows loaded as tables and named with ``node_relation``.

The recorded answers are MetricFlow's on dbt-duckdb; ``make parity`` also runs MetricFlow on
dbt-postgres beside Pantry on PostgreSQL, live."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml

from pantry import PantryError, Store
from tests.compile.test_metricflow_answers import ANSWERS, QUERIES, ask, canonical
from tests.compile.test_metricflow_answers import store as duck_store  # noqa: F401 - the DuckDB fixture, reused
from tests.conftest import PostgresServer

pytestmark = pytest.mark.end_to_end  # a PostgreSQL cluster


@pytest.fixture(scope="module")
def pg_store(duck_store: Store, postgres: PostgresServer, tmp_path_factory: pytest.TempPathFactory) -> Store:  # noqa: F811
    """The parity project's files loaded into PostgreSQL (schema ``shop``, a table per file),
    and its definitions naming those tables."""
    import adbc_driver_postgresql.dbapi as dbapi
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    url = f"postgresql://pantry@127.0.0.1:{postgres.port}"
    with dbapi.connect(f"{url}/postgres", autocommit=True) as admin, admin.cursor() as cur:
        cur.execute("CREATE DATABASE mf_shop")
    with dbapi.connect(f"{url}/mf_shop", autocommit=True) as con, con.cursor() as cur:
        cur.execute("CREATE SCHEMA shop")
        for path in sorted((duck_store.defs / "data").iterdir()):
            table = pacsv.read_csv(path) if path.suffix == ".csv" else pq.read_table(path)
            cur.adbc_ingest(path.stem, table, mode="create", db_schema_name="shop")
    defs = tmp_path_factory.mktemp("pg_mf") / "metrics_defs"
    defs.mkdir()
    for path in duck_store.defs.glob("*.yaml"):
        docs = list(yaml.safe_load_all(path.read_text()))
        for doc in docs:
            for item in [*(doc.get("semantic_models") or []), *(doc.get("time_spines") or [])]:
                item["node_relation"] = {"schema_name": "shop", "alias": Path(item.pop("source")).stem}
        (defs / path.name).write_text(yaml.safe_dump_all(docs, sort_keys=False))
    return Store(defs=defs, home=tmp_path_factory.mktemp("pg_mf_home"), engine=f"{url}/mf_shop")


def test_every_recorded_query_answers_as_metricflow_on_postgresql(pg_store: Store) -> None:
    """All of them in one test (one report of every difference): a cluster per query would be
    the same server, and a failure lists each query that differs."""
    differ = []
    for index, query in enumerate(QUERIES):
        expected = pd.read_csv(ANSWERS / f"{index:02d}.csv")
        try:
            got = ask(pg_store, query)
        except PantryError as err:
            differ.append((index, query, str(err)[:200]))
            continue
        if canonical(got) != canonical(expected):
            differ.append((index, query))
    assert len(QUERIES) >= 100
    assert not differ, f"{len(differ)} of {len(QUERIES)} differ from MetricFlow on PostgreSQL: {differ}"
