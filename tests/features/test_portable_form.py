"""A view's partition in the portable form (``portable.partition_sql``: the SQL PostgreSQL and
Spark run), against a brute force over the same rows in Python.

Why both shapes: a view of one model is one aggregate per key (its branch already has one row
per key; grouping it again cost Spark a second hash aggregate of every row of every day),
while a view of two models merges the branches by key, each null for the other's features.
The values must not care which shape rendered them."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import sqlglot
from sqlglot import exp

from pantry.compile.view_plan import plan_view, stamp_of
from pantry.features.portable import partition_sql
from pantry.offline.sources import connect
from tests.conftest import store_over

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
    measures:
      - {name: revenue, agg: sum, expr: amount}
  - name: visits
    source: data/visits.parquet
    defaults: {agg_time_dimension: visited_at}
    entities:
      - {name: visit, type: primary, expr: visit_id}
      - {name: customer, type: foreign, expr: customer_id}
    dimensions:
      - {name: visited_at, type: time, type_params: {time_granularity: day}}
    measures:
      - {name: visit_count, agg: sum, expr: "1"}
feature_views:
  - name: spend
    entity: customer
    owner: growth-ml
    tags: {pii: "false"}
    features:
      - {name: revenue_7d, measure: orders.revenue, window: 7 days}
      - {name: revenue_2d, measure: orders.revenue, window: 2 days}
  - name: engaged
    entity: customer
    owner: growth-ml
    tags: {pii: "false"}
    features:
      - {name: revenue_3d, measure: orders.revenue, window: 3 days}
      - {name: visits_7d, measure: visits.visit_count, window: 7 days}
"""
DAYS = [date(2024, 1, 9), date(2024, 1, 14)]


def _rows(seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Orders (some amounts null, some customers null) and visits over 2024-01-01..20, with
    moments exactly on the window bounds of every day judged (a bound is in, the stamp out)."""
    rng = np.random.default_rng(seed)
    start = datetime(2024, 1, 1)
    n = 400
    moments = [start + timedelta(seconds=int(s)) for s in rng.integers(0, 20 * 86_400, n)]
    bounds = [
        stamp_of(day).replace(tzinfo=None) - timedelta(days=back) for day in DAYS for back in (0, 2, 3, 7)
    ]  # each stamp (out) and each window's first moment (in)
    moments[: len(bounds)] = bounds
    customers = pd.array(rng.integers(1, 25, n), dtype="Int64")
    customers[rng.random(n) < 0.05] = pd.NA
    amounts = pd.array(rng.integers(1, 100, n).astype(float), dtype="Float64")
    amounts[rng.random(n) < 0.1] = pd.NA
    orders = pd.DataFrame(
        {"order_id": np.arange(n), "customer_id": customers, "ordered_at": moments, "amount": amounts}
    )
    m = 250
    visits = pd.DataFrame(
        {
            "visit_id": np.arange(m),
            "customer_id": pd.array(rng.integers(10, 40, m), dtype="Int64"),  # some never order
            "visited_at": [start + timedelta(seconds=int(s)) for s in rng.integers(0, 20 * 86_400, m)],
        }
    )
    return orders, visits


def _within(frame: pd.DataFrame, column: str, stamp: datetime, days: int) -> pd.DataFrame:
    return frame[(frame[column] >= stamp - timedelta(days=days)) & (frame[column] < stamp)]


def _brute(orders: pd.DataFrame, visits: pd.DataFrame, view: str, day: date) -> dict[int, tuple]:
    """Per present customer (any row of any of the view's models in its longest window, 7
    days), each feature: a sum of the window's non-null values, 0 for none."""
    stamp = stamp_of(day).replace(tzinfo=None)
    orders, visits = orders.dropna(subset=["customer_id"]), visits.dropna(subset=["customer_id"])

    def revenue(customer: int, days: int) -> float:
        rows = _within(orders, "ordered_at", stamp, days)
        return float(rows.loc[rows["customer_id"] == customer, "amount"].dropna().sum())

    present = set(_within(orders, "ordered_at", stamp, 7)["customer_id"])
    if view == "spend":
        return {int(c): (revenue(c, 7), revenue(c, 2)) for c in present}
    seen = _within(visits, "visited_at", stamp, 7)
    present |= set(seen["customer_id"])
    return {int(c): (revenue(c, 3), float((seen["customer_id"] == c).sum())) for c in present}


def test_one_model_is_one_aggregate_and_two_are_merged_with_the_same_values(tmp_path: Path) -> None:
    orders, visits = _rows(seed=3)
    store = store_over(tmp_path, YAML, {"orders": orders, "visits": visits})
    catalog = store.definitions
    con = connect(catalog)
    checked = 0
    try:
        for view, groups in (("spend", 1), ("engaged", 3)):
            plan = plan_view(catalog, catalog.views[view])
            features = [p.feature.name for p in plan.features]
            for day in DAYS:
                sql = partition_sql(plan, day, "duckdb")
                tree = sqlglot.parse_one(partition_sql(plan, day, "spark"), read="spark")
                assert len(list(tree.find_all(exp.Group))) == groups, (view, sql)
                got = con.execute(sql).df()
                want = _brute(orders, visits, view, day)
                assert sorted(got["customer_id"].astype(int)) == sorted(want) and len(want) > 5, (view, day)
                assert (got["event_timestamp"] == stamp_of(day).replace(tzinfo=None)).all()
                for _, row in got.iterrows():
                    values = want[int(row["customer_id"])]
                    assert tuple(float(row[f]) for f in features) == values, (view, day, row.to_dict(), values)
                    checked += 1
    finally:
        con.close()
    assert checked > 40
