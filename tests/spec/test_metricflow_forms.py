"""MetricFlow's long forms load unchanged (apart from ``source:``) and mean what they mean there.

Data, by hand (sales.csv):
  id store sold_at     shipped_at  amount channel
  1  1     2024-01-01  2024-01-03  10     web
  2  1     2024-01-01  2024-01-02  20     shop
  3  2     2024-01-02  2024-01-03  30     web
  4  2     2024-01-08  2024-01-09  40     web
  5  1     2024-01-09  2024-01-09  50     shop
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from pantry import Store

MODEL = """
semantic_model:
  name: sales
  label: Sales
  source: data/sales.csv
  primary_entity: sale
  defaults: {agg_time_dimension: sold_at}
  entities:
    - {name: store, type: foreign, expr: store_id}
  dimensions:
    - {name: sold_at, type: time, is_partition: true, type_params: {time_granularity: day}}
    - {name: shipped_at, type: time, type_params: {time_granularity: day}}
    - {name: channel, type: categorical, label: Channel}
  measures:
    - {name: amount_total, agg: sum, expr: amount, label: Amount}
    - {name: sale_count, agg: sum, expr: "1", create_metric: true}
    - {name: shipped_amount, agg: sum, expr: amount, agg_time_dimension: shipped_at}
    - {name: amount_p50, agg: percentile, expr: amount, agg_params: {percentile: 0.5, use_discrete_percentile: true}}
---
semantic_model:
  name: stores
  source: data/stores.csv
  entities:
    - {name: store, type: primary, expr: store_id}
  dimensions:
    - {name: city, type: categorical}
"""

METRICS = """
metric:
  name: web_amount
  label: Web amount
  type: simple
  type_params:
    measure: {name: amount_total, filter: "{{ Dimension('sale__channel') }} = 'web'", alias: web}
  config: {meta: {owner: growth, tier: silver}}
---
metric:
  name: web_share
  type: ratio
  type_params:
    numerator: {name: amount_total, filter: "{{ Dimension('sale__channel') }} = 'web'", alias: web_part}
    denominator: amount_total
---
metric:
  name: amount_wow
  type: derived
  type_params:
    expr: now - week_ago
    metrics:
      - {name: amount_total, alias: now}
      - {name: amount_total, offset_window: 1 week, alias: week_ago}
---
metric:
  name: amount_running
  type: cumulative
  type_params:
    measure: amount_total
    cumulative_type_params: {window: 2 days, period_agg: last}
---
metric:
  name: shipped
  type: simple
  type_params: {measure: shipped_amount}
---
metric:
  name: median_sale
  type: simple
  type_params: {measure: amount_p50}
"""


@pytest.fixture
def store(make_defs: Callable[[dict[str, str]], Path], tmp_path: Path) -> Store:
    defs = make_defs({"sales.yml": MODEL, "metrics.yml": METRICS})
    (defs / "data").mkdir()
    pd.DataFrame(
        {
            "sale_id": [1, 2, 3, 4, 5],
            "store_id": [1, 1, 2, 2, 1],
            "sold_at": ["2024-01-01", "2024-01-01", "2024-01-02", "2024-01-08", "2024-01-09"],
            "shipped_at": ["2024-01-03", "2024-01-02", "2024-01-03", "2024-01-09", "2024-01-09"],
            "amount": [10, 20, 30, 40, 50],
            "channel": ["web", "shop", "web", "web", "shop"],
        }
    ).to_csv(defs / "data" / "sales.csv", index=False)
    pd.DataFrame({"store_id": [1, 2], "city": ["Oslo", "Bergen"]}).to_csv(defs / "data" / "stores.csv", index=False)
    return Store(defs=defs, home=tmp_path / "home")


def _rows(frame: pd.DataFrame) -> list[tuple]:
    return [
        tuple(None if pd.isna(v) else (str(v.date()) if isinstance(v, pd.Timestamp) else v) for v in row)
        for row in frame.itertuples(index=False)
    ]


def test_create_metric_and_primary_entity_dimension(store: Store) -> None:
    assert _rows(store.query("sale_count", group_by="sale__channel")) == [("shop", 2), ("web", 3)]


def test_measure_with_filter_and_alias_and_config_meta(store: Store) -> None:
    assert _rows(store.query("web_amount", group_by="metric_time__week")) == [("2024-01-01", 40), ("2024-01-08", 40)]
    assert store.definitions.metrics["web_amount"].owner == "growth"
    assert store.definitions.metrics["web_amount"].label == "Web amount"


def test_ratio_numerator_long_form(store: Store) -> None:
    # week of 01-01: web 40 of 60; week of 01-08: web 40 of 90
    assert store.query("web_share", group_by="metric_time__week")["web_share"].tolist() == pytest.approx(
        [40 / 60, 40 / 90]
    )


def test_derived_metrics_list_with_offset(store: Store) -> None:
    # 01-08: 40 - 0 (01-01 had 30 -> 40 - 30 = 10); 01-09: 50 - 30 (01-02) = 20
    got = dict(_rows(store.query("amount_wow", group_by="metric_time", start_time="2024-01-08", end_time="2024-01-09")))
    assert got == {"2024-01-08": 10, "2024-01-09": 20}


def test_cumulative_type_params_with_period_agg(store: Store) -> None:
    # 2-day window: 01-01 30, 01-02 60, 01-03 30, 01-08 40, 01-09 90, 01-10 50
    daily = _rows(store.query("amount_running", group_by="metric_time"))
    assert daily == [
        ("2024-01-01", 30),
        ("2024-01-02", 60),
        ("2024-01-03", 30),
        ("2024-01-08", 40),
        ("2024-01-09", 90),
        ("2024-01-10", 50),
    ]
    # period_agg last: the week's last covered day
    assert _rows(store.query("amount_running", group_by="metric_time__week")) == [
        ("2024-01-01", 30),
        ("2024-01-08", 50),
    ]


def test_agg_time_dimension_on_a_measure(store: Store) -> None:
    assert _rows(store.query("shipped", group_by="metric_time")) == [
        ("2024-01-02", 20),
        ("2024-01-03", 40),
        ("2024-01-09", 90),
    ]


def test_discrete_percentile_and_time_dimension_by_name(store: Store) -> None:
    assert _rows(store.query("median_sale")) == [(30,)]
    got = _rows(store.query("sale_count", group_by="sale__shipped_at__week"))
    assert got == [("2024-01-01", 3), ("2024-01-08", 2)]


def test_dimension_through_a_foreign_entity(store: Store) -> None:
    assert _rows(store.query("amount_total", group_by="store__city", order="-amount_total")) == [
        ("Oslo", 80),
        ("Bergen", 70),
    ]
