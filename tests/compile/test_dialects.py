"""Golden SQL per dialect, and the transpilation traps each named explicitly.

Golden files catch any unintended change in the SQL we ship; regenerate them on purpose
with ``PANTRY_UPDATE_GOLDEN=1 pytest tests/compile/test_dialects.py`` and review the diff.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

from pantry import PantryError, Store
from pantry.compile.dialects import DIALECTS

GOLDEN = Path(__file__).parent / "golden"
QUERIES = {
    "ratio_by_week_and_segment": dict(metrics="revenue_per_buyer", group_by="metric_time__week,customer__segment"),
    "cumulative_window_from_start": dict(metrics="revenue_7d", group_by="metric_time__day", start_time="2024-01-10"),
    "derived_offset_by_month": dict(metrics="revenue_wow", group_by="metric_time__month"),
    "median_by_day": dict(metrics="median_amount", group_by="metric_time__day"),
}


@pytest.fixture(scope="module")
def store(shop: tuple[Path, dict[str, pd.DataFrame]], tmp_path_factory: pytest.TempPathFactory) -> Store:
    return Store(defs=shop[0], home=tmp_path_factory.mktemp("home"))


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("name", sorted(QUERIES))
def test_golden_sql(store: Store, name: str, dialect: str) -> None:
    path = GOLDEN / f"{name}.{dialect}.sql"
    try:
        sql = store.explain(**QUERIES[name], dialect=dialect)
    except PantryError as err:
        sql = f"-- error: {err}"
    if os.environ.get("PANTRY_UPDATE_GOLDEN"):
        path.write_text(sql + "\n")
    assert path.exists(), f"no golden file {path.name}: record it with PANTRY_UPDATE_GOLDEN=1 and review it"
    assert sql + "\n" == path.read_text()


def test_week_starts_on_monday_in_bigquery(store: Store) -> None:
    sql = store.explain("revenue", group_by="metric_time__week", dialect="bigquery")
    assert "WEEK(MONDAY)" in sql
    assert "DATE_TRUNC(CAST(m0.ordered_at AS DATE), WEEK)" not in sql


def test_week_start_is_stated_for_snowflake_and_monday_elsewhere(store: Store) -> None:
    assert "WEEK_START" in store.explain("revenue", group_by="metric_time__week", dialect="snowflake")
    assert "DATE_TRUNC('WEEK'" in store.explain("revenue", group_by="metric_time__week", dialect="postgres")
    assert "TRUNC(CAST(m0.ordered_at AS DATE), 'WEEK')" in store.explain(
        "revenue", group_by="metric_time__week", dialect="spark"
    )


def test_date_add_with_interval_in_snowflake_and_bigquery(store: Store) -> None:
    snowflake = store.explain("revenue_wow", group_by="metric_time__day", dialect="snowflake")
    bigquery = store.explain("revenue_wow", group_by="metric_time__day", dialect="bigquery")
    # an offset joins the time spine on "day - 7 days"
    assert 'DATEADD(DAY, 7 * -1, offset_spine."ds")' in snowflake
    assert "DATE_SUB(offset_spine.`ds`, INTERVAL 7 DAY)" in bigquery


def test_median_in_bigquery_is_a_clear_error(store: Store) -> None:
    with pytest.raises(PantryError, match="BigQuery has no exact median or percentile aggregate") as info:
        store.explain("median_amount", group_by="metric_time__day", dialect="bigquery")
    assert "use_approximate_percentile" in str(info.value)


def test_spark_percentile_is_exact(store: Store) -> None:
    sql = store.explain("p90_amount", group_by="metric_time__day", dialect="spark")
    assert "PERCENTILE(`__value`, 0.9)" in sql and "PERCENTILE_APPROX" not in sql


def test_unknown_dialect(store: Store) -> None:
    with pytest.raises(PantryError, match="unknown dialect 'oracle'"):
        store.explain("revenue", dialect="oracle")


def test_pantry_compile_prints_a_partition_and_refuses_bad_input(
    demo_defs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    import subprocess

    from tests.conftest import cli_run

    def run(*args: str) -> subprocess.CompletedProcess:
        env = {"PANTRY_DEFS": str(demo_defs), "PANTRY_HOME": str(tmp_path)}
        return cli_run(monkeypatch, capsys, ["compile", *args], env)

    view = run("--dialect", "spark", "--view", "plane_activity", "--partition", "2013-06-10")
    assert view.returncode == 0, view.stderr
    assert "MAX_BY(" in view.stdout and "src.`flights`" in view.stdout and "2013-06-11 00:00:00" in view.stdout
    metric = run("--dialect", "snowflake", "--metric", "flights_7d", "--partition", "2013-06-10")
    assert metric.returncode == 0 and "'2013-06-10'" in metric.stdout
    for args, said in [
        (("--view", "plane_activty", "--partition", "2013-06-10"), "did you mean 'plane_activity'?"),
        (("--metric", "flights", "--partition", "June"), "partition 'June' is not a date"),
        (("--metric", "flights", "--view", "plane_activity", "--partition", "2013-06-10"), "one of a metric or"),
        (("--dialect", "oracle", "--metric", "flights", "--partition", "2013-06-10"), "unknown dialect 'oracle'"),
    ]:
        done = run(*args)
        assert done.returncode == 1 and said in done.stderr and "Traceback" not in done.stderr, (args, done.stderr)
