"""A generated feature view whose days are calm, shifted or thin, for the monitoring tests."""

from __future__ import annotations

import textwrap
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pantry import Store
from tests.conftest import own_offline_uri
from tests.features.test_historical_oracle import materialize_days

DAY0 = date(2024, 3, 1)
CALM_DAYS = 10  # DAY0 .. DAY0 + 9: amounts ~ N(10, 2) for 200 customers a day
SHIFTED = DAY0 + timedelta(days=10)  # amounts ~ N(25, 2)
CALM = DAY0 + timedelta(days=11)  # as the reference
THIN = DAY0 + timedelta(days=12)  # 5 customers only
LAST = THIN

YAML = """
project: {name: monitored, partitions: {start: 2024-03-01}}
semantic_models:
  - name: events
    source: data/events.parquet
    defaults: {agg_time_dimension: at}
    entities:
      - {name: event, type: primary, expr: event_id}
      - {name: customer, type: foreign, expr: customer_id}
    dimensions:
      - {name: at, type: time, type_params: {time_granularity: day}}
      - {name: kind, type: categorical}
    measures:
      - {name: amount, agg: sum, expr: amount}
      - {name: events, agg: count, expr: amount}
metrics:
  - {name: amount, type: simple, type_params: {measure: amount}}
feature_views:
  - name: spend
    entity: customer
    ttl: 3650 days
    online: true
    drift: {method: auto, threshold: 0.1, reference_partitions: 7, min_rows: 30}
    features:
      - {name: amount_1d, measure: events.amount, window: 1 day}
      - {name: events_1d, measure: events.events, window: 1 day}
      - {name: kind_last, dimension: event__kind}
"""


def events() -> pd.DataFrame:
    rng = np.random.default_rng(11)
    frames = []
    for i in range((LAST - DAY0).days + 1):
        day = DAY0 + timedelta(days=i)
        n = 5 if day == THIN else 200
        mean = 25.0 if day == SHIFTED else 10.0
        frames.append(
            pd.DataFrame(
                {
                    "customer_id": rng.choice(np.arange(1, 1001), size=n, replace=False),
                    "at": datetime(day.year, day.month, day.day, 12),
                    "amount": rng.normal(mean, 2.0, size=n).round(3),
                    "kind": rng.choice(["a", "b", "c"], size=n),
                }
            )
        )
    frame = pd.concat(frames, ignore_index=True)
    frame.insert(0, "event_id", np.arange(1, len(frame) + 1))
    return frame


def write_monitored_defs(root: Path) -> Path:
    defs = root / "metrics_defs"
    (defs / "data").mkdir(parents=True)
    (defs / "defs.yaml").write_text(textwrap.dedent(YAML))
    events().to_parquet(defs / "data" / "events.parquet", index=False)
    return defs


def build_monitored(root: Path) -> Store:
    store = Store(defs=write_monitored_defs(root), home=root / "home", offline_uri=own_offline_uri())
    materialize_days(store, [(DAY0, LAST)])
    return store


@pytest.fixture(scope="module")
def monitored(tmp_path_factory: pytest.TempPathFactory, offline_uri: str | None) -> Store:
    """Built once per offline store: in the local file, then on S3 when the module runs both."""
    store = build_monitored(tmp_path_factory.mktemp("monitored"))
    assert store.offline.kind == ("s3" if offline_uri else "local")
    return store
