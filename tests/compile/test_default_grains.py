"""What a bare ``metric_time`` and a time dimension named without a grain mean, as in
MetricFlow (its EXTENDED_DATE and SIMPLE manifests' cases): a metric's ``time_granularity``,
else its measures' agg-time grain (a day at the finest), the coarsest over the queried
metrics; a time dimension at the grain of the model its entity keys, named ``__<grain>``.
Oracle: pandas over the same frames."""

from __future__ import annotations

import pandas as pd
import pytest

from pantry import Store
from tests.conftest import write_defs

YAML = """
semantic_models:
  - name: orders
    source: data/orders.parquet
    defaults: {agg_time_dimension: ordered_at}
    entities:
      - {name: order, type: primary, expr: order_id}
      - {name: customer, type: foreign, expr: customer_id}
    dimensions:
      - {name: ordered_at, type: time, type_params: {time_granularity: day}}
      - {name: clicked_at, type: time, type_params: {time_granularity: hour}}
    measures:
      - {name: revenue, agg: sum, expr: amount}
      - {name: clicks, agg: sum, expr: "1", agg_time_dimension: clicked_at}
  - name: targets
    source: data/targets.parquet
    defaults: {agg_time_dimension: month}
    entities: [{name: target, type: primary, expr: target_id}]
    dimensions: [{name: month, type: time, type_params: {time_granularity: month}}]
    measures: [{name: target, agg: sum, expr: goal}]
  - name: customers
    source: data/customers.parquet
    entities: [{name: customer, type: primary, expr: customer_id}]
    dimensions: [{name: signup, type: time, type_params: {time_granularity: day}}]
metrics:
  - {name: revenue, type: simple, type_params: {measure: revenue}}
  - {name: weekly_revenue, type: simple, type_params: {measure: revenue}, time_granularity: week}
  - {name: target, type: simple, type_params: {measure: target}}
  - {name: clicks, type: simple, type_params: {measure: clicks}}
  - {name: hourly_clicks, type: simple, type_params: {measure: clicks}, time_granularity: hour}
  - name: weekly_plus_daily
    type: derived
    type_params: {expr: weekly_revenue + revenue, metrics: [weekly_revenue, revenue]}
"""


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> tuple[Store, dict[str, pd.DataFrame]]:
    root = tmp_path_factory.mktemp("grains")
    defs = write_defs(root, {"grains.yaml": YAML})
    (defs / "data").mkdir()
    days = pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-09", "2024-02-15", "2024-03-03"])
    frames = {
        "orders": pd.DataFrame(
            {
                "order_id": range(5),
                "customer_id": [1, 1, 2, 2, 3],
                "ordered_at": days,
                "clicked_at": days + pd.to_timedelta([1, 5, 5, 23, 0], unit="h"),
                "amount": [10.0, 20.0, 30.0, 40.0, 50.0],
            }
        ),
        "targets": pd.DataFrame(
            {
                "target_id": [1, 2, 3],
                "month": pd.to_datetime(["2024-01-01", "2024-02-01", "2024-03-01"]),
                "goal": [5.0, 6.0, 7.0],
            }
        ),
        "customers": pd.DataFrame(
            {"customer_id": [1, 2, 3], "signup": pd.to_datetime(["2023-12-30"] * 2 + ["2024-01-05"])}
        ),
    }
    for name, frame in frames.items():
        frame.to_parquet(defs / "data" / f"{name}.parquet", index=False)
    return Store(defs=defs, home=root / "home"), frames


def _series(frame: pd.DataFrame) -> dict[str, float]:
    key, value = frame.columns
    return {pd.Timestamp(k).strftime("%Y-%m-%d %H:%M"): float(v) for k, v in zip(frame[key], frame[value])}


def _brute(frames: dict[str, pd.DataFrame], freq: str, table: str, time: str, value: str) -> dict[str, float]:
    data = frames[table]
    if freq == "W":
        start = data[time].dt.to_period("W-SUN").dt.start_time
    elif freq == "h":
        start = data[time].dt.floor("h")
    else:
        start = data[time].dt.to_period(freq).dt.start_time
    return {k.strftime("%Y-%m-%d %H:%M"): float(v) for k, v in data.groupby(start)[value].sum().items()}


def test_a_metrics_time_granularity_is_its_bare_metric_time(shop) -> None:
    store, frames = shop
    got = store.query(["weekly_revenue"], group_by=["metric_time"])
    assert list(got.columns) == ["metric_time__week", "weekly_revenue"]
    assert _series(got) == _brute(frames, "W", "orders", "ordered_at", "amount")
    hourly = store.query(["hourly_clicks"], group_by=["metric_time"])
    assert list(hourly.columns) == ["metric_time__hour", "hourly_clicks"]
    hours = frames["orders"]["clicked_at"].dt.floor("h").dt.strftime("%Y-%m-%d %H:%M")
    assert _series(hourly) == hours.value_counts().astype(float).to_dict()


def test_a_monthly_measure_answers_by_month_and_the_coarsest_wins(shop) -> None:
    store, frames = shop
    got = store.query(["target"], group_by=["metric_time"])
    assert list(got.columns) == ["metric_time__month", "target"]
    assert _series(got) == {"2024-01-01 00:00": 5.0, "2024-02-01 00:00": 6.0, "2024-03-01 00:00": 7.0}
    both = store.query(["revenue", "target"], group_by=["metric_time"])
    assert list(both.columns) == ["metric_time__month", "revenue", "target"]
    assert _series(both[["metric_time__month", "revenue"]]) == _brute(frames, "M", "orders", "ordered_at", "amount")


def test_below_the_queried_metric_only_measures_count(shop) -> None:
    store, _ = shop
    assert list(store.query(["weekly_plus_daily"], group_by=["metric_time"]).columns)[0] == "metric_time__day"
    assert list(store.query(["clicks"], group_by=["metric_time"]).columns)[0] == "metric_time__day"  # hourly measure


def test_a_time_dimension_without_a_grain_is_named_with_its_own(shop) -> None:
    store, frames = shop
    got = store.query(["revenue"], group_by=["customer__signup"])
    assert list(got.columns) == ["customer__signup__day", "revenue"]
    merged = frames["orders"].merge(frames["customers"], on="customer_id")
    assert _series(got) == _brute({"m": merged}, "D", "m", "signup", "amount")
    bare = store.query(group_by=["metric_time"], start_time="2024-01-01", end_time="2024-01-03")
    assert list(bare.columns) == ["metric_time__day"] and len(bare) == 3


def test_without_metric_time_a_range_widens_to_the_metrics_default_grain(shop) -> None:
    """Grouped by another dimension, a range covers whole periods of the metric's default
    grain (a week here), as MetricFlow's metrics_with_different_time_granularities_and_no_metric_time
    covers whole months: 2024-01-03 (a Wednesday) to 01-09 reads Monday 01-01 to Sunday 01-14."""
    store, frames = shop
    got = store.query(["weekly_revenue"], group_by=["customer__signup"], start_time="2024-01-03", end_time="2024-01-09")
    orders = frames["orders"]
    week = orders[(orders["ordered_at"] >= "2024-01-01") & (orders["ordered_at"] <= "2024-01-14")]
    assert float(got["weekly_revenue"].sum()) == float(week["amount"].sum()) == 60.0  # 10 + 20 + 30
