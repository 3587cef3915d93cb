"""Parity with MetricFlow: the same definitions and data through ``mf query`` and Pantry.

The contract makes MetricFlow the reference for query semantics. This script builds a
real dbt project (dbt-duckdb) from the test suite's shop definitions, swapping Pantry's
``source:`` for ``model: ref(...)``, runs every query below through ``mf query`` and
through ``Store.query``, and compares them cell by cell.

MetricFlow lives in its own venv (its dbt pins clash with ours):
``python3 -m venv bench/.mf-venv && bench/.mf-venv/bin/pip install 'dbt-metricflow[dbt-duckdb]' 'dbt-core<1.11'``
(dbt-core 1.11+ downloads a parser wheel from GitHub at install time.)
Run: ``.venv/bin/python bench/metricflow_parity.py`` (``--record`` also saves MetricFlow's
answers under ``tests/compile/metricflow_answers/``, which the test suite replays).
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]
MF_BIN = ROOT / "bench" / ".mf-venv" / "bin"
sys.path.insert(0, str(ROOT))

from tests.conftest import (  # noqa: E402
    ACCOUNTS_YAML,
    FUNNEL_YAML,
    SHOP_EXTRAS_YAML,
    SHOP_YAML,
    TIME_SPINE_YAML,
    accounts_frame,
    funnel_frames,
    shop_frames,
    time_spine_frame,
)

QUERIES: list[dict[str, str]] = [
    {"metrics": "revenue", "group_by": "metric_time__day"},
    {"metrics": "revenue,orders", "group_by": "metric_time__week"},
    {"metrics": "buyers", "group_by": "metric_time__week"},
    {"metrics": "buyers", "group_by": "metric_time__month"},
    {"metrics": "median_amount", "group_by": "metric_time__month"},
    {"metrics": "p90_amount", "group_by": "metric_time__month"},
    {"metrics": "avg_amount,big_orders,counted_orders", "group_by": "metric_time__month"},
    {
        "metrics": "completed_revenue",
        "group_by": "metric_time__day",
        "start_time": "2024-01-05",
        "end_time": "2024-01-07",
    },
    {"metrics": "revenue_per_buyer", "group_by": "metric_time__month"},
    {"metrics": "revenue_per_buyer", "group_by": "metric_time__week,customer__segment"},
    {"metrics": "revenue_per_big_order", "group_by": "metric_time__day,customer"},
    {"metrics": "revenue_7d", "group_by": "metric_time__day"},
    {"metrics": "revenue_7d", "group_by": "metric_time__day", "start_time": "2024-01-10", "end_time": "2024-02-15"},
    {"metrics": "revenue_mtd", "group_by": "metric_time__day"},
    {"metrics": "revenue_mtd", "group_by": "metric_time__month"},
    {"metrics": "revenue_wow", "group_by": "metric_time__day"},
    {"metrics": "revenue_wow", "group_by": "metric_time__month"},
    {"metrics": "revenue", "group_by": "customer__segment"},
    {"metrics": "revenue", "group_by": "customer__region__region_name"},
    {"metrics": "orders", "group_by": "metric_time__day", "where": "{{ Dimension('customer__segment') }} = 'vip'"},
    {"metrics": "orders", "group_by": "metric_time__day", "where": "metric_time__day >= '2024-02-01'"},
    {"metrics": "orders_filled", "group_by": "metric_time__day", "start_time": "2024-01-18", "end_time": "2024-01-27"},
    {"metrics": "revenue,buyers", "group_by": ""},
    {"metrics": "revenue_all_time", "group_by": "metric_time__day", "end_time": "2024-03-31"},
    {"metrics": "revenue_7d", "group_by": "metric_time__week"},
    {"metrics": "revenue_7d,revenue_mtd,revenue_wow", "group_by": "metric_time__week,customer__segment"},
    {"metrics": "revenue_per_buyer,buyers", "group_by": "customer__region__region_name,metric_time__quarter"},
    {
        "metrics": "revenue",
        "group_by": "metric_time__year,order__status",
        "where": "{{ TimeDimension('metric_time', 'week') }} >= '2024-01-15'",
    },
    {"metrics": "revenue_mtd", "group_by": "metric_time__day", "start_time": "2024-02-10", "end_time": "2024-02-20"},
    # semi-additive measures (non_additive_dimension): overall, per bucket, per grouping
    {"metrics": "balance_last,balance_first,balance_by_user", "group_by": ""},
    {"metrics": "balance_last,balance_first,balance_by_user", "group_by": "metric_time__month"},
    {"metrics": "balance_last,balance_first", "group_by": "metric_time__week"},
    {"metrics": "balance_by_user", "group_by": "metric_time__month,user"},
    {"metrics": "balance_last", "group_by": "metric_time__day"},
    # queries without metrics: distinct values
    {"metrics": "", "group_by": "customer__segment"},
    {"metrics": "", "group_by": "order__status,customer__segment"},
    {"metrics": "", "group_by": "order__status", "where": "{{ Dimension('order__status') }} != 'cancelled'"},
    {
        "metrics": "",
        "group_by": "metric_time__day,customer__segment",
        "start_time": "2024-01-01",
        "end_time": "2024-01-03",
    },
    {
        "metrics": "",
        "group_by": "metric_time__month,order__status",
        "where": "{{ Dimension('order__status') }} != 'pending'",
        "start_time": "2024-01-15",
        "end_time": "2024-03-02",
    },
    # a time dimension named without a grain
    {"metrics": "revenue", "group_by": "order__ordered_at"},
    # cumulative and offset metrics: a where on metric_time narrows days after the window;
    # grouped by the agg-time dimension instead of metric_time; at two grains at once
    {
        "metrics": "revenue_7d",
        "group_by": "metric_time__day",
        "where": "{{ TimeDimension('metric_time', 'day') }} >= '2024-02-01'",
    },
    {"metrics": "revenue_7d", "group_by": "order__ordered_at__day"},
    {"metrics": "revenue_wow", "group_by": "order__ordered_at__month"},
    {"metrics": "revenue_7d", "group_by": "metric_time__week,order__ordered_at__month"},
    {"metrics": "revenue_wow", "group_by": "metric_time__day", "start_time": "2024-01-20", "end_time": "2024-02-05"},
    # conversion metrics: rate and count, with and without a window, constant properties,
    # by base dimension, at week grain, with a where and a time range. (A metric's own filter,
    # and a count_distinct conversion measure, make MetricFlow 0.211 fail on DuckDB with
    # 'PARTITION BY window expressions cannot be volatile': tests/compile/test_conversion.py
    # checks those against pandas instead.)
    {"metrics": "visit_buy_rate_7d", "group_by": ""},
    {"metrics": "visit_buy_conversions", "group_by": ""},
    {"metrics": "visit_buy_rate_7d", "group_by": "metric_time__day"},
    {"metrics": "visit_buy_conversions", "group_by": "metric_time__week"},
    {"metrics": "same_product_rate_7d", "group_by": "metric_time__week"},
    {"metrics": "same_product_rate_7d", "group_by": "visit__referrer"},
    {"metrics": "buys_3d", "group_by": "metric_time__month"},
    {"metrics": "buys_3d", "group_by": "visit__referrer"},
    {"metrics": "visit_buy_conversions", "group_by": "visit__referrer,product"},
    {
        "metrics": "visit_buy_rate_7d",
        "group_by": "metric_time__day,visit__referrer",
        "where": "{{ Dimension('visit__referrer') }} != 'ad'",
        "start_time": "2024-01-10",
        "end_time": "2024-02-10",
    },
    # offset_to_grain: the value at the start of the period
    {"metrics": "revenue_month_start", "group_by": "metric_time__day"},
    {"metrics": "revenue_since_month_start", "group_by": "metric_time__day,customer__segment"},
    {
        "metrics": "revenue_since_month_start",
        "group_by": "metric_time__day",
        "start_time": "2024-02-03",
        "end_time": "2024-02-12",
    },
    {"metrics": "buyers_vs_quarter_start", "group_by": "metric_time__month"},
    {"metrics": "buyers_vs_quarter_start", "group_by": "metric_time__day,metric_time__quarter"},
    {
        "metrics": "revenue_month_start",
        "group_by": "metric_time__day",
        "where": "{{ TimeDimension('metric_time', 'day') }} >= '2024-02-20'",
    },
    # an offset of a cumulative metric, with a time range
    {"metrics": "revenue_7d_wow", "group_by": "metric_time__day", "start_time": "2024-01-20", "end_time": "2024-02-10"},
    {
        "metrics": "revenue_7d_wow",
        "group_by": "metric_time__week",
        "start_time": "2024-01-20",
        "end_time": "2024-02-10",
    },
    {"metrics": "revenue_7d_wow", "group_by": "metric_time__day"},
    # sub-daily grains: group-by, a bare metric_time (a day, as MetricFlow has it), a time
    # dimension without grain (its own grain), where, ratio, a time range. (An offset in hours
    # needs an hourly time spine in MetricFlow: tests/compile/test_conversion.py checks it.)
    {"metrics": "visits_by_minute", "group_by": "metric_time__hour"},
    {"metrics": "visits_by_minute,visitors_by_minute", "group_by": "metric_time"},
    {"metrics": "visits_by_minute", "group_by": "visit__visited_at"},
    {
        "metrics": "visits_per_visitor_by_minute",
        "group_by": "metric_time__hour,visit__referrer",
        "where": "{{ TimeDimension('metric_time', 'hour') }} >= '2024-02-10 12:00'",
    },
    {
        "metrics": "visits_by_minute",
        "group_by": "metric_time__day",
        "start_time": "2024-01-05",
        "end_time": "2024-01-20",
    },
    {"metrics": "visits_by_minute", "group_by": "visit__visited_at__minute,visit__visited_at__hour"},
    # custom granularities of the user's time spine, on metric time and a time dimension, in a
    # ratio, and without a metric; join_to_timespine over that spine at several grains
    {"metrics": "revenue,orders", "group_by": "metric_time__fiscal_quarter"},
    {"metrics": "revenue_per_buyer", "group_by": "metric_time__alien_day,customer__segment"},
    {"metrics": "buyers", "group_by": "order__ordered_at__fiscal_quarter"},
    {"metrics": "", "group_by": "metric_time__alien_day", "start_time": "2024-01-01", "end_time": "2024-01-10"},
    {"metrics": "revenue_fiscal_quarter_before", "group_by": "metric_time__day"},
    {"metrics": "revenue_fiscal_quarter_before,revenue", "group_by": "metric_time__week"},
    {"metrics": "orders_filled", "group_by": "metric_time__day"},
    {"metrics": "orders_filled", "group_by": "metric_time__week"},
    {"metrics": "orders_filled,revenue", "group_by": "metric_time__month"},
    {
        "metrics": "orders_filled",
        "group_by": "metric_time__day",
        "where": "{{ Dimension('customer__segment') }} = 'vip'",
    },
    {"metrics": "orders_filled", "group_by": "order__ordered_at__day"},
    {
        "metrics": "orders_filled",
        "group_by": "metric_time__week",
        "where": "{{ TimeDimension('metric_time', 'day') }} >= '2024-02-01'",
    },
    # offsets through the spine (a month before March 31st is February 29th), an all-time total
    # over the user's spine, join_to_timespine under a cumulative window
    {"metrics": "revenue_1_month_ago", "group_by": "metric_time__day"},
    {"metrics": "revenue_all_time", "group_by": "metric_time__week"},
    {
        "metrics": "buyers_2d_filled",
        "group_by": "metric_time__day",
        "start_time": "2023-12-25",
        "end_time": "2024-04-05",
    },
    # is_partition: visits join visitor_days on the visitor and on the day
    {"metrics": "visits", "group_by": "visitor__plan"},
    {"metrics": "visits,visit_buy_conversions", "group_by": "metric_time__week,visitor__plan"},
    # metric filters, in a metric's filter and in a where, with other filters beside them
    {"metrics": "repeat_customer_revenue", "group_by": "metric_time__month"},
    {"metrics": "repeat_customer_revenue,revenue", "group_by": "customer__segment"},
    {
        "metrics": "revenue,orders",
        "group_by": "metric_time__week",
        "where": "{{ Metric('revenue', group_by=['customer']) }} > 1500",
    },
    {
        "metrics": "revenue_7d",
        "group_by": "metric_time__week",
        "where": "{{ Metric('orders', group_by=['customer']) }} < 12 and {{ Dimension('customer__segment') }} = 'vip'",
    },
    {
        "metrics": "",
        "group_by": "customer__segment",
        "where": "{{ Metric('buyers', group_by=['customer']) }} = 1",
    },
    # cumulative metrics by a custom granularity (days of the spine grouped by its column)
    {"metrics": "revenue_7d", "group_by": "metric_time__fiscal_quarter"},
    {"metrics": "revenue_mtd,revenue_all_time", "group_by": "metric_time__alien_day"},
    {"metrics": "revenue_7d", "group_by": "order__ordered_at__fiscal_quarter,customer__segment"},
    # issue 24: an input's fill_nulls_with holds on the days only its offset twin has rows
    {"metrics": "revenue_filled_wow", "group_by": "metric_time__day"},
    {
        "metrics": "revenue_filled_wow,revenue_filled",
        "group_by": "metric_time__day",
        "start_time": "2024-01-18",
        "end_time": "2024-02-05",
    },
    # issue 24: offset_to_grain by a week, a year, and a week beside a month
    {"metrics": "revenue_since_month_start", "group_by": "metric_time__week"},
    {"metrics": "revenue_month_start", "group_by": "metric_time__year"},
    {"metrics": "revenue_since_month_start", "group_by": "metric_time__month,metric_time__week"},
    # issue 24: a month-over-month growth whose range starts at a month (jaffle's revenue_growth_mom)
    {"metrics": "revenue_filled_mom", "group_by": "metric_time__month", "start_time": "2024-02-01"},
    {"metrics": "revenue_filled_mom", "group_by": "metric_time__month"},
    {"metrics": "revenue_filled_mom", "group_by": "metric_time__month", "start_time": "2024-02-10"},
    {"metrics": "revenue_filled_mom", "group_by": "metric_time__quarter"},
    {"metrics": "revenue_filled_mom", "group_by": "metric_time__week"},
    {"metrics": "revenue_1_month_ago", "group_by": "metric_time__month"},
    {
        "metrics": "revenue_1_month_ago",
        "group_by": "metric_time__day",
        "start_time": "2024-02-25",
        "end_time": "2024-03-05",
    },
]


def to_dbt_yaml(text: str) -> str:
    """Pantry YAML -> dbt's: ``model: ref()`` for ``source:``, labels, meta under config."""
    spec = yaml.safe_load(text)
    spec.pop("project", None)
    spec.pop("time_spines", None)  # dbt declares its spine as a model (time_spine.yml)
    for model in spec.get("semantic_models", []):
        model["model"] = f"ref('{Path(model.pop('source')).stem}')"
    for metric in spec["metrics"]:
        metric.setdefault("label", metric["name"])
        if "meta" in metric:
            metric["config"] = {"meta": metric.pop("meta")}
    return yaml.safe_dump(spec, sort_keys=False)


MODELS = ("orders", "customers", "regions", "accounts", "visits", "buys", "visitor_days")
PG_SCHEMA = "analytics"  # where dbt builds the models on PostgreSQL, and where Pantry's node_relation points


def load_postgres(port: int, data: Path) -> None:
    """The shop's files as tables of schema ``raw`` in database ``shop``: the warehouse both read."""
    import adbc_driver_postgresql.dbapi as dbapi
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    with dbapi.connect(f"postgresql://pantry@127.0.0.1:{port}/postgres", autocommit=True) as admin:
        with admin.cursor() as cur:
            cur.execute("CREATE DATABASE shop")
    with dbapi.connect(f"postgresql://pantry@127.0.0.1:{port}/shop", autocommit=True) as con, con.cursor() as cur:
        cur.execute("CREATE SCHEMA raw")
        for name in (*MODELS, "time_spine"):
            path = data / (f"{name}.csv" if name == "regions" else f"{name}.parquet")
            table = pacsv.read_csv(path) if path.suffix == ".csv" else pq.read_table(path)
            cur.adbc_ingest(name, table, mode="create", db_schema_name="raw")


def dbt_project(root: Path, pg_port: int | None = None) -> Path:
    """A dbt project over the shop data, with a day time spine, parsed for MetricFlow: on
    DuckDB (the files), or with ``pg_port`` on PostgreSQL (the files loaded as tables first)."""
    project = root / "shop_dbt"
    (project / "models").mkdir(parents=True)
    data = root / "data"
    data.mkdir()
    frames = shop_frames()
    frames["orders"].to_parquet(data / "orders.parquet", index=False)
    frames["customers"].to_parquet(data / "customers.parquet", index=False)
    frames["regions"].to_csv(data / "regions.csv", index=False)
    accounts_frame().to_parquet(data / "accounts.parquet", index=False)
    for name, frame in funnel_frames().items():
        frame.to_parquet(data / f"{name}.parquet", index=False)
    (project / "dbt_project.yml").write_text(
        "name: shop\nversion: '1.0'\nprofile: shop\nconfig-version: 2\nmodel-paths: [models]\n"
    )
    time_spine_frame().to_parquet(data / "time_spine.parquet", index=False)
    if pg_port is None:
        (project / "profiles.yml").write_text(
            f"shop:\n  target: dev\n  outputs:\n    dev:\n      type: duckdb\n      path: {root / 'shop.duckdb'}\n      threads: 1\n"
        )
        (project / "models" / "orders.sql").write_text(f"select * from read_parquet('{data / 'orders.parquet'}')")
        (project / "models" / "customers.sql").write_text(f"select * from read_parquet('{data / 'customers.parquet'}')")
        (project / "models" / "regions.sql").write_text(f"select * from read_csv_auto('{data / 'regions.csv'}')")
        for name in ("accounts", "visits", "buys", "visitor_days"):
            (project / "models" / f"{name}.sql").write_text(f"select * from read_parquet('{data / f'{name}.parquet'}')")
        (project / "models" / "metricflow_time_spine.sql").write_text(
            f"select * from read_parquet('{data / 'time_spine.parquet'}')"
        )
    else:
        load_postgres(pg_port, data)
        (project / "profiles.yml").write_text(
            "shop:\n  target: dev\n  outputs:\n    dev:\n      type: postgres\n      host: 127.0.0.1\n"
            f"      port: {pg_port}\n      user: pantry\n      password: ''\n      dbname: shop\n"
            f"      schema: {PG_SCHEMA}\n      threads: 1\n"
        )
        for name in MODELS:
            (project / "models" / f"{name}.sql").write_text(f"select * from raw.{name}")
        (project / "models" / "metricflow_time_spine.sql").write_text("select * from raw.time_spine")
    # the same spine as Pantry's time_spines: in TIME_SPINE_YAML, in dbt's form
    spine = textwrap.dedent("""
        models:
          - name: metricflow_time_spine
            time_spine:
              standard_granularity_column: ds
              custom_granularities:
                - {name: fiscal_quarter, column_name: fq_start}
                - {name: alien_day}
            columns:
              - name: ds
                granularity: day
              - name: fq_start
              - name: alien_day
    """)
    (project / "models" / "time_spine.yml").write_text(spine)
    (project / "models" / "shop.yml").write_text(to_dbt_yaml(SHOP_YAML))
    (project / "models" / "accounts.yml").write_text(to_dbt_yaml(ACCOUNTS_YAML))
    (project / "models" / "funnel.yml").write_text(to_dbt_yaml(FUNNEL_YAML))
    (project / "models" / "extras.yml").write_text(to_dbt_yaml(SHOP_EXTRAS_YAML))
    (project / "models" / "spine_metrics.yml").write_text(to_dbt_yaml(TIME_SPINE_YAML))
    env = {"DBT_PROFILES_DIR": str(project), "PATH": f"{MF_BIN}:/usr/bin:/bin"}
    subprocess.run([str(MF_BIN / "dbt"), "build", "--quiet"], cwd=project, env=env, check=True)
    subprocess.run([str(MF_BIN / "dbt"), "parse", "--quiet"], cwd=project, env=env, check=True)
    return project


def mf_query(project: Path, query: dict[str, str], out: Path) -> pd.DataFrame:
    args = [str(MF_BIN / "mf"), "query", "--csv", str(out)]
    if query["metrics"]:  # no metrics: a query of distinct group-by values
        args += ["--metrics", query["metrics"]]
    if query.get("group_by"):
        args += ["--group-by", query["group_by"]]
    for flag in ("where", "start_time", "end_time"):
        if query.get(flag):
            args += [f"--{flag.replace('_', '-')}", query[flag]]
    env = {"DBT_PROFILES_DIR": str(project), "PATH": f"{MF_BIN}:/usr/bin:/bin", "HOME": str(project)}
    done = subprocess.run(args, cwd=project, env=env, capture_output=True, text=True)
    if done.returncode != 0 or not out.exists():
        raise RuntimeError(f"mf query failed: {done.stdout[-1500:]} {done.stderr[-1500:]}")
    return pd.read_csv(out)


def ask(store: Any, query: dict[str, str]) -> pd.DataFrame:
    """One query of ``QUERIES`` (or the recorded ``queries.yaml``) through ``Store.query``."""
    return store.query(
        query["metrics"],
        group_by=query.get("group_by") or (),
        where=query.get("where"),
        start_time=query.get("start_time"),
        end_time=query.get("end_time"),
    )


def canonical(frame: pd.DataFrame) -> list[tuple]:
    """Rows as sorted tuples of strings/rounded floats, columns lower-cased and sorted."""
    frame = frame.rename(columns=str.lower)
    frame = frame[sorted(frame.columns)]
    rows = []
    for row in frame.itertuples(index=False):
        cells = []
        for value in row:
            if value is None or (isinstance(value, float) and value != value) or value is pd.NA or value is pd.NaT:
                cells.append("<null>")
            elif isinstance(value, (int, float)) and not isinstance(value, bool):
                cells.append(f"{float(value):.6g}")
            else:
                text = str(value)
                if re.match(r"\d{4}-\d{2}-\d{2}", text):  # a day as a date; a time below a day kept
                    text = text[:10] if text[10:].strip(" T0:.") == "" else text[:19].replace("T", " ")
                cells.append(text)
        rows.append(tuple(cells))
    return sorted(rows)


RECORDED = ROOT / "tests" / "compile" / "metricflow_answers"


def main() -> int:
    """Compare live (``--engine postgres``: on a PostgreSQL of its own); with ``--record``,
    also save MetricFlow's answers for the test suite."""
    record = "--record" in sys.argv and "--engine" not in sys.argv
    if record:
        RECORDED.mkdir(parents=True, exist_ok=True)
        (RECORDED / "queries.yaml").write_text(yaml.safe_dump(QUERIES, sort_keys=False))

    if not (MF_BIN / "mf").exists():
        print(f"MetricFlow is not installed in {MF_BIN.parent}; see this script's docstring")
        return 2
    on_postgres = "--engine" in sys.argv and sys.argv[sys.argv.index("--engine") + 1] == "postgres"
    server = None
    if on_postgres:
        from tests.conftest import PostgresServer

        server = PostgresServer()  # a cluster of its own on a free port, stopped at the end
    try:
        return _compare(record, server)
    finally:
        if server is not None:
            server.stop()


def to_warehouse(text: str) -> str:
    """Pantry YAML whose file sources become the dbt models' tables, named as dbt does."""
    spec = yaml.safe_load(text)
    for item in [*spec.get("semantic_models", []), *spec.get("time_spines", [])]:
        stem = Path(item.pop("source")).stem
        alias = "metricflow_time_spine" if stem == "time_spine" else stem
        item["node_relation"] = {"schema_name": PG_SCHEMA, "alias": alias}
    return yaml.safe_dump(spec, sort_keys=False)


def _compare(record: bool, server: object | None) -> int:  # noqa: PLR0915 - one report, top to bottom
    """Every query through ``mf query`` and ``Store.query``, side by side (on PostgreSQL when
    ``server`` is given: MetricFlow through dbt-postgres, Pantry with it as the engine)."""
    from pantry import PantryError, Store
    from tests.conftest import write_defs

    port = getattr(server, "port", None)
    shape = to_warehouse if port is not None else (lambda text: text)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        project = dbt_project(root, port)
        defs = write_defs(
            root / "pantry",
            {
                "shop.yaml": shape(SHOP_YAML),
                "accounts.yaml": shape(ACCOUNTS_YAML),
                "funnel.yaml": shape(FUNNEL_YAML),
                "extras.yaml": shape(SHOP_EXTRAS_YAML),
                "spine.yaml": shape(TIME_SPINE_YAML),
            },
        )
        (defs / "data").mkdir()
        for name in (
            "orders.parquet",
            "customers.parquet",
            "regions.csv",
            "accounts.parquet",
            "visits.parquet",
            "buys.parquet",
            "visitor_days.parquet",
            "time_spine.parquet",
        ):
            (defs / "data" / name).write_bytes((root / "data" / name).read_bytes())
        engine = f"postgresql://pantry@127.0.0.1:{port}/shop" if port is not None else None
        store = Store(defs=defs, home=root / "home", engine=engine)
        print(
            f"engine: {'PostgreSQL (dbt-postgres for MetricFlow)' if engine else 'DuckDB (dbt-duckdb for MetricFlow)'}"
        )
        failures = 0
        print(f"| {'query':<95} | rows mf | rows pantry | same |")
        print(f"|{'-' * 97}|---------|-------------|------|")
        # --only 3,45: a few queries while working on them (never with --record)
        only = {int(i) for i in sys.argv[sys.argv.index("--only") + 1].split(",")} if "--only" in sys.argv else None
        for i, query in enumerate(QUERIES):
            if only is not None and i not in only:
                continue
            label = " ".join(f"{k}={v}" for k, v in query.items() if v)
            try:
                theirs = mf_query(project, query, root / f"mf_{i}.csv")
                if record:
                    theirs.to_csv(RECORDED / f"{i:02d}.csv", index=False)
            except RuntimeError as err:
                print(f"| {label:<95} | error   |             | mf failed: {str(err)[:200]}")
                failures += 1
                continue
            try:
                ours = ask(store, query)
            except PantryError as err:
                print(f"| {label:<95} | {len(theirs):>7} | error       | NO: {str(err)[:300]}")
                failures += 1
                continue
            same = canonical(theirs) == canonical(ours)
            failures += not same
            print(f"| {label:<95} | {len(theirs):>7} | {len(ours):>11} | {'yes' if same else 'NO'} |")
            if not same:
                a, b = set(canonical(theirs)), set(canonical(ours))
                print("    only in mf:", sorted(a - b)[:5])
                print("    only in pantry:", sorted(b - a)[:5])
        ran = len(QUERIES) if only is None else len(only)
        print(f"\n{ran - failures} of {ran} queries identical to MetricFlow")
        return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
