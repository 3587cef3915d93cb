"""Query results against an independent brute-force oracle written with pandas.

The oracle follows MetricFlow's documented semantics directly (group rows, divide sums,
walk the calendar for windows); it shares no code with the compiler.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pantry import Store


@pytest.fixture(scope="module")
def store(shop: tuple[Path, dict[str, pd.DataFrame]], tmp_path_factory: pytest.TempPathFactory) -> Store:
    return Store(defs=shop[0], home=tmp_path_factory.mktemp("home"))


@pytest.fixture(scope="module")
def orders(shop: tuple[Path, dict[str, pd.DataFrame]]) -> pd.DataFrame:
    frame = shop[1]["orders"].copy()
    frame["day"] = frame["ordered_at"].dt.normalize()
    frame["week"] = frame["day"] - pd.to_timedelta(frame["day"].dt.weekday, unit="D")
    frame["month"] = frame["day"].values.astype("datetime64[M]").astype("datetime64[ns]")
    customers = shop[1]["customers"].merge(shop[1]["regions"], on="region_id", how="left")
    return frame.merge(customers, on="customer_id", how="left")


def _as_series(frame: pd.DataFrame, key: str, value: str) -> pd.Series:
    out = frame.set_index(pd.to_datetime(frame[key]))[value]
    return out.astype(float).sort_index()


def test_sum_by_day_matches_rows(store: Store, orders: pd.DataFrame) -> None:
    got = _as_series(store.query("revenue", group_by="metric_time__day"), "metric_time__day", "revenue")
    expected = orders.groupby("day")["amount"].sum().astype(float)
    pd.testing.assert_series_equal(got, expected, check_names=False, check_index_type=False)


def test_bare_metric_time_is_named_day(store: Store) -> None:
    frame = store.query("orders", group_by="metric_time")
    assert list(frame.columns) == ["metric_time__day", "orders"]


def test_count_distinct_per_week_counts_rows_not_days(store: Store, orders: pd.DataFrame) -> None:
    got = _as_series(store.query("buyers", group_by="metric_time__week"), "metric_time__week", "buyers")
    expected = orders.groupby("week")["customer_id"].nunique().astype(float)
    pd.testing.assert_series_equal(got, expected, check_names=False, check_index_type=False)
    daily_sum = orders.groupby(["week", "day"])["customer_id"].nunique().groupby("week").sum()
    assert (daily_sum > expected).any(), "the data must make summing days wrong, or the test proves nothing"
    assert all(pd.Timestamp(d).weekday() == 0 for d in got.index), "weeks start on Monday"


@pytest.mark.parametrize("metric,quantile", [("median_amount", 0.5), ("p90_amount", 0.9)])
def test_median_and_percentile_per_month(store: Store, orders: pd.DataFrame, metric: str, quantile: float) -> None:
    got = _as_series(store.query(metric, group_by="metric_time__month"), "metric_time__month", metric)
    expected = orders.groupby("month")["amount"].quantile(quantile, interpolation="linear")
    pd.testing.assert_series_equal(got, expected, check_names=False, check_index_type=False)


def test_other_aggregations_per_month(store: Store, orders: pd.DataFrame) -> None:
    got = store.query("avg_amount,big_orders,counted_orders", group_by="metric_time__month")
    grouped = orders.groupby("month")
    assert np.allclose(got["avg_amount"], grouped["amount"].mean().values)
    assert list(got["big_orders"]) == list((orders["amount"] >= 100).groupby(orders["month"]).sum())
    assert list(got["counted_orders"]) == list(grouped["order_id"].count())


def test_ratio_divides_sums_at_the_grain(store: Store, orders: pd.DataFrame) -> None:
    got = _as_series(
        store.query("revenue_per_buyer", group_by="metric_time__month"), "metric_time__month", "revenue_per_buyer"
    )
    completed = orders[orders["status"] == "completed"].groupby("month")["amount"].sum()
    buyers = orders.groupby("month")["customer_id"].nunique()
    expected = (completed / buyers).astype(float)
    pd.testing.assert_series_equal(got, expected, check_names=False, check_index_type=False)


def test_ratio_with_zero_denominator_is_null(store: Store, orders: pd.DataFrame) -> None:
    got = store.query("revenue_per_big_order", group_by="metric_time__day,customer")
    got = got.set_index([pd.to_datetime(got["metric_time__day"]), got["customer"]])["revenue_per_big_order"]
    grouped = orders.groupby(["day", "customer_id"])
    big = (orders["amount"] >= 100).groupby([orders["day"], orders["customer_id"]]).sum()
    revenue = grouped["amount"].sum()
    assert (big == 0).sum() > 0, "the data must have groups with no big order"
    for key, count in big.items():
        value = got.loc[key]
        if count == 0:
            assert pd.isna(value), key
        else:
            assert value == pytest.approx(revenue[key] / count), key


def _window_sum(orders: pd.DataFrame, day: pd.Timestamp, lo: pd.Timestamp) -> float | None:
    rows = orders[(orders["day"] >= lo) & (orders["day"] <= day)]
    return float(rows["amount"].sum()) if len(rows) else None


def test_cumulative_window_at_the_start_time_edge(store: Store, orders: pd.DataFrame) -> None:
    got = store.query("revenue_7d", group_by="metric_time__day", start_time="2024-01-10", end_time="2024-03-15")
    got = _as_series(got, "metric_time__day", "revenue_7d")
    expected = {}
    for day in pd.date_range("2024-01-10", "2024-03-15"):
        value = _window_sum(orders, day, day - pd.Timedelta(days=6))
        if value is not None:  # a spine day appears when its window holds rows
            expected[day] = value
    expected = pd.Series(expected, dtype=float)
    assert got.index[0] == pd.Timestamp("2024-01-10"), "the first day's window reaches back before --start-time"
    pd.testing.assert_series_equal(got, expected, check_names=False, check_index_type=False, check_freq=False)
    last = orders["day"].max()
    assert got.index.max() == last + pd.Timedelta(days=6), "the window covers six days past the last row"


def test_cumulative_window_skips_days_its_window_does_not_cover(store: Store, orders: pd.DataFrame) -> None:
    got = _as_series(store.query("revenue_7d", group_by="metric_time__day"), "metric_time__day", "revenue_7d")
    # days 20..24 have no rows, but each is within 7 days of day 19, so all appear
    for offset in range(20, 25):
        assert pd.Timestamp("2024-01-01") + pd.Timedelta(days=offset) in got.index


def test_grain_to_date_and_period_agg_first(store: Store, orders: pd.DataFrame) -> None:
    daily = _as_series(store.query("revenue_mtd", group_by="metric_time__day"), "metric_time__day", "revenue_mtd")
    for day, value in daily.items():
        assert value == pytest.approx(_window_sum(orders, day, day.replace(day=1)))
    monthly = store.query("revenue_mtd", group_by="metric_time__month", start_time="2024-02-10")
    # the range widens to whole months; the month's value is its first day's
    feb1 = _window_sum(orders, pd.Timestamp("2024-02-01"), pd.Timestamp("2024-02-01"))
    assert monthly.iloc[0]["revenue_mtd"] == pytest.approx(feb1)


def test_all_time_cumulative(store: Store, orders: pd.DataFrame) -> None:
    got = _as_series(
        store.query("revenue_all_time", group_by="metric_time__day"), "metric_time__day", "revenue_all_time"
    )
    assert got.iloc[-1] == pytest.approx(orders["amount"].sum())
    assert got.index.max() == orders["day"].max()


def test_derived_offset_lines_up_on_the_spine(store: Store, orders: pd.DataFrame) -> None:
    got = store.query("revenue_wow", group_by="metric_time__day").set_index("metric_time__day")["revenue_wow"]
    daily = orders.groupby("day")["amount"].sum()
    days = sorted(set(daily.index) | {d + pd.Timedelta(days=7) for d in daily.index})
    for day in days:
        now, before = daily.get(day), daily.get(day - pd.Timedelta(days=7))
        expected = None if now is None or before is None else now - before
        value = got.loc[day]
        assert (pd.isna(value) and expected is None) or value == pytest.approx(expected), day


def test_group_by_a_dimension_one_hop_away_keeps_null_group(store: Store, orders: pd.DataFrame) -> None:
    got = store.query("revenue", group_by="customer__segment")
    expected = orders.groupby(orders["segment"].fillna("<null>"))["amount"].sum()
    got_map = {("<null>" if v is None or v != v else v): r for v, r in zip(got["customer__segment"], got["revenue"])}
    assert got_map == pytest.approx(expected.to_dict())
    assert "<null>" in got_map


def test_two_hop_dimension(store: Store, orders: pd.DataFrame) -> None:
    got = store.query("revenue", group_by="customer__region__region_name")
    expected = orders.groupby("region_name")["amount"].sum().to_dict()
    assert dict(zip(got["customer__region__region_name"], got["revenue"])) == pytest.approx(expected)


def test_where_with_jinja_and_direct_names(store: Store, orders: pd.DataFrame) -> None:
    got = store.query(
        "orders",
        group_by="metric_time__day",
        where=["{{ Dimension('customer__segment') }} = 'vip'", "metric_time__day >= '2024-02-01'"],
    )
    rows = orders[(orders["segment"] == "vip") & (orders["day"] >= "2024-02-01")]
    expected = rows.groupby("day").size()
    assert list(got["orders"]) == list(expected.values)
    weekly = store.query(
        "orders", group_by="metric_time__week", where="{{ TimeDimension('metric_time', 'week') }} = '2024-01-08'"
    )
    assert list(weekly["orders"]) == [int((orders["week"] == "2024-01-08").sum())]


def test_metric_filter_and_time_range_inclusive(store: Store, orders: pd.DataFrame) -> None:
    got = store.query("completed_revenue", group_by="metric_time__day", start_time="2024-01-05", end_time="2024-01-07")
    rows = orders[(orders["status"] == "completed") & orders["day"].between("2024-01-05", "2024-01-07")]
    assert list(got["completed_revenue"]) == pytest.approx(list(rows.groupby("day")["amount"].sum()))
    assert pd.Timestamp(got["metric_time__day"].iloc[-1]) <= pd.Timestamp("2024-01-07")


def test_join_to_timespine_fills_empty_days(store: Store, orders: pd.DataFrame) -> None:
    got = store.query("orders_filled", group_by="metric_time__day", start_time="2024-01-18", end_time="2024-01-27")
    assert len(got) == 10
    values = dict(zip(pd.to_datetime(got["metric_time__day"]), got["orders_filled"]))
    for offset in range(20, 25):
        assert values[pd.Timestamp("2024-01-01") + pd.Timedelta(days=offset)] == 0
    assert values[pd.Timestamp("2024-01-18")] == int((orders["day"] == "2024-01-18").sum())


def test_multiple_metrics_order_and_limit(store: Store, orders: pd.DataFrame) -> None:
    got = store.query("revenue,orders", group_by="metric_time__day", order="-revenue", limit=3)
    expected = orders.groupby("day")["amount"].sum().sort_values(ascending=False).head(3)
    assert list(got["revenue"]) == pytest.approx(list(expected.values))
    assert list(got.columns) == ["metric_time__day", "revenue", "orders"]


def test_no_group_by_gives_one_row(store: Store, orders: pd.DataFrame) -> None:
    got = store.query("revenue,buyers")
    assert len(got) == 1
    assert got["revenue"][0] == pytest.approx(orders["amount"].sum())
    assert got["buyers"][0] == orders["customer_id"].nunique()
