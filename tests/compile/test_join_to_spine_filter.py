"""join_to_timespine with a where on a queried dimension: the filter holds after the spine
join too, as MetricFlow applies it twice (its ``simple_join_to_time_spine_with_queried_filter``):
spine days with no matching row do not come back with a null dimension. Oracle: pandas."""

from __future__ import annotations

import pandas as pd
import pytest

from pantry import Store
from tests.conftest import write_defs

YAML = """
semantic_models:
  - name: orders
    source: data/orders.csv
    defaults: {agg_time_dimension: ordered_at}
    entities: [{name: order, type: primary, expr: order_id}]
    dimensions:
      - {name: ordered_at, type: time, type_params: {time_granularity: day}}
      - {name: status, type: categorical}
    measures: [{name: orders, agg: sum, expr: "1"}]
metrics:
  - name: orders_on_spine
    type: simple
    type_params: {measure: {name: orders, join_to_timespine: true}}
  - name: done_on_spine
    type: simple
    type_params: {measure: {name: orders, join_to_timespine: true, filter: "{{ Dimension('order__status') }} = 'done'"}}
"""


@pytest.fixture
def store(tmp_path) -> Store:
    defs = write_defs(tmp_path, {"orders.yaml": YAML})
    (defs / "data").mkdir()
    (defs / "data" / "orders.csv").write_text(
        "order_id,ordered_at,status\n1,2024-01-01,done\n2,2024-01-01,open\n3,2024-01-03,open\n4,2024-01-04,done\n"
        "5,2024-01-04,done\n"
    )
    return Store(defs=defs, home=tmp_path / "home")


def test_a_where_on_a_queried_dimension_holds_after_the_spine_join(store: Store) -> None:
    got = store.query(
        ["orders_on_spine"],
        group_by=["metric_time__day", "order__status"],
        where="order__status = 'done'",
        start_time="2024-01-01",
        end_time="2024-01-05",
    )
    rows = [
        (pd.Timestamp(r.metric_time__day).strftime("%d"), r.order__status, r.orders_on_spine) for r in got.itertuples()
    ]
    assert rows == [("01", "done", 1), ("04", "done", 2)]
    # without the dimension in the group-by, every spine day of the range answers
    days = store.query(
        ["orders_on_spine"],
        group_by=["metric_time__day"],
        where="order__status = 'done'",
        start_time="2024-01-01",
        end_time="2024-01-05",
    )
    assert len(days) == 5 and days["orders_on_spine"].isna().sum() == 3


def test_a_measures_own_filter_is_not_applied_again(store: Store) -> None:
    """MetricFlow's test_constraint_on_measure_selected_in_group_by: every spine day answers,
    those without a done order with a null status."""
    got = store.query(
        ["done_on_spine"],
        group_by=["metric_time__day", "order__status"],
        start_time="2024-01-01",
        end_time="2024-01-05",
    )
    rows = [
        (pd.Timestamp(r.metric_time__day).strftime("%d"), None if pd.isna(r.order__status) else r.order__status)
        for r in got.itertuples()
    ]
    assert rows == [("01", "done"), ("02", None), ("03", None), ("04", "done"), ("05", None)]
