"""Derived and ratio metrics computed on top of shared scans (issue 26 part 2), against a
brute force in pandas: each metric by its definition (per-metric groups, FULL OUTER JOIN of
inputs, fills where the formula is computed), the query's rows the union of the metrics'.

The data has gaps on purpose: months where one filter has no rows, a month where only the
offset input has rows (the month after the last), a channel whose amounts are all null in
a month (present, with a null sum), and a week grain where a month's offset does not land
on a Monday (those weeks have no value)."""

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
metrics:
  - {name: revenue, type: simple, type_params: {measure: revenue}}
  - name: web
    type: simple
    type_params: {measure: revenue}
    filter: "{{ Dimension('order__channel') }} = 'web'"
  - name: shop
    type: simple
    type_params: {measure: revenue}
    filter: "{{ Dimension('order__channel') }} = 'shop'"
  - name: app_orders
    type: simple
    type_params: {measure: orders}
    filter: "{{ Dimension('order__channel') }} = 'app'"
  - name: web_growth
    type: derived
    type_params:
      expr: (cur - prev) / prev
      metrics:
        - {name: web, alias: cur}
        - {name: web, alias: prev, offset_window: 1 month}
  - name: web_vs_last_shop
    type: derived
    type_params:
      expr: cur - prev
      metrics:
        - {name: web, alias: cur}
        - {name: shop, alias: prev, offset_window: 1 month}
  - name: shop_two_back
    type: derived
    type_params:
      expr: prev2
      metrics:
        - {name: shop, alias: prev2, offset_window: 2 months}
  - name: app_filled
    type: derived
    type_params:
      expr: a + 1
      metrics:
        - {name: app_orders, alias: a, fill_nulls_with: 0}
  - name: web_or_zero
    type: derived
    type_params:
      expr: COALESCE(w, 0) + 1
      metrics:
        - {name: web, alias: w}
  - name: web_share
    type: ratio
    type_params: {numerator: web, denominator: revenue}
"""

MONTHS = ["2024-01", "2024-02", "2024-03", "2024-05", "2024-06"]  # April: no orders at all


def _orders() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    rows = []
    order_id = 1
    for month in MONTHS:
        for day in rng.integers(1, 28, 30):
            channel = rng.choice(["web", "shop", "app"])
            if month == "2024-02" and channel == "web":
                channel = "shop"  # February: no web orders
            if month == "2024-06" and channel == "app":
                channel = "web"  # June: no app orders
            amount = None if (month == "2024-03" and channel == "shop") else float(rng.integers(1, 500)) / 4
            rows.append((order_id, pd.Timestamp(f"{month}-{int(day):02d} 10:00"), channel, amount))
            order_id += 1
    return pd.DataFrame(rows, columns=["order_id", "ordered_at", "channel", "amount"])


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Store, pd.DataFrame]:
    orders = _orders()
    return store_over(tmp_path_factory.mktemp("on_top"), DEFS, {"orders": orders}), orders


def _groups(orders: pd.DataFrame, channel: str | None, grain: str) -> dict[pd.Timestamp, tuple[object, int]]:
    """period -> (sum of amounts (None when all null), row count), for the periods with rows."""
    rows = orders if channel is None else orders[orders.channel == channel]
    period = rows.ordered_at.dt.to_period("M" if grain == "month" else "W-SUN").dt.start_time
    out = {}
    for start, group in rows.groupby(period):
        amounts = group.amount.dropna()
        out[pd.Timestamp(start)] = (float(amounts.sum()) if len(amounts) else None, len(group))
    return out


def _moved(groups: dict, months: int, grain: str) -> dict:
    """An offset of whole months at the query's grain: a period moves, and counts only if it
    lands on a period start (by week, a Monday plus a month is rarely a Monday)."""
    out = {}
    for start, value in groups.items():
        to = start + pd.DateOffset(months=months)
        if grain == "month" or to.weekday() == 0:
            out[to] = value
    return out


def _derived(inputs: list[dict], formula, fills: list | None = None) -> dict:  # noqa: ANN001
    """A derived metric by MetricFlow's plan: its inputs joined (a row where any has one),
    each input's null filled, then the formula."""
    fills = fills or [None] * len(inputs)
    out = {}
    for period in set().union(*inputs):
        values = []
        for groups, fill in zip(inputs, fills):
            value = groups[period][0] if period in groups else None
            values.append(fill if value is None else value)
        out[period] = formula(*values)
    return out


def _sub(a, b):  # noqa: ANN001, ANN202
    return None if a is None or b is None else a - b


def _check(got: pd.DataFrame, expected: dict[str, dict], grain: str) -> None:
    name = f"metric_time__{grain}"
    periods = set().union(*expected.values())
    assert sorted(pd.to_datetime(got[name])) == sorted(periods)  # the union of the metrics' rows
    for row in got.to_dict("records"):
        period = pd.Timestamp(row[name])
        for metric, values in expected.items():
            want, have = values.get(period), row[metric]
            if want is None:
                assert have is None or (isinstance(have, float) and math.isnan(have)), (period, metric, have)
            else:
                assert have == pytest.approx(want, rel=1e-12), (period, metric, have, want)


def test_growth_and_offsets_of_other_filters_by_month(store) -> None:  # noqa: ANN001
    s, orders = store
    web, shop = _groups(orders, "web", "month"), _groups(orders, "shop", "month")
    expected = {
        "web_growth": _derived(
            [web, _moved(web, 1, "month")], lambda c, p: None if c is None or not p else (c - p) / p
        ),
        "web_vs_last_shop": _derived([web, _moved(shop, 1, "month")], _sub),
        "shop_two_back": _derived([_moved(shop, 2, "month")], lambda p: p),
        "revenue": {k: v[0] for k, v in _groups(orders, None, "month").items()},
    }
    got = s.query(list(expected), group_by="metric_time__month")
    _check(got, expected, "month")
    # the month after the last has only last month's web revenue: a row, with growth null
    assert pd.Timestamp("2024-07-01") in set(pd.to_datetime(got.metric_time__month))
    # March's shop amounts are all null: shop is present there with a null sum, and so is
    # May's shop_two_back row (its value null)
    assert shop[pd.Timestamp("2024-03-01")][0] is None
    assert pd.Timestamp("2024-05-01") in expected["shop_two_back"]


def test_by_week_a_month_offset_keeps_only_the_weeks_it_lands_on(store) -> None:  # noqa: ANN001
    s, orders = store
    web = _groups(orders, "web", "week")
    expected = {
        "web_growth": _derived([web, _moved(web, 1, "week")], lambda c, p: None if c is None or not p else (c - p) / p),
        "shop_two_back": _derived([_moved(_groups(orders, "shop", "week"), 2, "week")], lambda p: p),
    }
    _check(s.query(list(expected), group_by="metric_time__week"), expected, "week")


def test_a_fill_or_a_formula_that_reads_nulls_is_computed_only_where_its_inputs_have_rows(store) -> None:  # noqa: ANN001
    """June has no app orders and February no web orders, but other metrics have rows there:
    app_filled and web_or_zero are null in those months (the derived metric has no row), not
    1, though a fill or a COALESCE would make a number of nothing."""
    s, orders = store
    app = {k: v[1] for k, v in _groups(orders, "app", "month").items()}
    web = _groups(orders, "web", "month")
    revenue = _groups(orders, None, "month")
    expected = {
        "app_filled": {k: v + 1 for k, v in app.items()},
        "web_or_zero": {k: (v[0] or 0) + 1 for k, v in web.items()},
        "web_share": {
            k: (web[k][0] / v[0] if k in web and web[k][0] is not None and v[0] else None) for k, v in revenue.items()
        },
        "revenue": {k: v[0] for k, v in revenue.items()},
    }
    got = s.query(list(expected), group_by="metric_time__month")
    _check(got, expected, "month")
    june = got[pd.to_datetime(got.metric_time__month) == pd.Timestamp("2024-06-01")].iloc[0]
    assert pd.isna(june.app_filled) and june.revenue > 0
    february = got[pd.to_datetime(got.metric_time__month) == pd.Timestamp("2024-02-01")].iloc[0]
    assert pd.isna(february.web_or_zero)


def test_the_shared_plan_answers_as_the_plan_of_one_subquery_per_input(store) -> None:  # noqa: ANN001
    """Every metric of the file at once, by month and by channel: shared scans and one
    subquery per input (``_fuse`` switched off, MetricFlow's shape) agree cell for cell."""
    import pantry.compile.query as query

    s, _ = store
    names = ["revenue", "web", "web_growth", "web_vs_last_shop", "shop_two_back", "app_filled", "web_share"]
    for group_by in (["metric_time__month"], ["metric_time__month", "order__channel"]):
        ours = s.query(names, group_by=group_by)
        fuse = query.Compiler._fuse
        query.Compiler._fuse = lambda self, parts: (parts, [])
        try:
            theirs = s.query(names, group_by=group_by)
        finally:
            query.Compiler._fuse = fuse
        pd.testing.assert_frame_equal(ours.reset_index(drop=True), theirs.reset_index(drop=True), check_exact=False)
        assert len(ours) > len(set(ours.metric_time__month)) or group_by == ["metric_time__month"]
