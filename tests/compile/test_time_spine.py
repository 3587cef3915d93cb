"""A user's time spine and its custom granularities. MetricFlow's answers for the shop over
this spine are in ``metricflow_answers`` (``make parity``); here, a hand-computed fiscal
quarter, dbt's model-level form, what is refused, and a broken spine."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from pantry import PantryError, Store
from tests.conftest import TIME_SPINE_YAML, time_spine_frame

DBT_FORM = """
models:
  - name: metricflow_time_spine
    source: data/time_spine.parquet
    time_spine:
      standard_granularity_column: ds
      custom_granularities:
        - {name: fiscal_quarter, column_name: fq_start}
    columns:
      - {name: ds, granularity: day}
  - name: stg_orders
    description: a dbt model that is not a time spine, skipped
"""


def _shop_with(shop: tuple[Path, dict[str, pd.DataFrame]], root: Path, spine_yaml: str) -> Store:
    defs = root / "metrics_defs"
    shutil.copytree(shop[0], defs)
    (defs / "spine.yaml").write_text(spine_yaml)
    time_spine_frame().to_parquet(defs / "data" / "time_spine.parquet", index=False)
    return Store(defs=defs, home=root / "home")


@pytest.mark.parametrize("form", [TIME_SPINE_YAML, DBT_FORM], ids=["time_spines", "dbt models"])
def test_revenue_by_fiscal_quarter(shop, tmp_path: Path, form: str) -> None:
    store = _shop_with(shop, tmp_path, form)
    orders = shop[1]["orders"]
    day = pd.to_datetime(orders["ordered_at"]).dt.normalize()
    # fiscal quarters start in February, May, August and November
    start = day.apply(lambda d: pd.Timestamp(d.year - (d.month == 1), ((d.month - 2) % 12) // 3 * 3 + 2, 1))
    expected = orders.groupby(start)["amount"].sum()
    got = store.query("revenue", group_by="metric_time__fiscal_quarter")
    got = got.set_index(pd.to_datetime(got["metric_time__fiscal_quarter"]))["revenue"]
    assert list(expected.index) == [pd.Timestamp("2023-11-01"), pd.Timestamp("2024-02-01")]
    assert got.to_dict() == pytest.approx(expected.to_dict())


def test_join_to_timespine_at_a_custom_grain_reads_every_period_of_the_spine(shop, tmp_path: Path) -> None:
    """As MetricFlow's test_join_to_time_spine_metric_grouped_by_custom_grain: every alien_day
    of the user's spine answers, with the orders of its days (0 where none: the fill)."""
    store = _shop_with(shop, tmp_path, TIME_SPINE_YAML)
    got = store.query("orders_filled", group_by="metric_time__alien_day")
    spine = time_spine_frame()
    orders = shop[1]["orders"]
    per_day = orders.groupby(pd.to_datetime(orders["ordered_at"]).dt.date).size()
    expected = {}
    for row in spine.itertuples():
        expected[row.alien_day] = expected.get(row.alien_day, 0) + int(per_day.get(row.ds, 0))
    have = {pd.Timestamp(r.metric_time__alien_day).date(): int(r.orders_filled) for r in got.itertuples()}
    assert have == expected
    assert len(have) == spine["alien_day"].nunique() and sum(have.values()) == len(orders)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            ("data/time_spine.parquet", "data/spine.parquet"),
            r"time spine 'shop_spine': source file 'data/spine.parquet' does not exist",
        ),
        (("column_name: fq_start", "column_name: fq"), r"time spine 'shop_spine': cannot be read: .*fq"),
        (("- {name: alien_day}", "- {name: month}"), r"custom granularity 'month' has the name of a standard grain"),
    ],
)
def test_a_broken_spine_is_named(shop, tmp_path: Path, change: tuple[str, str], message: str) -> None:
    store = _shop_with(shop, tmp_path, TIME_SPINE_YAML.replace(*change))
    with pytest.raises(PantryError, match=message) as err:
        store.validate()
    assert "spine.yaml" in str(err.value)


SAVED = """
saved_query:
  name: segments_by_month
  query_params:
    metrics: []
    group_by: ["TimeDimension('metric_time', 'month')", "Dimension('customer__segment')"]
---
saved_query:
  name: top_days
  query_params:
    metrics: [revenue, orders]
    group_by: ["TimeDimension('metric_time', 'day')"]
    order_by: ["Metric('revenue').descending(True)", "TimeDimension('metric_time', 'day')"]
    limit: 3
"""


def test_saved_queries_in_metricflows_singular_form(shop, tmp_path: Path) -> None:
    """``saved_query:`` documents, a query without metrics (over the whole user spine, as
    MetricFlow reads its spine table), and ``Metric('revenue').descending(True)`` in order_by."""
    store = _shop_with(shop, tmp_path, TIME_SPINE_YAML)
    (store.defs / "saved.yaml").write_text(SAVED)
    months = store.query(saved_query="segments_by_month")
    segments = shop[1]["customers"]["segment"].drop_duplicates()
    assert len(months) == 36 * len(segments)  # 2023 to 2025, every segment (null among them)
    top = store.query(saved_query="top_days")
    orders = shop[1]["orders"]
    daily = orders.groupby(pd.to_datetime(orders["ordered_at"]).dt.normalize())["amount"].sum()
    assert list(top["revenue"]) == pytest.approx(sorted(daily, reverse=True)[:3])


def test_an_offset_in_fiscal_quarters_keeps_the_place_in_the_quarter(shop, tmp_path: Path) -> None:
    """revenue_fiscal_quarter_before: a day's value moves to the same day number of the next
    fiscal quarter; the 91st and 92nd days of November-January have no place in the 90 days of
    February-April, and keep their value under a null time, as MetricFlow has it."""
    store = _shop_with(shop, tmp_path, TIME_SPINE_YAML)
    orders = shop[1]["orders"]
    daily = orders.groupby(pd.to_datetime(orders["ordered_at"]).dt.normalize())["amount"].sum()
    expected: dict = {}
    for day, value in daily.items():
        if day < pd.Timestamp("2024-02-01"):  # in the quarter that started 2023-11-01
            place = (day - pd.Timestamp("2023-11-01")).days
            target = pd.Timestamp("2024-02-01") + pd.Timedelta(days=place)
            key = target if target <= pd.Timestamp("2024-04-30") else None
        else:  # the quarter from 2024-02-01 moves to the one from 2024-05-01 (92 days)
            key = pd.Timestamp("2024-05-01") + (day - pd.Timestamp("2024-02-01"))
        expected[key] = expected.get(key, 0) + value
    got = store.query("revenue_fiscal_quarter_before", group_by="metric_time__day")
    got = {
        (None if pd.isna(d) else pd.Timestamp(d)): v
        for d, v in zip(got["metric_time__day"], got["revenue_fiscal_quarter_before"])
    }
    assert None in expected  # the data has a 91st or 92nd day of November-January
    assert got == pytest.approx(expected)


def test_an_offset_in_an_unknown_unit_is_named(shop, tmp_path: Path) -> None:
    store = _shop_with(shop, tmp_path, TIME_SPINE_YAML.replace("1 fiscal_quarter", "1 fiscal_quartr"))
    with pytest.raises(PantryError, match=r"counts 'fiscal_quartr'.*did you mean 'fiscal_quarter'"):
        store.validate()


def test_a_spine_finer_than_a_millisecond_is_skipped_by_name_and_the_file_stands(shop, tmp_path: Path) -> None:
    """MetricFlow's projects declare nanosecond and microsecond spines; Pantry's finest grain
    is the millisecond. Such a spine is skipped with a warning naming it; the spine beside it
    in the same file, and everything else, still answers."""
    finer = TIME_SPINE_YAML.replace(
        "      - {name: alien_day}\n",
        "      - {name: alien_day}\n"
        "  - name: nano_spine\n"
        "    source: data/nano.parquet\n"
        "    primary_column: {name: ts, time_granularity: nanosecond}\n",
    )
    with pytest.warns(UserWarning, match=r"spine\.yaml: time spine 'nano_spine': skipped, its grain 'nanosecond'"):
        store = _shop_with(shop, tmp_path, finer)
        store.validate()
    assert not store.definitions.broken
    got = store.query("revenue", group_by="metric_time__fiscal_quarter")
    assert len(got) == 2
