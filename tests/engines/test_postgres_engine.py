"""PostgreSQL as the engine, on a real server: the demo's sources loaded into tables, the
definitions naming them as dbt does (``node_relation``), and every demo metric answered in
PostgreSQL, compared value by value with the embedded DuckDB path over the same rows.

Also the engine's errors, each one sentence naming the engine (password masked) and the
object: a server that is not there, a role that may not log in, a table that does not exist,
a role without SELECT, a statement past its time limit."""

from __future__ import annotations

import math
import shutil
import warnings
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
import yaml

from pantry import PantryError, Store
from pantry.compile.sql import SOURCE_SCHEMA
from pantry.engines.url import masked
from pantry.errors import QueryTimeout
from pantry.offline.sources import FILE_COLUMN, ROW_COLUMN, connect
from tests.conftest import PostgresServer, RedisServer, dagster_instance, free_port, run_cli_here

pytestmark = pytest.mark.end_to_end  # a PostgreSQL cluster and the demo's 336,776 flights


def _url(server: PostgresServer, user: str = "pantry", password: str | None = None, db: str = "warehouse") -> str:
    secret = f":{password}" if password is not None else ""
    return f"postgresql://{user}{secret}@127.0.0.1:{server.port}/{db}"


def _admin(server: PostgresServer, db: str = "warehouse"):  # noqa: ANN202 - an ADBC connection
    import adbc_driver_postgresql.dbapi as dbapi

    return dbapi.connect(_url(server, db=db), autocommit=True)


@pytest.fixture(scope="module")
def stores(postgres: PostgresServer, demo_defs: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Store, Store]:
    """(the demo on DuckDB, the same demo on PostgreSQL)."""
    root = tmp_path_factory.mktemp("pg_engine")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        duck = Store(defs=demo_defs, home=root / "duck_home")
        catalog = duck.definitions
    with _admin(postgres, db="postgres") as admin, admin.cursor() as cur:
        cur.execute("CREATE DATABASE warehouse")
    con = connect(catalog)
    with _admin(postgres) as pg, pg.cursor() as cur:
        cur.execute("CREATE SCHEMA demo")
        for name in catalog.semantic_models:
            table = con.execute(  # in source order: PostgreSQL's load order (ctid) is then the files' order
                f'SELECT * EXCLUDE ({FILE_COLUMN}, {ROW_COLUMN}) FROM {SOURCE_SCHEMA}."{name}" '
                f"ORDER BY {FILE_COLUMN}, {ROW_COLUMN}"
            ).to_arrow_table()
            cur.adbc_ingest(name, table, mode="create", db_schema_name="demo")
    con.close()
    defs = root / "metrics_defs"
    shutil.copytree(demo_defs, defs, ignore=shutil.ignore_patterns("data"))
    for path in defs.glob("*.yaml"):
        docs = list(yaml.safe_load_all(path.read_text()))
        for doc in docs:
            for model in doc.get("semantic_models") or []:
                model.pop("source")
                model["node_relation"] = {"schema_name": "demo", "alias": model["name"]}
        path.write_text(yaml.safe_dump_all(docs, sort_keys=False))
    return duck, Store(defs=defs, home=root / "pg_home", engine=_url(postgres))


def duck_tiles(duck: Store, views: list[str], start: date, end: date) -> None:
    """The oracle's side: DuckDB tiles of ``views`` for days ``start..end``."""
    from pantry.compile.view_plan import plan_view
    from pantry.features.tiles import materialize

    source = connect(duck.definitions)
    try:
        for view in views:
            materialize(source, duck.offline, plan_view(duck.definitions, duck.definitions.views[view]), start, end)
    finally:
        source.close()


def _same(left: pd.DataFrame, right: pd.DataFrame, what: str) -> int:
    """Value by value, rows in the same order (both sorted by every column); returns the count."""
    assert list(left.columns) == list(right.columns), what
    order = list(left.columns)
    a = left.sort_values(order, na_position="last").reset_index(drop=True)
    b = right.sort_values(order, na_position="last").reset_index(drop=True)
    assert len(a) == len(b), (what, len(a), len(b))
    checked = 0
    for column in order:
        for i, (x, y) in enumerate(zip(a[column], b[column])):
            if pd.isna(x) or pd.isna(y):
                assert pd.isna(x) and pd.isna(y), (what, column, i, x, y)
            elif isinstance(x, float) or isinstance(y, float):
                assert math.isclose(float(x), float(y), rel_tol=1e-9, abs_tol=1e-9), (what, column, i, x, y)
            else:
                assert x == y, (what, column, i, x, y)
            checked += 1
    return checked


def test_every_demo_metric_answers_the_same_in_postgresql(stores: tuple[Store, Store]) -> None:
    duck, pg = stores
    metrics = sorted(duck.definitions.metrics)
    assert sorted(pg.definitions.metrics) == metrics and len(metrics) >= 10
    checked = 0
    for metric in metrics:
        for group_by in (["metric_time__day"], ["metric_time__month"]):
            args = dict(metrics=[metric], group_by=group_by)
            checked += _same(duck.query(**args), pg.query(**args), f"{metric} by {group_by}")
    assert checked > 5_000  # 5,348 on the demo: every metric, day and month


def test_group_bys_filters_and_ratios_in_one_query(stores: tuple[Store, Store]) -> None:
    duck, pg = stores
    args = dict(
        metrics=["flights", "on_time_ratio", "avg_departure_delay"],
        group_by=["metric_time__week", "flight__carrier"],
        where="{{ Dimension('flight__carrier') }} IN ('UA', 'AA', 'DL')",
        start_time=date(2013, 3, 1),
        end_time=date(2013, 5, 31),
        order=["-flights"],
        limit=20,
    )
    pg_frame = pg.query(**args)
    assert len(pg_frame) == 20
    _same(duck.query(**args), pg_frame, "filtered")
    assert list(pg_frame["flights"]) == sorted(pg_frame["flights"], reverse=True)


def test_explain_shows_the_engines_sql_over_its_tables(stores: tuple[Store, Store]) -> None:
    _, pg = stores
    sql = pg.explain(["flights"], ["metric_time__month"])
    assert "demo.flights" in sql.replace('"', "") and "src." not in sql and "generate_series" not in sql


def test_a_server_that_is_not_there_is_one_sentence(tmp_path: Path, demo_defs: Path) -> None:
    url = f"postgresql://pantry:s3cret@127.0.0.1:{free_port()}/warehouse"
    engine_store = Store(defs=demo_defs, home=tmp_path, engine=url)
    with pytest.raises(PantryError) as err:
        engine_store.engine.run("SELECT 1")  # type: ignore[union-attr]
    said = str(err.value)
    assert said.startswith(f"cannot reach PostgreSQL at {masked(url)} (3 attempts)") and "s3cret" not in said
    assert "pantry:***@127.0.0.1" in said


def test_a_role_that_may_not_log_in(postgres: PostgresServer, stores: tuple[Store, Store], tmp_path: Path) -> None:
    from pantry.engines import engine_for

    engine = engine_for(_url(postgres, user="nobody", password="pw"))
    with pytest.raises(PantryError) as err:
        engine.run("SELECT 1")  # type: ignore[union-attr]
    assert str(err.value).startswith(f"PostgreSQL at {masked(_url(postgres, user='nobody', password='pw'))} refused")
    assert "pw@" not in str(err.value)


def test_a_missing_table_and_a_role_without_select(postgres: PostgresServer, stores: tuple[Store, Store]) -> None:
    from pantry.engines import engine_for

    engine = engine_for(_url(postgres))
    with pytest.raises(PantryError) as err:
        engine.run("SELECT * FROM demo.nope")  # type: ignore[union-attr]
    assert 'relation "demo.nope" does not exist' in str(err.value) and "create the table" in str(err.value)
    with _admin(postgres) as pg, pg.cursor() as cur:
        cur.execute("CREATE ROLE reader LOGIN")
    reader = engine_for(_url(postgres, user="reader"))
    with pytest.raises(PantryError) as err:
        reader.run("SELECT count(*) FROM demo.flights")  # type: ignore[union-attr]
    assert "permission denied" in str(err.value) and "needs SELECT" in str(err.value)
    assert engine.run("SELECT 1 AS one").to_pylist() == [{"one": 1}]  # type: ignore[union-attr]


def test_the_connection_is_read_only_and_a_slow_statement_stops(
    postgres: PostgresServer, stores: tuple[Store, Store]
) -> None:
    from pantry.engines import engine_for

    engine = engine_for(_url(postgres))
    with pytest.raises(PantryError) as err:
        engine.run("CREATE TABLE demo.written AS SELECT 1 AS x")  # type: ignore[union-attr]
    assert "read-only transaction" in str(err.value)
    with pytest.raises(QueryTimeout):
        engine.run("SELECT pg_sleep(5)", timeout=0.3)  # type: ignore[union-attr]
    assert engine.run("SELECT 2 AS two").to_pylist() == [{"two": 2}]  # type: ignore[union-attr]


def test_the_cli_queries_and_explains_on_the_engine(
    stores: tuple[Store, Store], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    """``PANTRY_ENGINE`` is the one setting: the CLI's query runs in PostgreSQL and
    ``--explain`` prints PostgreSQL's SQL over the warehouse tables."""

    duck, pg = stores
    env = {"PANTRY_DEFS": str(pg.defs), "PANTRY_HOME": str(pg.home), "PANTRY_ENGINE": pg.engine_url or ""}
    env["COLUMNS"] = "200"
    for extra in ([], ["--explain"]):
        args = ["query", "--metrics", "flights", "--group-by", "metric_time__month", *extra]
        code, out, _ = run_cli_here(monkeypatch, capsys, args, env)
        assert code == 0, out
        if extra:
            assert 'FROM "demo"."flights"' in out or "FROM demo.flights" in out, out
        else:
            first = duck.query(["flights"], ["metric_time__month"]).iloc[0]
            assert f"{int(first['flights']):,}" in out or str(int(first["flights"])) in out, out


def test_a_missing_warehouse_table_is_the_definitions_error(
    postgres: PostgresServer, stores: tuple[Store, Store], tmp_path: Path
) -> None:
    """A table the warehouse (the database ``stores`` made) does not have: the definitions'
    error, with the server's own words."""
    defs = tmp_path / "metrics_defs"
    defs.mkdir()
    (defs / "shop.yaml").write_text(
        "semantic_models:\n"
        "  - name: orders\n"
        "    node_relation: {schema_name: demo, alias: nope}\n"
        "    entities: [{name: order, type: primary, expr: id}]\n"
        "    measures: [{name: n, agg: count, expr: id}]\n"
    )
    with pytest.raises(PantryError) as err:
        Store(defs=defs, home=tmp_path / "home", engine=_url(postgres)).validate()
    said = str(err.value)
    assert said.startswith("metrics_defs/shop.yaml: semantic model 'orders': source table 'demo.nope' cannot be read")
    assert 'relation "demo.nope" does not exist' in said and said.endswith("[line 2]"), said


def test_numeric_columns_bind_and_sum_as_duckdb_would(
    postgres: PostgresServer, stores: tuple[Store, Store], tmp_path: Path
) -> None:
    """PostgreSQL's ``numeric`` reaches Python as text: declared ones bind as decimals, free
    ones as doubles; a sum of integers answers an integer, a sum of cents a float."""
    with _admin(postgres) as pg, pg.cursor() as cur:
        cur.execute("CREATE SCHEMA IF NOT EXISTS shop")
        cur.execute("CREATE TABLE shop.sales (id bigint, day date, price numeric(12,2), weight numeric, units int)")
        cur.execute(
            "INSERT INTO shop.sales VALUES (1, '2024-01-01', 10.25, 1.5, 2), (2, '2024-01-01', 0.75, 2.25, 3), "
            "(3, '2024-01-02', 100.00, NULL, 4)"
        )
    defs = tmp_path / "metrics_defs"
    defs.mkdir()
    (defs / "shop.yaml").write_text(
        "semantic_models:\n"
        "  - name: sales\n"
        "    source: shop.sales\n"
        "    defaults: {agg_time_dimension: day}\n"
        "    entities: [{name: sale, type: primary, expr: id}]\n"
        "    dimensions: [{name: day, type: time, type_params: {time_granularity: day}}]\n"
        "    measures:\n"
        "      - {name: revenue, agg: sum, expr: price * units}\n"
        "      - {name: weight, agg: sum, expr: weight}\n"
        "      - {name: units, agg: sum, expr: units}\n"
        "metrics:\n"
        "  - {name: revenue, type: simple, type_params: {measure: revenue}}\n"
        "  - {name: weight, type: simple, type_params: {measure: weight}}\n"
        "  - {name: units, type: simple, type_params: {measure: units}}\n"
    )
    store = Store(defs=defs, home=tmp_path / "home", engine=_url(postgres))
    store.validate()
    got = store.query(["revenue", "weight", "units"], ["metric_time__day"])
    assert got["units"].dtype == "Int64" and list(got["units"]) == [5, 4]
    assert list(got["revenue"]) == [10.25 * 2 + 0.75 * 3, 400.0]
    assert got["weight"][0] == 3.75 and pd.isna(got["weight"][1])
    assert [d.date() for d in got["metric_time__day"]] == [date(2024, 1, 1), date(2024, 1, 2)]


def test_metric_partitions_are_computed_and_kept_in_postgresql(
    postgres: PostgresServer, stores: tuple[Store, Store], tmp_path: Path
) -> None:
    """A Dagster run of the demo's metric assets on the engine: each day computed in
    PostgreSQL and stored in its ``pantry_metrics`` schema, equal to the embedded path's days;
    a rerun leaves the same rows; a failed write leaves the old days."""
    import dagster as dg
    import pyarrow as pa

    from pantry.api.facts import metric_facts
    from pantry_dagster.assets.metrics import build_metric_assets
    from pantry_dagster.resources.alerts import SlackAlerts
    from pantry_dagster.resources.offline import OfflineStore

    duck, pg = stores
    names = ["flights", "on_time_ratio", "flights_7d", "avg_departure_delay"]
    start, end = date(2013, 6, 1), date(2013, 6, 5)
    assets = [a for a in build_metric_assets(metric_facts(pg.definitions, pg.offline)) if a.key.path[-1] in names]
    resources = {
        "offline": OfflineStore(defs=str(pg.defs), home=str(pg.home), engine=pg.engine_url or ""),
        "alerts": SlackAlerts(home=str(pg.home)),
    }
    tags = {"dagster/asset_partition_range_start": str(start), "dagster/asset_partition_range_end": str(end)}
    for run in range(2):  # the second run (one metric) replaces the same days with the same rows
        with dagster_instance() as instance:
            chosen = assets if run == 0 else assets[:1]
            assert dg.materialize(chosen, instance=instance, resources=resources, tags=tags).success
        for name in names:
            stored = pg.metric_days(name)
            assert sorted(set(stored["metric_time__day"])) == [date(2013, 6, d) for d in range(1, 6)], (run, name)
            _same(duck.compute_metric_days(name, start, end), stored, f"{name}, run {run}")
    with _admin(postgres) as con, con.cursor() as cur:
        cur.execute("SELECT count(*) FROM pantry_metrics.pantry_materializations")
        assert cur.fetchone()[0] == len(names) + 1
    days = [date(2013, 6, d) for d in range(1, 6)]
    assert all(pg.engine.materialized("pantry_metrics", f"metrics/{n}") == days for n in names)  # type: ignore[union-attr]
    assert pg.engine.materialized("pantry_metrics", "metrics/not_a_metric") == []  # type: ignore[union-attr]
    assert pg.engine.materialized("pantry_nothing_here", "metrics/flights") == []  # type: ignore[union-attr]
    before = pg.metric_days("flights")
    broken = pa.Table.from_pandas(before.head(1), preserve_index=False)  # the stored columns, and then
    broken = broken.set_column(0, "metric_time__day", pa.array(["not a date"]))  # COPY fails after the DELETE
    with pytest.raises(PantryError) as err:
        pg.engine.replace_days("pantry_metrics", "flights", broken, "metric_time__day", start, end, "metrics/flights")  # type: ignore[union-attr]
    assert "the stored days are unchanged" in str(err.value)
    _same(before, pg.metric_days("flights"), "after a failed write")


FLIGHTS_DAY = date(2013, 6, 10)


@pytest.mark.parametrize("view", ["carrier_ops", "plane_activity"])
def test_a_view_partition_computed_in_postgresql_equals_the_training_read(
    stores: tuple[Store, Store], view: str
) -> None:
    """The demo's daily views at one stamp, computed in PostgreSQL from the warehouse tables,
    against DuckDB's training read of the tiles materialized for that day (the oracle the
    Spark test uses too); dimension features' ties go by load order (ctid) there."""
    from pantry.compile.view_plan import plan_view, stamp_of

    duck, pg = stores
    plan = plan_view(duck.definitions, duck.definitions.views[view])
    duck_tiles(duck, [view], FLIGHTS_DAY, FLIGHTS_DAY)
    stamp = stamp_of(FLIGHTS_DAY)
    names = [f"{view}:{p.feature.name}" for p in plan.features]
    want = duck.get_historical_features(None, names, start_time=stamp, end_time=stamp)
    want["event_timestamp"] = want["event_timestamp"].dt.tz_localize(None)
    got = pg.compute_view_day(view, FLIGHTS_DAY)
    assert len(got) > 10
    assert _same(want[list(got.columns)], got, f"view {view}") == got.size


def test_the_drift_panel_is_drawn_from_the_entities_of_all_the_days(stores: tuple[Store, Store]) -> None:
    """The checks' summary of a chunk of days in the engine: each day's rows, and its drift
    panel, the entities present that day whose key hash falls below the cut for a third of
    the entities present on any of the days. The oracle: DuckDB's training read at the
    stamps (entities and days), the cut worked out here, each key's hash asked of the server."""
    from pantry.compile.view_plan import plan_view, stamp_of
    from pantry.features.engine_stats import summarize_days
    from pantry.features.window_figures import HASH_SPACE

    duck, pg = stores
    view, start, end = "plane_activity", date(2013, 6, 3), date(2013, 6, 4)
    duck_tiles(duck, [view], start, end)
    pg.materialize_view(view, start, end)
    plan = plan_view(pg.definitions, pg.definitions.views[view])
    names = [p.feature.name for p in plan.features]
    want = duck.get_historical_features(
        None, [f"{view}:{n}" for n in names], start_time=stamp_of(start), end_time=stamp_of(end)
    )
    keys = want[plan.key].nunique()
    assert keys > 100 and keys > want.groupby("event_timestamp")[plan.key].nunique().max()  # days differ
    cut = math.ceil(keys // 3 / keys * HASH_SPACE)
    listed = ", ".join(f"('{k}')" for k in want[plan.key].unique())
    hashed = pg.engine.run(f"SELECT k, {pg.engine.key_hash('k')} % {HASH_SPACE} AS h FROM (VALUES {listed}) AS t(k)")
    below = {k for k, h in zip(hashed.column("k").to_pylist(), hashed.column("h").to_pylist()) if h < cut}
    summaries = summarize_days(pg.engine, plan, [start, end], names, sample_rows=keys // 3)
    for day in (start, end):
        present = want[want["event_timestamp"].dt.date == stamp_of(day).date()][plan.key]
        assert summaries[day].entities == len(present) > 0
        assert len(summaries[day].sample) == len(set(present) & below) < len(present), day


def test_a_training_read_joins_in_postgresql_as_duckdb_does(stores: tuple[Store, Store]) -> None:
    """Two daily views materialized for 2013-06-01..12 on both paths (tiles in DuckDB; the
    values at each stamp in PostgreSQL's pantry_features), then 10,000 training rows: planes
    and carriers that flew and some that never did, moments before the first stamp, between
    stamps, on a stamp, and past the ttl of the last one. Read on both, compared row by row
    in input order; the entity frame's own columns come back untouched."""
    import numpy as np

    from pantry.compile.view_plan import plan_view

    duck, pg = stores
    start, end = date(2013, 6, 1), date(2013, 6, 12)
    views = ["plane_activity", "carrier_ops"]
    duck_tiles(duck, views, start, end)
    written = {view: pg.materialize_view(view, start, end) for view in views}
    assert all(n > 100 for n in written.values()), written
    rng = np.random.default_rng(28)
    flights = pg.engine.run("SELECT DISTINCT tailnum, carrier FROM demo.flights WHERE tailnum IS NOT NULL")  # type: ignore[union-attr]
    planes, carriers = flights.column("tailnum").to_pylist(), flights.column("carrier").to_pylist()
    n = 10_000
    pick = rng.integers(0, len(planes), n)
    moments = pd.Timestamp("2013-05-30") + pd.to_timedelta(rng.integers(0, 60 * 24 * 50, n), unit="min")
    entity_df = pd.DataFrame(
        {
            "tailnum": [planes[i] if i % 10 else "N0NEVER" for i in pick],
            "carrier": [carriers[i] for i in pick],
            "event_timestamp": moments,
            "label": rng.integers(0, 2, n),
        }
    )
    entity_df.loc[:5, "event_timestamp"] = pd.Timestamp("2013-06-02")  # exactly on a stamp
    names = ["plane_activity:flights_7d", "plane_activity:last_dest", "plane_activity:dep_delay_30d"]
    names += [
        "carrier_ops:" + p.feature.name for p in plan_view(pg.definitions, pg.definitions.views["carrier_ops"]).features
    ]
    want = duck.get_historical_features(entity_df, names)
    got = pg.get_historical_features(entity_df, names)
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


def test_metrics_over_http_run_in_postgresql(stores: tuple[Store, Store]) -> None:
    """``GET /metrics/query`` on a server whose Store has the engine: its query workers (other
    processes) run the query in PostgreSQL; the rows equal DuckDB's."""
    from tests.conftest import Server

    duck, pg = stores
    with Server(pg) as http:
        reply = http.get(
            "/metrics/query", params={"metrics": "flights,on_time_ratio", "group_by": "metric_time__month"}
        )
        assert reply.status_code == 200, reply.text
        body = reply.json()
    want = duck.query(["flights", "on_time_ratio"], ["metric_time__month"])
    assert body["columns"] == list(want.columns)
    assert [r[1] for r in body["rows"]] == [int(v) for v in want["flights"]]
    assert [r[2] for r in body["rows"]] == pytest.approx(want["on_time_ratio"].tolist(), rel=1e-12)
    assert [r[0][:10] for r in body["rows"]] == [str(d)[:10] for d in want["metric_time__month"]]


def _same_verdicts(duck: Store, pg: Store, days: list[date]) -> int:
    """Every recorded verdict of the views' features on both homes: passed, summary and every
    figure of its evidence alike (floats to 1e-9; the report's path is each home's own)."""
    from pantry.monitor.verdicts import verdicts_for

    compared = 0
    for day in days:
        want = {(v.asset, v.check): v for v in verdicts_for(duck.home, "features/", day.isoformat())}
        got = {(v.asset, v.check): v for v in verdicts_for(pg.home, "features/", day.isoformat())}
        assert sorted(got) == sorted(want) and want, day
        for key, w in want.items():
            g = got[key]
            assert (g.passed, g.summary) == (w.passed, w.summary), (day, key, g.summary, w.summary)
            assert sorted(g.details) == sorted(w.details), (day, key)
            for field, x in w.details.items():
                y = g.details[field]
                if field == "report":
                    assert (x is None) == (y is None), (day, key)
                elif isinstance(x, float) and isinstance(y, float):
                    assert math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-12), (day, key, field, x, y)
                else:
                    assert x == y, (day, key, field, x, y)
            compared += 1
    return compared


def test_feature_assets_judge_and_push_from_postgresql(
    stores: tuple[Store, Store], redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Dagster run of the demo's two daily views on each path, 2013-06-01..09 (the last two judged against 7 reference partitions): tiles in
    DuckDB, the values at each stamp in PostgreSQL's ``pantry_features``. Every check's
    verdict of every partition (drift with its score, rows_and_nulls, consistency with the
    metrics, which query the engine) is the same on both; a training read without an entity
    frame lists the same entities and values; then the last partition, pushed from each into
    Redis, serves the same values for every entity."""
    import dagster as dg

    from pantry.compile.view_plan import stamp_of
    from pantry.features.facts import feature_facts
    from pantry_dagster.assets.features import IO_MANAGER, build_feature_assets
    from pantry_dagster.resources.alerts import SlackAlerts
    from pantry_dagster.resources.features_io import FeatureValuesIOManager
    from pantry_dagster.resources.offline import OfflineStore

    duck, pg = stores
    views = ["carrier_ops", "plane_activity"]
    start, end = date(2013, 6, 1), date(2013, 6, 9)
    tags = {"dagster/asset_partition_range_start": str(start), "dagster/asset_partition_range_end": str(end)}
    for store in (duck, pg):
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
    days = [date(2013, 6, d) for d in range(1, 10)]
    for view in views:  # (another test of the module may have materialized more days)
        assert set(days) <= set(pg.materialized_partitions(view)) == set(duck.materialized_partitions(view))
    assert _same_verdicts(duck, pg, days) > 100
    from pantry.monitor.verdicts import verdicts_for

    judged = [v for v in verdicts_for(pg.home, "features/", str(end)) if v.check == "drift"]
    assert judged and all("p_value" in v.details or "score" in v.details for v in judged)
    assert any(v.details.get("score") is not None for v in judged)  # past the warm-up: scored, not skipped
    assert any(v.check.startswith("consistent_with_") for v in verdicts_for(pg.home, "features/", str(end)))
    stamp = stamp_of(end)
    for view in views:
        names = [f"{view}:{f.name}" for f in pg.definitions.views[view].features]
        want = duck.get_historical_features(None, names, start_time=stamp_of(start), end_time=stamp)
        engine, said = pg.engine, []
        for method in ("run", "run_with"):  # what the read asks of the engine, in order
            original = getattr(engine, method)
            monkeypatch.setattr(
                engine,
                method,
                lambda *a, _m=method, _f=original, _s=said, **k: _s.append(f"{_m}: {a[-1]}") or _f(*a, **k),
            )
        got = pg.get_historical_features(None, names, start_time=stamp_of(start), end_time=stamp)
        monkeypatch.undo()
        assert len(got) > 12 and _same(want, got, f"{view} without an entity frame") == got.size
        # one view at its own stamps: its rows in one statement beside the log's, no spine uploaded and joined
        rows = [sql for sql in said if "pantry_materializations" not in sql]  # the log's own statements aside
        assert len(rows) == 1 and rows[0].startswith("run: SELECT v.") and "IN (DATE" in rows[0], said
    served = {}
    for store in (duck, pg):
        redis_server.stop()
        redis_server.start()  # empty: each path's push stands alone
        online = Store(defs=store.defs, home=store.home, engine=store.engine_url, redis_url=redis_server.url)
        for view in views:
            key = pg.definitions.views[view].entity
            names = [f"{view}:{f.name}" for f in pg.definitions.views[view].features]
            at = online.get_historical_features(None, names, start_time=stamp, end_time=stamp)
            plan_key = at.columns[0]
            logs: list[tuple] = []  # the engine's log of writes, read once per push: each read is a statement
            if online.engine is not None:
                read_log = online.engine.materialized
                monkeypatch.setattr(
                    online.engine, "materialized", lambda *a, _f=read_log, _l=logs: _l.append(a) or _f(*a)
                )
            assert online.push_online(view, end) == len(at) > 10, (view, key)
            monkeypatch.undo()
            assert len(logs) == (1 if store is pg else 0), logs
            rows = [{plan_key: k} for k in at[plan_key]]
            values = online.get_online_features(names, rows)
            served[(store is pg, view)] = values
            if pg.definitions.views[view].ttl is not None:  # 2013's values are long past their ttl: null
                assert all(v is None for n in names for v in values[n.split(":")[1]]), view
                continue
            for feature in [n.split(":")[1] for n in names]:  # online equals what training read
                for i, (x, y) in enumerate(zip(at[feature], values[feature])):
                    assert (pd.isna(x) and y is None) or x == y or math.isclose(float(x), float(y)), (view, feature, i)
    for view in views:
        assert served[(True, view)] == served[(False, view)], view


MILLION_PROBE = """
import json, sys
import numpy as np, pandas as pd
from pantry import Store
defs, home, engine, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
store = Store(defs=defs, home=home, engine=engine)
planes = store.engine.run("SELECT DISTINCT tailnum FROM demo.flights WHERE tailnum IS NOT NULL ORDER BY 1").column(0).to_pylist()
rng = np.random.default_rng(1)
entity_df = pd.DataFrame({
    "tailnum": np.array(planes, dtype=object)[rng.integers(0, len(planes), n)],
    "event_timestamp": pd.Timestamp("2013-06-01") + pd.to_timedelta(rng.integers(0, 60 * 24 * 12, n), unit="min"),
})
names = ["plane_activity:flights_7d", "plane_activity:last_dest", "plane_activity:dep_delay_30d"]
store.get_historical_features(entity_df.head(10), names)  # connections and imports warmed, not measured
def status(field):
    return next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith(field + ":"))
open("/proc/self/clear_refs", "w").write("5")  # the peak (VmHWM) starts again from here
before = status("VmRSS")
out = store.get_historical_features(entity_df, names)
peak = status("VmHWM")
pick = rng.choice(n, 500, replace=False)
print(json.dumps({"grew_kb": peak - before, "answer_kb": int(out.memory_usage(deep=True).sum()) // 1024,
                  "rows": len(out), "keys_in_order": bool((out["tailnum"].values == entity_df["tailnum"].values).all()),
                  "pick": pick.tolist(), "values": out.iloc[pick][["flights_7d", "last_dest"]].astype(object).where(
                      out.iloc[pick][["flights_7d", "last_dest"]].notna(), None).values.tolist(),
                  "entities": entity_df.iloc[pick].astype(str).values.tolist()}))
"""


def test_a_million_row_training_read_keeps_the_client_small(stores: tuple[Store, Store]) -> None:
    """A million entity rows read in PostgreSQL, in a process of its own: the client's peak
    memory grows by about the answer it holds, not by the rows the engine joins; the keys
    come back in input order, and 500 rows drawn at random hold DuckDB's values."""
    import json
    import subprocess
    import sys

    from tests.conftest import REPO

    duck, pg = stores
    start, end = date(2013, 6, 1), date(2013, 6, 12)
    pg.materialize_view("plane_activity", start, end)
    duck_tiles(duck, ["plane_activity"], start, end)
    n = 1_000_000
    done = subprocess.run(
        [sys.executable, "-c", MILLION_PROBE, str(pg.defs), str(pg.home), pg.engine_url or "", str(n)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    probe = json.loads(done.stdout.strip().splitlines()[-1])
    assert probe["rows"] == n and probe["keys_in_order"]
    print(
        f"a million rows: the client grew {probe['grew_kb'] / 1024:.0f} MB for an answer of {probe['answer_kb'] / 1024:.0f} MB"
    )
    assert probe["grew_kb"] < 2 * probe["answer_kb"] + 50 * 1024  # 146 MB for 131 MB when written
    picked = pd.DataFrame(probe["entities"], columns=["tailnum", "event_timestamp"])
    picked["event_timestamp"] = pd.to_datetime(picked["event_timestamp"])
    want = duck.get_historical_features(picked, ["plane_activity:flights_7d", "plane_activity:last_dest"])
    for (x, y), (a, b) in zip(probe["values"], want[["flights_7d", "last_dest"]].itertuples(index=False)):
        assert (x is None and pd.isna(a)) or x == a, (x, a)
        assert (y is None and pd.isna(b)) or y == b, (y, b)
