"""Fixtures that start real things: definitions folders on disk, DuckDB files, Dagster.

Why no mocks: Pantry's promise is that a definition means the same in DuckDB, in
Dagster and in the CLI. Only the real parts can break that promise, so tests use them.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pytest

from pantry import Store
from pantry.demo.data import build_demo_data
from tests.spark_cluster import SparkCluster, java_missing, s3a_jars, s3a_settings

if TYPE_CHECKING:
    from dagster import DagsterInstance

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def demo_defs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the repo's metrics_defs with the demo data built, in a temp project."""
    root = tmp_path_factory.mktemp("demo_project")
    shutil.copytree(REPO / "metrics_defs", root / "metrics_defs", ignore=shutil.ignore_patterns("data"))
    source_data = REPO / "metrics_defs" / "data"
    if source_data.exists():
        shutil.copytree(source_data, root / "metrics_defs" / "data")
    build_demo_data(root / "metrics_defs")
    return root / "metrics_defs"


def write_defs(root: Path, files: dict[str, str]) -> Path:
    """Write YAML files (dedented) under ``root/metrics_defs`` and return that folder."""
    defs = root / "metrics_defs"
    defs.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (defs / name).write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return defs


def store_over(root: Path, yaml: str, tables: dict[str, pd.DataFrame]) -> Store:
    """A Store over one YAML file and its sources, each table as ``data/<name>.parquet``."""
    defs = write_defs(root, {"defs.yaml": yaml})
    (defs / "data").mkdir(exist_ok=True)
    for name, frame in tables.items():
        frame.to_parquet(defs / "data" / f"{name}.parquet", index=False)
    return Store(defs=defs, home=root / "home")


@pytest.fixture
def make_defs(tmp_path: Path) -> Callable[[dict[str, str]], Path]:
    return lambda files: write_defs(tmp_path, files)


def shop_frames(seed: int = 7, n_orders: int = 400) -> dict[str, pd.DataFrame]:
    """A small shop with the awkward cases: null segments, midnight orders, gaps in days."""
    rng = np.random.default_rng(seed)
    customers = pd.DataFrame(
        {
            "customer_id": np.arange(1, 31),
            "segment": rng.choice(["retail", "vip", None], size=30, p=[0.5, 0.3, 0.2]),
            "region_id": rng.integers(1, 4, size=30),
        }
    )
    regions = pd.DataFrame({"region_id": [1, 2, 3], "region_name": ["north", "south", "east"]})
    day0 = pd.Timestamp("2024-01-01")
    days = rng.choice(np.r_[0:20, 25:60], size=n_orders)  # days 20..24 have no orders
    minutes = rng.choice([0, 1, 600, 1439], size=n_orders)  # midnight and last-minute orders
    orders = pd.DataFrame(
        {
            "order_id": np.arange(1, n_orders + 1),
            "customer_id": rng.integers(1, 31, size=n_orders),
            "ordered_at": day0 + pd.to_timedelta(days, unit="D") + pd.to_timedelta(minutes, unit="m"),
            "amount": rng.integers(1, 200, size=n_orders).astype(float),
            "status": rng.choice(["completed", "returned", "pending"], size=n_orders),
        }
    )
    return {"orders": orders, "customers": customers, "regions": regions}


# A semi-additive model beside the shop: account balances, recorded on some days.
ACCOUNTS_YAML = """
semantic_models:
  - name: accounts
    source: data/accounts.parquet
    defaults: {agg_time_dimension: ds}
    entities:
      - {name: account, type: primary, expr: account_id}
      - {name: user, type: foreign, expr: user_id}
    dimensions:
      - {name: ds, type: time, type_params: {time_granularity: day}}
    measures:
      - {name: balance_last, agg: sum, expr: balance, non_additive_dimension: {name: ds, window_choice: max}}
      - {name: balance_first, agg: sum, expr: balance, non_additive_dimension: {name: ds, window_choice: min}}
      - name: balance_by_user
        agg: sum
        expr: balance
        non_additive_dimension: {name: ds, window_choice: max, window_groupings: [user]}
metrics:
  - {name: balance_last, type: simple, type_params: {measure: balance_last}}
  - {name: balance_first, type: simple, type_params: {measure: balance_first}}
  - {name: balance_by_user, type: simple, type_params: {measure: balance_by_user}}
"""


def accounts_frame(seed: int = 5) -> pd.DataFrame:
    """Balances of 12 accounts of 5 users, each recorded on a few random days of Jan-Mar 2024."""
    rng = np.random.default_rng(seed)
    rows = []
    for account in range(1, 13):
        days = sorted(rng.choice(np.arange(0, 90), size=int(rng.integers(2, 7)), replace=False))
        for day in days:
            rows.append(
                (
                    account,
                    100 + account % 5,
                    pd.Timestamp("2024-01-01") + pd.Timedelta(days=int(day)),
                    float(rng.integers(0, 1000)),
                )
            )
    return pd.DataFrame(rows, columns=["account_id", "user_id", "ds", "balance"])


# A funnel beside the shop, for conversion metrics: visits of users to products, and buys.
FUNNEL_YAML = """
semantic_models:
  - name: visits
    source: data/visits.parquet
    defaults: {agg_time_dimension: ds}
    entities:
      - {name: visit, type: primary, expr: visit_id}
      - {name: visitor, type: foreign, expr: user_id}
      - {name: product, type: foreign, expr: product_id}
    dimensions:
      - {name: ds, type: time, type_params: {time_granularity: day}}
      - {name: partition_day, type: time, expr: ds, type_params: {time_granularity: day}, is_partition: true}
      - {name: visited_at, type: time, expr: ds, type_params: {time_granularity: minute}}
      - {name: referrer, type: categorical}
    measures:
      - {name: visits, agg: count, expr: visit_id}
      - {name: visits_by_minute, agg: count, expr: visit_id, agg_time_dimension: visited_at, create_metric: true}
      - {name: visitors_by_minute, agg: count_distinct, expr: user_id, agg_time_dimension: visited_at}
  # one row per visitor and day: joined on the visitor and, as both sides have the partition
  # dimension partition_day, on the day too
  - name: visitor_days
    source: data/visitor_days.parquet
    entities:
      - {name: visitor, type: primary, expr: user_id}
    dimensions:
      - {name: partition_day, type: time, expr: ds, type_params: {time_granularity: day}, is_partition: true}
      - {name: plan, type: categorical}
  - name: buys
    source: data/buys.parquet
    defaults: {agg_time_dimension: ds}
    entities:
      - {name: buy, type: primary, expr: buy_id}
      - {name: visitor, type: foreign, expr: user_id}
      - {name: product, type: foreign, expr: product_id}
    dimensions:
      - {name: ds, type: time, type_params: {time_granularity: day}}
    measures:
      - {name: buys, agg: count, expr: buy_id}
      - {name: buying_users, agg: count_distinct, expr: user_id}
metrics:
  - {name: visitors_by_minute, type: simple, type_params: {measure: visitors_by_minute}}
  - name: visits_per_visitor_by_minute
    type: ratio
    type_params: {numerator: visits_by_minute, denominator: visitors_by_minute}
  - name: visits_by_minute_vs_hour_before
    type: derived
    type_params:
      expr: visits_by_minute - before
      metrics:
        - {name: visits_by_minute}
        - {name: visits_by_minute, offset_window: 1 hour, alias: before}
  - name: visit_buy_rate_7d
    type: conversion
    type_params:
      conversion_type_params:
        entity: visitor
        calculation: conversion_rate
        base_measure: visits
        conversion_measure: buys
        window: 7 days
  - name: visit_buy_conversions
    type: conversion
    type_params:
      conversion_type_params:
        entity: visitor
        calculation: conversions
        base_measure: {name: visits}
        conversion_measure: {name: buys, fill_nulls_with: 0}
  - name: same_product_rate_7d
    type: conversion
    type_params:
      conversion_type_params:
        entity: visitor
        base_measure: visits
        conversion_measure: buys
        window: 7 days
        constant_properties:
          - {base_property: product, conversion_property: product}
  - name: buys_3d
    type: conversion
    type_params:
      conversion_type_params:
        entity: visitor
        calculation: conversions
        base_measure: visits
        conversion_measure: buys
        window: 3 days
"""


# More metrics over the shop: inputs read at the start of a period (offset_to_grain), and
# metric filters.
SHOP_EXTRAS_YAML = """
metrics:
  - name: revenue_1_month_ago
    type: derived
    type_params:
      expr: revenue_before
      metrics:
        - {name: revenue, offset_window: 1 month, alias: revenue_before}
  - name: buyers_2d_filled
    type: cumulative
    type_params:
      measure: {name: buyers, join_to_timespine: true, fill_nulls_with: 0}
      cumulative_type_params: {window: 2 days}
  - name: revenue_filled
    type: simple
    type_params:
      measure: {name: revenue, fill_nulls_with: 0}
  - name: revenue_filled_wow
    type: derived
    type_params:
      expr: revenue_filled - revenue_filled_before
      metrics:
        - {name: revenue_filled}
        - {name: revenue_filled, offset_window: 7 days, alias: revenue_filled_before}
  - name: revenue_filled_mom
    type: derived
    type_params:
      expr: (current_revenue - revenue_prev_month) * 100 / revenue_prev_month
      metrics:
        - {name: revenue_filled, alias: current_revenue}
        - {name: revenue_filled, offset_window: 1 month, alias: revenue_prev_month}
  - name: revenue_7d_wow
    type: derived
    type_params:
      expr: revenue_7d - revenue_7d_before
      metrics:
        - {name: revenue_7d}
        - {name: revenue_7d, offset_window: 7 days, alias: revenue_7d_before}
  - name: repeat_customer_revenue
    type: simple
    type_params: {measure: revenue}
    filter: "{{ Metric('orders', group_by=['customer']) }} >= 14"
  - name: revenue_month_start
    type: derived
    type_params:
      expr: revenue_start
      metrics:
        - {name: revenue, offset_to_grain: month, alias: revenue_start}
  - name: revenue_since_month_start
    type: derived
    type_params:
      expr: revenue - revenue_start
      metrics:
        - {name: revenue}
        - {name: revenue, offset_to_grain: month, alias: revenue_start}
  - name: buyers_vs_quarter_start
    type: derived
    type_params:
      expr: buyers - first_buyers
      metrics:
        - {name: buyers}
        - {name: buyers, offset_to_grain: quarter, alias: first_buyers}
"""


# A user's time spine, 2023 to 2025, with two custom granularities: a fiscal quarter (the
# fiscal year starts on February 1st) and MetricFlow's test grain alien_day (3-day periods).
TIME_SPINE_YAML = """
time_spines:
  - name: shop_spine
    source: data/time_spine.parquet
    primary_column: {name: ds, time_granularity: day}
    custom_granularities:
      - {name: fiscal_quarter, column_name: fq_start}
      - {name: alien_day}
metrics:
  - name: revenue_fiscal_quarter_before
    type: derived
    type_params:
      expr: revenue_before
      metrics:
        - {name: revenue, offset_window: 1 fiscal_quarter, alias: revenue_before}
"""


def time_spine_frame() -> pd.DataFrame:
    days = pd.date_range("2023-01-01", "2025-12-31", freq="D")
    shifted = days - pd.DateOffset(months=1)  # fiscal Q1 = February to April
    fq_start = pd.to_datetime(
        [pd.Timestamp(d.year, (d.month - 1) // 3 * 3 + 1, 1) + pd.DateOffset(months=1) for d in shifted]
    )
    alien = days - pd.to_timedelta((days - days[0]).days % 3, unit="D")
    return pd.DataFrame({"ds": days.date, "fq_start": fq_start.date, "alien_day": alien.date})


def funnel_frames(seed: int = 11) -> dict[str, pd.DataFrame]:
    """40 users visiting 5 products in Jan-Feb 2024 (at most one visit per user and day, so
    "the latest visit before a buy" is never a tie), and buys, some days after a visit."""
    rng = np.random.default_rng(seed)
    visits, buys = [], []
    for user in range(1, 41):
        days = sorted(rng.choice(np.arange(0, 60), size=int(rng.integers(1, 6)), replace=False))
        for day in days:
            product = int(rng.integers(1, 6))
            when = pd.Timestamp("2024-01-01") + pd.Timedelta(days=int(day), minutes=int(rng.integers(0, 1440)))
            referrer = str(rng.choice(["search", "ad", "direct"]))
            visits.append((len(visits) + 1, user, product, when, referrer))
            if rng.random() < 0.5:  # a buy 0-12 days later, of this product or another
                later = when + pd.Timedelta(days=int(rng.integers(0, 13)), minutes=int(rng.integers(0, 600)))
                bought = product if rng.random() < 0.7 else int(rng.integers(1, 6))
                buys.append((len(buys) + 1, user, bought, later, float(rng.integers(5, 200))))
    for user in (41, 42):  # buyers who never visited
        buys.append((len(buys) + 1, user, 1, pd.Timestamp("2024-01-15 10:00"), 50.0))
    days = []
    for user in range(1, 41):  # each visitor's plan, day by day: free, then pro from some day on
        upgrade = int(rng.integers(0, 90))
        for day in range(60):
            days.append(
                (user, pd.Timestamp("2024-01-01") + pd.Timedelta(days=day), "pro" if day >= upgrade else "free")
            )
    return {
        "visitor_days": pd.DataFrame(days, columns=["user_id", "ds", "plan"]),
        "visits": pd.DataFrame(visits, columns=["visit_id", "user_id", "product_id", "ds", "referrer"]),
        "buys": pd.DataFrame(buys, columns=["buy_id", "user_id", "product_id", "ds", "amount"]),
    }


SHOP_YAML = """
project:
  name: shop
  partitions: {start: 2024-01-01}
semantic_models:
  - name: orders
    source: data/orders.parquet
    defaults: {agg_time_dimension: ordered_at}
    entities:
      - {name: order, type: primary, expr: order_id}
      - {name: customer, type: foreign, expr: customer_id}
    dimensions:
      - {name: ordered_at, type: time, type_params: {time_granularity: day}}
      - {name: status, type: categorical}
    measures:
      - {name: revenue, agg: sum, expr: amount}
      - {name: order_count, agg: sum, expr: "1"}
      - {name: buyers, agg: count_distinct, expr: customer_id}
      - {name: median_amount, agg: median, expr: amount}
      - {name: p90_amount, agg: percentile, expr: amount, agg_params: {percentile: 0.9}}
      - {name: avg_amount, agg: average, expr: amount}
      - {name: max_amount, agg: max, expr: amount}
      - {name: min_amount, agg: min, expr: amount}
      - {name: big_orders, agg: sum_boolean, expr: amount >= 100}
      - {name: counted_orders, agg: count, expr: order_id}
  - name: customers
    source: data/customers.parquet
    entities:
      - {name: customer, type: primary, expr: customer_id}
      - {name: region, type: foreign, expr: region_id}
    dimensions:
      - {name: segment, type: categorical}
  - name: regions
    source: data/regions.csv
    entities:
      - {name: region, type: primary, expr: region_id}
    dimensions:
      - {name: region_name, type: categorical}
metrics:
  - {name: revenue, type: simple, type_params: {measure: revenue}}
  - name: completed_revenue
    type: simple
    type_params: {measure: revenue}
    filter: "{{ Dimension('order__status') }} = 'completed'"
    meta: {owner: finance, tier: gold}
  - {name: orders, type: simple, type_params: {measure: order_count}}
  - {name: buyers, type: simple, type_params: {measure: buyers}}
  - {name: median_amount, type: simple, type_params: {measure: median_amount}}
  - {name: p90_amount, type: simple, type_params: {measure: p90_amount}}
  - {name: avg_amount, type: simple, type_params: {measure: avg_amount}}
  - {name: big_orders, type: simple, type_params: {measure: big_orders}}
  - {name: counted_orders, type: simple, type_params: {measure: counted_orders}}
  - name: revenue_per_buyer
    type: ratio
    type_params: {numerator: completed_revenue, denominator: buyers}
  - name: revenue_7d
    type: cumulative
    type_params: {measure: revenue, cumulative_type_params: {window: 7 days}}
  - name: revenue_mtd
    type: cumulative
    type_params: {measure: revenue, cumulative_type_params: {grain_to_date: month}}
  - name: revenue_all_time
    type: cumulative
    type_params: {measure: revenue}
  - name: revenue_wow
    type: derived
    type_params:
      expr: revenue - revenue_prev
      metrics:
        - {name: revenue}
        - {name: revenue, offset_window: 7 days, alias: revenue_prev}
  - name: revenue_per_big_order
    type: ratio
    type_params: {numerator: revenue, denominator: big_orders}
  - name: orders_filled
    type: simple
    type_params:
      measure: {name: order_count, fill_nulls_with: 0, join_to_timespine: true}
"""


@pytest.fixture(scope="session")
def shop(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, pd.DataFrame]]:
    """The shop's definitions and the frames they read, for brute-force oracles."""
    root = tmp_path_factory.mktemp("shop")
    defs = write_defs(root, {"shop.yaml": SHOP_YAML})
    frames = shop_frames()
    (defs / "data").mkdir()
    frames["orders"].to_parquet(defs / "data" / "orders.parquet", index=False)
    frames["customers"].to_parquet(defs / "data" / "customers.parquet", index=False)
    frames["regions"].to_csv(defs / "data" / "regions.csv", index=False)
    return defs, frames


@pytest.fixture
def dagster_home(tmp_path: Path) -> Iterator[Path]:
    """A real Dagster instance directory, set as DAGSTER_HOME for the test."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    old = os.environ.get("DAGSTER_HOME")
    os.environ["DAGSTER_HOME"] = str(home)
    yield home
    if old is None:
        os.environ.pop("DAGSTER_HOME", None)
    else:
        os.environ["DAGSTER_HOME"] = old


# Dagster's in-memory event log: the SQL event log's own schema and queries in one SQLite
# held open, where the file-backed log opens and disposes an engine for every event
IN_MEMORY_EVENT_LOG = {"module": "dagster._core.storage.event_log", "class": "InMemoryEventLogStorage"}


@contextmanager
def dagster_instance(temp_dir: Path | None = None) -> Iterator[DagsterInstance]:
    """Dagster's test instance (``instance_for_test``, DAGSTER_HOME set to ``temp_dir``) whose
    event log is Dagster's in-memory one, for a test that runs Dagster in its own process.

    Why: the file-backed SQLite log created and disposed an engine for each event (and an
    instance checks its migrations on start), a fifth of the in-process Dagster tests' CPU.
    Pantry reads the log through Dagster's storage interface, the same for both. Where the
    log must outlive the process or be shared (``dagster dev``, Dagster's CLI, a deployment
    on PostgreSQL), the tests open the instance from its folder, file-backed as users run it."""
    import dagster as dg

    with dg.instance_for_test(
        overrides={"event_log_storage": IN_MEMORY_EVENT_LOG}, temp_dir=str(temp_dir) if temp_dir else None
    ) as instance:
        yield instance


def run_cli_here(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, args: list[str], env: dict[str, str]
) -> tuple[int, str, str]:
    """``pantry <args>`` through the CLI's own ``main`` in this process, with ``env`` set:
    (exit code, stdout, stderr). Why not a subprocess: each one pays an interpreter and
    Pantry's imports (Evidently's alone is 4.5 s), where a test asks what the command says.
    ``COLUMNS`` also sets the width of the CLI's consoles, which read it once, at import."""
    from pantry.api import cli

    for name, value in env.items():
        monkeypatch.setenv(name, value)
    if "COLUMNS" in env:
        for console in (cli.console, cli.errors):
            monkeypatch.setattr(console, "_width", int(env["COLUMNS"]))
    monkeypatch.setattr(sys, "argv", ["pantry", *args])
    code = 0
    try:
        cli.main()
    except SystemExit as done:
        code = int(done.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def cli_run(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, args: list[str], env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    """``run_cli_here`` answered as ``subprocess.run`` would, with ``env`` as the only Pantry
    and Dagster settings (any other ``PANTRY_*`` or ``DAGSTER_*`` variable is unset, as in a
    subprocess given that environment; ``PATH`` is left as it is)."""
    for name in list(os.environ):
        if name.startswith(("PANTRY_", "DAGSTER_")) and name not in env:
            monkeypatch.delenv(name)
    given = {k: v for k, v in env.items() if k != "PATH"}
    code, out, err = run_cli_here(monkeypatch, capsys, args, given)
    return subprocess.CompletedProcess(["pantry", *args], code, out, err)


@pytest.fixture(scope="session")
def spark_cluster() -> Iterator[SparkCluster]:
    """A real standalone cluster: a master, two one-core workers and a Spark Connect server.

    Why one per session, for every module that needs Spark (their tests are one xdist group,
    so one worker runs them all): its four JVMs take seconds to start and a core while they
    run, and a process that has opened a Connect session cannot open a local one after it."""
    missing = java_missing()
    if missing:
        pytest.skip(missing)
    # its own S3 endpoint, which s3a:// reaches with the cluster's settings (a user's cluster
    # has its own); no AWS variables are set here: the test that uses it sets them
    endpoint = S3Endpoint()
    jars = s3a_jars()
    cluster = SparkCluster(settings=s3a_settings(endpoint.url) if jars else None, classpath=jars)
    cluster.s3 = endpoint  # type: ignore[attr-defined]
    yield cluster
    cluster.stop()
    endpoint.close()


# Test files whose tests one xdist worker runs together (``make test``'s ``--dist loadgroup``):
# they share a session's server (a Spark cluster of four JVMs; a PostgreSQL cluster with the
# demo loaded), which each worker would otherwise start for itself. Why a table here and not
# ``xdist_group`` marks: pytest-xdist 3.8 groups by renaming each test's node id, which
# pytest 9.2 no longer reads, so those marks group nothing.
GROUPS = {
    "tests/engines/test_spark_engine.py": "spark",
    "tests/compile/test_spark.py": "spark",
    "tests/engines/test_postgres_engine.py": "postgres",
    "tests/engines/test_postgres_metricflow_answers.py": "postgres",
    # a module whose module-scoped fixture costs seconds stays on one worker: split, each
    # worker builds it (the wheel's fresh venv was built twice, 11 s each)
    "tests/scaffold/test_init_from_wheel.py": "wheel",
}


def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object:
    """Under ``--dist loadgroup``: each file of GROUPS goes with its group, every other test
    on its own (as ``load`` would)."""
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class Grouped(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return GROUPS.get(nodeid.split("::")[0], nodeid)

    return Grouped(config, log)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The end-to-end tests first. Why: ``make test`` runs on two workers, and a test of a
    minute that starts last holds the whole suite's end while the other worker idles."""
    items.sort(key=lambda item: item.get_closest_marker("end_to_end") is None)  # stable


def stop_group(process: subprocess.Popen, grace_s: float = 20) -> None:
    """Stop a process and its children (started with ``start_new_session=True``): SIGTERM,
    then SIGKILL if the group is still up after ``grace_s``. Why: ``dagster dev`` under load
    sometimes takes over a minute to wind down its webserver and daemon, which is not what
    the tests that start it are checking."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        process.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RedisServer:
    """A real redis-server on a free port, in a temp dir; restartable empty."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.process: object = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        import subprocess
        import time

        import redis

        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.folder),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(200):
            try:
                if redis.Redis(port=self.port, socket_timeout=0.2).ping():
                    return
            except redis.RedisError:
                time.sleep(0.02)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()  # type: ignore[attr-defined]
            self.process.wait(timeout=10)  # type: ignore[attr-defined]
            self.process = None


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()


class Server:
    """``create_app(store)`` under a real uvicorn on a free port, in a thread; yields an httpx client."""

    def __init__(self, store: object, api_keys: str = "") -> None:
        import threading

        import uvicorn

        from pantry.api.http import create_app

        self.port = free_port()
        # one query worker unless the test sets its own: each is a process importing Pantry
        # (a second CPU-second per server, 30 servers a run); the pool's two-worker behaviour
        # has tests of its own (test_query_pool.py, test_hostile_client.py)
        own = os.environ.get("PANTRY_QUERY_WORKERS")
        os.environ.setdefault("PANTRY_QUERY_WORKERS", "1")
        try:
            app = create_app(store, api_keys=api_keys)
        finally:
            if own is None:
                os.environ.pop("PANTRY_QUERY_WORKERS", None)
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="error"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> object:
        import time

        import httpx

        self.thread.start()
        for _ in range(200):
            if self.server.started:
                break
            time.sleep(0.02)
        self.client = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=30)
        return self.client

    def __exit__(self, *_: object) -> None:
        self.client.close()
        self.server.should_exit = True
        self.thread.join(timeout=10)


class SlackStandIn:
    """A local HTTP server in place of Slack's incoming webhook: records every post; can be 'down'."""

    def __init__(self) -> None:
        import json
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.posts: list[dict] = []
        self.down = False
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                if stand_in.down:
                    self.send_response(503)
                    self.end_headers()
                    self.wfile.write(b"service_unavailable")
                    return
                if self.path.endswith("/chat.postMessage"):  # the Web API, as a bot token posts
                    from urllib.parse import parse_qs

                    if self.headers.get("content-type", "").startswith("application/json"):
                        message = json.loads(body)
                    else:
                        message = {k: v[0] for k, v in parse_qs(body.decode()).items()}
                        message["blocks"] = json.loads(message.get("blocks", "[]"))
                    message["authorization"] = self.headers.get("authorization")
                    stand_in.posts.append(message)
                    self.send_response(200)
                    self.send_header("content-type", "application/json")
                    self.end_headers()
                    self.wfile.write(b'{"ok": true, "ts": "1.0"}')
                    return
                stand_in.posts.append(json.loads(body))
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *_: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/services/T000/B000/XXXX"
        self.api_url = f"http://127.0.0.1:{self.server.server_address[1]}/api/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def texts(self) -> list[str]:
        return [p.get("text", "") for p in self.posts]

    def close(self) -> None:
        self.server.shutdown()


@pytest.fixture
def slack() -> Iterator[SlackStandIn]:
    stand_in = SlackStandIn()
    yield stand_in
    stand_in.close()


class S3Endpoint:
    """A real S3 endpoint: ``moto_server`` over HTTP on a free port, with the AWS variables set."""

    def __init__(self, env: dict[str, str] | None = None) -> None:
        import subprocess
        import sys

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [str(Path(sys.executable).with_name("moto_server")), "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, **(env or {})},
        )
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)

    def client(self):  # noqa: ANN201 - a boto3 client
        import boto3

        return boto3.client("s3", endpoint_url=self.url)

    def new_bucket(self) -> str:
        name = f"pantry-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


AWS_TEST_ENV = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1"}


@pytest.fixture(scope="session")
def s3() -> Iterator[S3Endpoint]:
    endpoint = S3Endpoint()
    old = {k: os.environ.get(k) for k in [*AWS_TEST_ENV, "AWS_ENDPOINT_URL"]}
    os.environ.update({**AWS_TEST_ENV, "AWS_ENDPOINT_URL": endpoint.url})
    yield endpoint
    for key, value in old.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    endpoint.close()


@pytest.fixture(scope="session")
def s3_endpoint(s3: S3Endpoint) -> str:
    return s3.url


@pytest.fixture(scope="module", params=["local", "s3"])
def offline_uri(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """Runs a module twice: offline store in the local DuckDB file, then as Parquet on a
    real S3 endpoint (moto_server), through ``PANTRY_OFFLINE_URI`` as a deployment sets it.
    A module opts in with an autouse module fixture that requests this one."""
    if request.param == "local":
        yield None
        return
    endpoint: S3Endpoint = request.getfixturevalue("s3")
    uri = f"s3://{endpoint.new_bucket()}/store"
    old = os.environ.get("PANTRY_OFFLINE_URI")
    os.environ["PANTRY_OFFLINE_URI"] = uri
    yield uri
    if old is None:
        os.environ.pop("PANTRY_OFFLINE_URI", None)
    else:
        os.environ["PANTRY_OFFLINE_URI"] = old


def own_offline_uri() -> str | None:
    """A fresh prefix under the S3 store a module runs against (None for the local file), for a
    test that builds a store of its own: stores never share objects by accident."""
    base = os.environ.get("PANTRY_OFFLINE_URI")
    return f"{base}/{uuid.uuid4().hex[:10]}" if base else None


@pytest.fixture
def offline_uri_per_test(offline_uri: str | None, monkeypatch: pytest.MonkeyPatch) -> str | None:
    """The module's store, with a prefix of this test's own on S3: every Store and Dagster
    process the test starts shares it, and no other test sees it."""
    if offline_uri is None:
        return None
    uri = f"{offline_uri}/{uuid.uuid4().hex[:10]}"
    monkeypatch.setenv("PANTRY_OFFLINE_URI", uri)
    return uri


@pytest.fixture(autouse=True)
def _no_leftover_dagster_state_storage() -> None:
    """Dagster keeps the current defs-state storage in a ContextVar that an instance closed by
    an earlier test can leave behind (its weakref then fails Definitions loading): start clean."""
    from dagster._core.storage.defs_state.base import _current_storage

    _current_storage.set(None)


def offline_env(offline_uri: str | None) -> dict[str, str]:
    """What a subprocess needs to reach the same offline store (the S3 URI and endpoint)."""
    if not offline_uri:
        return {}
    keys = ["AWS_ENDPOINT_URL", *AWS_TEST_ENV]
    return {"PANTRY_OFFLINE_URI": offline_uri, **{k: os.environ[k] for k in keys if k in os.environ}}


def _pg_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    return str(candidates[-1]) if candidates else None


class PostgresServer:
    """A real PostgreSQL cluster on a free port, in a folder of its own, started and stopped here.

    PostgreSQL refuses to run as root: as root, the cluster belongs to the ``postgres`` user
    (Debian's package creates it) and its commands run through ``runuser``."""

    def __init__(self) -> None:
        import subprocess
        import tempfile

        initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
        if not (initdb and pg_ctl):
            pytest.fail("PostgreSQL is not installed: run 'make setup' (it installs Debian's postgresql)")
        self.folder = Path(tempfile.mkdtemp(prefix="pantry-pg-"))
        self.port = free_port()
        self.user = "pantry"
        as_owner: list[str] = []
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres", "postgres")
            as_owner = ["runuser", "-u", "postgres", "--"]
        self.pg_ctl = [*as_owner, pg_ctl, "-D", str(self.folder / "data")]
        run = lambda cmd: subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=120)  # noqa: E731
        run([*as_owner, initdb, "-D", str(self.folder / "data"), "-U", self.user, "--auth=trust", "-E", "UTF8"])
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        run([*self.pg_ctl, "-o", options, "-l", str(self.folder / "log"), "-w", "start"])
        import psycopg2

        con = psycopg2.connect(host="127.0.0.1", port=self.port, user=self.user, dbname="postgres")
        con.autocommit = True
        con.cursor().execute("CREATE DATABASE dagster")
        con.close()

    @property
    def env(self) -> dict[str, str]:
        """The variables deploy/dagster.yaml reads."""
        return {
            "DAGSTER_PG_HOST": "127.0.0.1",
            "DAGSTER_PG_PORT": str(self.port),
            "DAGSTER_PG_DB": "dagster",
            "DAGSTER_PG_USERNAME": self.user,
            "DAGSTER_PG_PASSWORD": "",
            "DAGSTER_MAX_CONCURRENT_RUNS": "1",
        }

    def stop(self) -> None:
        import subprocess

        subprocess.run([*self.pg_ctl, "-m", "immediate", "stop"], capture_output=True, timeout=60)
        shutil.rmtree(self.folder, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    server = PostgresServer()
    yield server
    server.stop()


class RedisClusterServers:
    """A real 3-node Redis Cluster: three ``redis-server --cluster-enabled yes`` processes on
    free ports (each port + 10000 free too, for the cluster bus), joined by
    ``redis-cli --cluster create`` with no replicas."""

    def __init__(self, folder: Path) -> None:
        import subprocess

        import redis

        self.ports = self._ports(3)
        self.processes = []
        for port in self.ports:
            node = folder / str(port)
            node.mkdir(parents=True)
            self.processes.append(
                subprocess.Popen(
                    ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--cluster-enabled", "yes"]
                    + ["--cluster-config-file", str(node / "nodes.conf"), "--save", "", "--appendonly", "no"]
                    + ["--dir", str(node)],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        for port in self.ports:
            for _ in range(200):
                try:
                    if redis.Redis(port=port, socket_timeout=0.2).ping():
                        break
                except redis.RedisError:
                    time.sleep(0.02)
        subprocess.run(
            ["redis-cli", "--cluster", "create", *[f"127.0.0.1:{p}" for p in self.ports]]
            + ["--cluster-replicas", "0", "--cluster-yes"],
            check=True,
            capture_output=True,
            timeout=60,
        )
        for _ in range(300):  # every node must agree that all 16384 slots are served
            infos = [redis.Redis(port=p).cluster("info") for p in self.ports]
            if all(i.get("cluster_state") == "ok" for i in infos):
                break
            time.sleep(0.05)
        else:
            raise RuntimeError("the Redis Cluster did not reach state ok")

    @staticmethod
    def _ports(n: int) -> list[int]:
        ports: list[int] = []
        while len(ports) < n:
            port = free_port()
            if port + 10000 > 65535 or port in ports:
                continue
            try:  # the cluster bus port must be free too
                with socket.socket() as sock:
                    sock.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
            ports.append(port)
        return ports

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.ports[1]}/0"  # any node will do: Pantry finds the others

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
            process.wait(timeout=10)


@pytest.fixture
def redis_cluster(tmp_path: Path) -> Iterator[RedisClusterServers]:
    cluster = RedisClusterServers(tmp_path / "cluster")
    yield cluster
    cluster.stop()


def slow_percentile_defs(root: Path) -> Path:
    """A query that takes seconds, legal by every rule: a percentile over 6M rows (metric ``p50``).
    The timeout, kill and queue tests need real work to wait on."""
    slow = write_defs(
        root,
        {
            "slow.yaml": """
            semantic_models:
              - name: events
                source: data/events.parquet
                defaults: {agg_time_dimension: at}
                entities: [{name: event, type: primary, expr: id}]
                dimensions: [{name: at, type: time, type_params: {time_granularity: day}}]
                measures: [{name: p50, agg: percentile, expr: v, agg_params: {percentile: 0.5}}]
            metrics: [{name: p50, type: simple, type_params: {measure: p50}}]
            """
        },
    )
    (slow / "data").mkdir()
    rng = np.random.default_rng(1)
    pd.DataFrame({"id": np.arange(6_000_000), "at": pd.Timestamp("2024-01-01"), "v": rng.random(6_000_000)}).to_parquet(
        slow / "data" / "events.parquet"
    )
    return slow
