"""The SQL an engine runs, for the engines that cannot run here (Snowflake, BigQuery) and
for PostgreSQL: the shop's metrics over warehouse tables (``node_relation``), rendered
through the same engine code as the PostgreSQL queries that ``test_postgres_engine.py``
runs. Golden files catch any change; regenerate them on purpose with
``PANTRY_UPDATE_GOLDEN=1 pytest tests/engines/test_engine_sql.py`` and review the diff."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest
import sqlglot
import yaml

from pantry.compile.context import QueryRequest
from pantry.engines.relations import engine_sql
from pantry.spec.load import read_catalog
from pantry.spec.model import Catalog

GOLDEN = Path(__file__).parent / "golden"
ENGINES = ("postgres", "snowflake", "bigquery")
QUERIES = {
    "ratio_by_week_and_segment": QueryRequest(
        metrics=("revenue_per_buyer",), group_by=("metric_time__week", "customer__segment")
    ),
    "derived_offset_by_month": QueryRequest(metrics=("revenue_wow",), group_by=("metric_time__month",)),
}


@pytest.fixture(scope="module")
def warehouse_shop(shop: tuple[Path, dict[str, pd.DataFrame]], tmp_path_factory: pytest.TempPathFactory) -> Catalog:
    """The shop's definitions with every model naming a table of schema ``analytics``."""
    defs = tmp_path_factory.mktemp("warehouse") / "metrics_defs"
    defs.mkdir()
    for path in shop[0].glob("*.yaml"):
        docs = list(yaml.safe_load_all(path.read_text()))
        for doc in docs:
            for model in doc.get("semantic_models") or []:
                model.pop("source")
                model["node_relation"] = {"schema_name": "analytics", "alias": model["name"]}
        (defs / path.name).write_text(yaml.safe_dump_all(docs, sort_keys=False))
    return read_catalog(defs)


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("name", sorted(QUERIES))
def test_golden_engine_sql(warehouse_shop: Catalog, name: str, engine: str) -> None:
    sql = engine_sql(warehouse_shop, QUERIES[name], engine)
    tree = sqlglot.parse_one(sql, read=engine)  # one statement the engine's dialect reads back
    tables = {(t.db, t.name) for t in tree.find_all(sqlglot.exp.Table) if isinstance(t.this, sqlglot.exp.Identifier)}
    assert tables and all(db == "analytics" and name in warehouse_shop.semantic_models for db, name in tables), tables
    path = GOLDEN / f"{name}.{engine}.sql"
    pretty = tree.sql(engine, pretty=True)
    if os.environ.get("PANTRY_UPDATE_GOLDEN"):
        path.write_text(pretty + "\n")
    assert path.exists(), f"no golden file {path.name}: record it with PANTRY_UPDATE_GOLDEN=1 and review it"
    assert pretty + "\n" == path.read_text()


@pytest.mark.parametrize("engine", ENGINES)
def test_an_offset_by_a_custom_grain_keeps_its_day_count(engine: str, tmp_path: Path) -> None:
    """An offset of one fiscal quarter lands each day on the day at the same position of the
    next quarter: ``first day + (position - 1) days``. sqlglot renders a computed interval as
    ``INTERVAL DAY`` (its count lost) for PostgreSQL and Snowflake, so the day count must
    survive in every dialect (``make parity``'s PostgreSQL run failed on it)."""
    from tests.conftest import SHOP_YAML, TIME_SPINE_YAML, write_defs

    texts = {}
    for name, text in {"shop.yaml": SHOP_YAML, "spine.yaml": TIME_SPINE_YAML}.items():
        spec = yaml.safe_load(text)
        for item in [*spec.get("semantic_models", []), *spec.get("time_spines", [])]:
            item["node_relation"] = {"schema_name": "analytics", "alias": Path(item.pop("source")).stem}
        texts[name] = yaml.safe_dump(spec, sort_keys=False)
    catalog = read_catalog(write_defs(tmp_path, texts))
    request = QueryRequest(metrics=("revenue_fiscal_quarter_before",), group_by=("metric_time__day",))
    sql = engine_sql(catalog, request, engine)
    sqlglot.parse_one(sql, read=engine)
    assert "INTERVAL DAY" not in sql.upper().replace("'1 DAY'", "")
    assert '"__position" - 1' in sql or "`__position` - 1" in sql, sql


def test_ctes_of_one_name_in_nested_queries_are_renamed_apart_for_spark() -> None:
    """Spark's SQL has one WITH per statement (sqlglot lifts nested ones to the top), so two
    nested CTEs named alike would clash: renamed apart, each query still reads its own.
    The oracle is DuckDB, which scopes nested CTEs: the renamed tree answers as the original."""
    import duckdb

    from pantry.engines.relations import _unique_ctes

    text = (
        "SELECT p.x AS a, q.x AS b, r.x AS c FROM "
        "(WITH t AS (SELECT 1 AS x) SELECT x FROM t) AS p, "
        "(WITH t AS (SELECT 2 AS x), u AS (SELECT x + 1 AS x FROM t) SELECT x FROM u) AS q, "
        "(WITH t AS (SELECT 5 AS x) SELECT (WITH t AS (SELECT 9 AS x) SELECT x FROM t) + x AS x FROM t) AS r"
    )
    renamed = _unique_ctes(sqlglot.parse_one(text, read="duckdb"))
    names = [cte.alias for cte in renamed.find_all(sqlglot.exp.CTE)]
    assert len(names) == len(set(names)) == 5
    assert duckdb.sql(renamed.sql("duckdb")).fetchall() == duckdb.sql(text).fetchall() == [(1, 3, 14)]
    lifted = renamed.sql("spark")
    assert lifted.count("WITH") == 1 and "t__" in lifted  # Spark's text: one WITH, five names
