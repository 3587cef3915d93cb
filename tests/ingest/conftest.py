"""The push model the ingestion tests share: events with an id, a customer, a time and an
amount; two rows in the declared source."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from pantry import Store
from tests.conftest import write_defs

EVENTS_YAML = """
semantic_models:
  - name: events
    source: data/events.parquet
    ingest: push
    defaults: {agg_time_dimension: ts}
    entities:
      - {name: event, type: primary, expr: event_id}
      - {name: customer, type: foreign, expr: customer_id}
    dimensions:
      - {name: ts, type: time, type_params: {time_granularity: second}}
    measures:
      - {name: event_count, agg: count, expr: event_id}
      - {name: amount, agg: sum, expr: amount}
  - name: orders
    source: data/events.parquet
    defaults: {agg_time_dimension: ts}
    entities:
      - {name: order, type: primary, expr: event_id}
    dimensions:
      - {name: ts, type: time, type_params: {time_granularity: day}}
    measures:
      - {name: order_total, agg: sum, expr: amount}
metrics:
  - {name: events, type: simple, type_params: {measure: event_count}}
  - {name: spend, type: simple, type_params: {measure: amount}}
"""


@pytest.fixture
def store(tmp_path: Path) -> Store:
    defs = write_defs(tmp_path, {"events.yaml": EVENTS_YAML})
    (defs / "data").mkdir()
    pd.DataFrame(
        {
            "event_id": [1, 2],
            "customer_id": [10, 11],
            "ts": pd.to_datetime(["2026-11-30 09:00:00", "2026-11-30 09:30:00"]),
            "amount": [5.0, 7.5],
        }
    ).to_parquet(defs / "data" / "events.parquet", index=False)
    return Store(defs=defs, home=tmp_path / "home")


def totals(store: Store) -> tuple[int, float]:
    got = store.query("events,spend")
    return int(got["events"].iloc[0]), float(got["spend"].iloc[0])
