"""Cumulative metrics that share one spine join over daily partials (issue 26 part 2),
against a brute force in pandas that walks every day: a metric has a day where its own
rows reach (the window's rows, after its filters), between the first row of the model and
the last row plus the window; by month, the first (or last) day it has.

The data has gaps: months where one channel has no orders, a week with no orders at all,
shop amounts all null in one month (the sum null, the count still counting)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from pantry import Store
from tests.conftest import store_over

DEFS = """
semantic_models:
  - name: orders
    source: data/orders.parquet
    defaults: {agg_time_dimension: ordered_at}
    entities:
      - {name: order, type: primary, expr: order_id}
    dimensions:
      - {name: ordered_at, type: time, type_params: {time_granularity: day}}
      - {name: channel, type: categorical}
    measures:
      - {name: revenue, agg: sum, expr: amount}
      - {name: orders, agg: count, expr: order_id}
      - {name: biggest, agg: max, expr: amount}
      - {name: buyers, agg: count_distinct, expr: customer_id}
metrics:
  - name: web_7d
    type: cumulative
    type_params: {measure: revenue, window: 7 days}
    filter: "{{ Dimension('order__channel') }} = 'web'"
  - name: shop_orders_7d
    type: cumulative
    type_params: {measure: orders, window: 7 days}
    filter: "{{ Dimension('order__channel') }} = 'shop'"
  - name: web_biggest_7d
    type: cumulative
    type_params: {measure: biggest, window: 7 days}
    filter: "{{ Dimension('order__channel') }} = 'web'"
  - name: revenue_7d
    type: cumulative
    type_params: {measure: revenue, window: 7 days}
  - name: shop_last_7d
    type: cumulative
    type_params: {measure: revenue, cumulative_type_params: {window: 7 days, period_agg: last}}
    filter: "{{ Dimension('order__channel') }} = 'shop'"
  - name: buyers_7d
    type: cumulative
    type_params: {measure: buyers, window: 7 days}
    filter: "{{ Dimension('order__channel') }} = 'app'"
"""

SPECS = {  # metric -> (channel or None, column, how)
    "web_7d": ("web", "amount", "sum"),
    "shop_orders_7d": ("shop", "order_id", "count"),
    "web_biggest_7d": ("web", "amount", "max"),
    "revenue_7d": (None, "amount", "sum"),
    "shop_last_7d": ("shop", "amount", "sum"),
    "buyers_7d": ("app", "customer_id", "nunique"),
}


def _orders() -> pd.DataFrame:
    rng = np.random.default_rng(5)
    rows = []
    for day in pd.date_range("2024-01-01", "2024-04-30"):
        if pd.Timestamp("2024-02-10") <= day <= pd.Timestamp("2024-02-17"):
            continue  # a week with no orders at all
        for _ in range(int(rng.integers(0, 3))):
            channel = str(rng.choice(["web", "shop", "app"]))
            if day.month == 3 and channel == "web":
                channel = "app"  # March: no web orders
            amount = None if (day.month == 2 and channel == "shop") else float(rng.integers(1, 400)) / 4
            rows.append((len(rows) + 1, day + pd.Timedelta(hours=9), channel, amount, int(rng.integers(1, 6))))
    return pd.DataFrame(rows, columns=["order_id", "ordered_at", "channel", "amount", "customer_id"])


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Store, pd.DataFrame]:
    orders = _orders()
    return store_over(tmp_path_factory.mktemp("cumulative_shared"), DEFS, {"orders": orders}), orders


def _daily(orders: pd.DataFrame, metric: str) -> dict[pd.Timestamp, object]:
    """Every day in the spine's bounds where the metric's own rows reach: its value."""
    channel, column, how = SPECS[metric]
    days = orders.ordered_at.dt.normalize()
    first, last = days.min(), days.max()
    mine = orders if channel is None else orders[orders.channel == channel]
    mine_days = mine.ordered_at.dt.normalize()
    out: dict[pd.Timestamp, object] = {}
    for day in pd.date_range(first, last + pd.Timedelta(days=6)):
        rows = mine[(mine_days > day - pd.Timedelta(days=7)) & (mine_days <= day)]
        if len(rows) == 0:
            continue
        values = rows[column].dropna()
        if how == "sum":
            out[day] = float(values.sum()) if len(values) else None
        elif how == "count":
            out[day] = len(values)
        elif how == "max":
            out[day] = float(values.max()) if len(values) else None
        else:
            out[day] = int(values.nunique())
    return out


def _monthly(daily: dict[pd.Timestamp, object], last: bool) -> dict[pd.Timestamp, object]:
    out: dict[pd.Timestamp, object] = {}
    for day in sorted(daily, reverse=last):
        out.setdefault(day.replace(day=1), daily[day])
    return out


def _check(got: pd.DataFrame, expected: dict[str, dict], name: str) -> None:
    assert sorted(pd.to_datetime(got[name])) == sorted(set().union(*expected.values()))
    for row in got.to_dict("records"):
        at = pd.Timestamp(row[name])
        for metric, values in expected.items():
            want, have = values.get(at), row[metric]
            if want is None:
                assert have is None or (isinstance(have, float) and math.isnan(have)), (at, metric, have)
            else:
                assert have == pytest.approx(want, rel=1e-12), (at, metric, have, want)


@pytest.mark.parametrize("with_unfiltered", [False, True])
def test_by_day_each_metric_has_the_days_its_own_rows_reach(store, with_unfiltered: bool) -> None:  # noqa: ANN001
    s, orders = store
    metrics = ["web_7d", "shop_orders_7d", "web_biggest_7d", "buyers_7d"] + (["revenue_7d"] if with_unfiltered else [])
    expected = {m: _daily(orders, m) for m in metrics}
    _check(s.query(metrics, group_by="metric_time__day"), expected, "metric_time__day")


def test_by_month_the_first_or_last_day_each_metric_has(store) -> None:  # noqa: ANN001
    s, orders = store
    metrics = ["web_7d", "shop_orders_7d", "web_biggest_7d", "shop_last_7d", "revenue_7d"]
    expected = {m: _monthly(_daily(orders, m), last=m == "shop_last_7d") for m in metrics}
    _check(s.query(metrics, group_by="metric_time__month"), expected, "metric_time__month")


def test_shared_and_separate_spine_joins_answer_alike_by_channel(store) -> None:  # noqa: ANN001
    """By day and channel, and by month and channel: one shared join against one join per
    metric (``_fuse`` switched off), cell for cell."""
    import pantry.compile.query as query

    s, _ = store
    metrics = ["web_7d", "shop_orders_7d", "web_biggest_7d", "revenue_7d", "shop_last_7d"]
    for group_by in (["metric_time__day", "order__channel"], ["metric_time__month", "order__channel"]):
        ours = s.query(metrics, group_by=group_by)
        fuse = query.Compiler._fuse
        query.Compiler._fuse = lambda self, parts: (parts, [])
        try:
            theirs = s.query(metrics, group_by=group_by)
        finally:
            query.Compiler._fuse = fuse
        pd.testing.assert_frame_equal(ours, theirs, check_exact=False, rtol=1e-12)
        assert len(ours) > 10


def test_one_spine_join_reads_daily_partials_for_several_metrics(store) -> None:  # noqa: ANN001
    s, _ = store
    sql = s.explain(["web_7d", "shop_orders_7d", "web_biggest_7d", "revenue_7d"], group_by="metric_time__day")
    assert sql.count("JOIN pantry_time_spine") + sql.count("FROM pantry_time_spine") == 1, sql
    assert "cumulative_partials" in sql
