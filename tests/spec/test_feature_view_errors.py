"""Feature view validation errors, each with its exact message."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from pantry.errors import PantryError
from pantry.spec.load import read_catalog
from pantry.verify.validate import validate

MODELS = """
semantic_models:
  - name: orders
    source: data/orders.csv
    defaults: {agg_time_dimension: ordered_at}
    entities:
      - {name: order, type: primary, expr: order_id}
      - {name: customer, type: foreign, expr: customer_id}
    dimensions:
      - {name: ordered_at, type: time, type_params: {time_granularity: day}}
      - {name: status, type: categorical}
    measures:
      - {name: revenue, agg: sum, expr: amount}
  - name: stores
    source: data/orders.csv
    defaults: {agg_time_dimension: ordered_at}
    entities:
      - {name: store, type: primary, expr: order_id}
    dimensions:
      - {name: ordered_at, type: time, type_params: {time_granularity: day}}
    measures:
      - {name: store_revenue, agg: sum, expr: amount}
feature_views:
  - name: customer_orders
    entity: customer
    ttl: 30 days
    features:
"""


@pytest.fixture
def check(make_defs: Callable[[dict[str, str]], Path]) -> Callable[[str], str]:
    def run(features: str, entity: str = "customer") -> str:
        text = MODELS.replace("entity: customer\n    ttl", f"entity: {entity}\n    ttl") + features
        defs = make_defs({"views.yaml": text})
        (defs / "data").mkdir(exist_ok=True)
        pd.DataFrame(
            {"order_id": [1], "customer_id": [1], "ordered_at": ["2024-01-01"], "amount": [1.0], "status": ["x"]}
        ).to_csv(defs / "data" / "orders.csv", index=False)
        with pytest.raises(PantryError) as info:
            validate(read_catalog(defs))
        return str(info.value)

    return run


def test_unknown_entity(check: Callable[..., str]) -> None:
    assert check("      - {name: spend, measure: orders.revenue, window: 7 days}\n", entity="custmer") == (
        "metrics_defs/views.yaml: feature view 'customer_orders': entity 'custmer' is not an entity of any semantic model (did you mean 'customer'?) [line 23]"
    )


def test_unknown_measure(check: Callable[..., str]) -> None:
    assert check("      - {name: spend, measure: orders.revenu, window: 7 days}\n") == (
        "metrics_defs/views.yaml: feature view 'customer_orders': feature 'spend': measure 'orders.revenu' is not a measure (did you mean 'orders.revenue'?) [line 27]"
    )


def test_unknown_dimension(check: Callable[..., str]) -> None:
    assert check("      - {name: last_status, dimension: order__stauts}\n") == (
        "metrics_defs/views.yaml: feature view 'customer_orders': feature 'last_status': 'order__stauts' is not a dimension, entity or metric_time "
        "of semantic model 'orders' (did you mean 'order__status'?) [line 27]"
    )


def test_window_that_does_not_parse(check: Callable[..., str]) -> None:
    assert check("      - {name: spend, measure: orders.revenue, window: 7 dayz}\n") == (
        "metrics_defs/views.yaml: feature view 'customer_orders': feature 'spend': '7 dayz' is not a window; write a count and a unit, "
        "such as '7 days', '1 week', '1 month' or '26 hours' [line 27]"
    )


def test_duplicate_feature_name(check: Callable[..., str]) -> None:
    text = "      - {name: spend, measure: orders.revenue, window: 7 days}\n      - {name: spend, measure: orders.revenue, window: 30 days}\n"
    assert check(text) == (
        "metrics_defs/views.yaml: feature view 'customer_orders': duplicate feature name 'spend' (rename one of them) [line 28]"
    )


def test_entity_not_reachable_from_the_measure(check: Callable[..., str]) -> None:
    assert check("      - {name: spend, measure: stores.store_revenue, window: 7 days}\n") == (
        "metrics_defs/views.yaml: feature view 'customer_orders': feature 'spend': entity 'customer' cannot be reached from semantic model "
        "'stores' (add an entity 'customer' to 'stores', or use a measure of a model that has one) [line 27]"
    )


def test_features_that_are_not_a_list(make_defs: Callable[[dict[str, str]], Path]) -> None:
    defs = make_defs({"views.yaml": MODELS.replace("    features:\n", "    features: 5\n")})
    (defs / "data").mkdir()
    pd.DataFrame(
        {"order_id": [1], "customer_id": [1], "ordered_at": ["2024-01-01"], "amount": [1.0], "status": ["x"]}
    ).to_csv(defs / "data" / "orders.csv", index=False)
    with pytest.raises(PantryError) as info:
        validate(read_catalog(defs))
    assert str(info.value).startswith(
        "metrics_defs/views.yaml: feature view 'customer_orders': 'features' must be a list "
        "(write 'features:' followed by '- {name: ..., measure: ..., window: ...}' items) [line 23]"
    )


def test_duplicate_view_name(check: Callable[..., str]) -> None:
    feature = "      - {name: spend, measure: orders.revenue, window: 7 days}\n"
    again = "  - name: customer_orders\n    entity: customer\n    features:\n" + feature
    assert check(feature + again) == (
        "metrics_defs/views.yaml: feature view 'customer_orders': duplicate name 'customer_orders', first defined in "
        "metrics_defs/views.yaml line 23 (rename one of them) [line 28]"
    )
