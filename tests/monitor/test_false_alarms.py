"""Drift checks on stationary data alert nobody, and a shifted day is still caught.

The data is a shop's: 400 customers, Poisson(1.5) orders a day each, gamma amounts. Over
48 judged calm days and four features (a 1-day and a 7-day spend, a 1-day count, the last
channel) the false alarms are counted, then a day whose amounts are 30% higher is judged.
Oracle: the data is stationary by construction (every day drawn from the same law), so
every alarm before the shifted day is false."""

from __future__ import annotations

import textwrap
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pantry import Store
from pantry.monitor.checks import view_range_checks
from tests.features.test_historical_oracle import materialize_days

START = date(2024, 1, 1)
DAYS = 63  # the last one shifted
SHIFTED = START + timedelta(days=DAYS - 1)
YAML = """
project: {name: calm, partitions: {start: 2024-01-01}}
semantic_models:
  - name: orders
    source: data/orders.parquet
    defaults: {agg_time_dimension: at}
    entities:
      - {name: order, type: primary, expr: order_id}
      - {name: customer, type: foreign, expr: customer_id}
    dimensions:
      - {name: at, type: time, type_params: {time_granularity: day}}
      - {name: channel, type: categorical}
    measures:
      - {name: spend, agg: sum, expr: amount}
      - {name: orders, agg: count, expr: order_id}
feature_views:
  - name: shopper
    entity: customer
    ttl: 3650 days
    features:
      - {name: spend_1d, measure: orders.spend, window: 1 day}
      - {name: orders_1d, measure: orders.orders, window: 1 day}
      - {name: spend_7d, measure: orders.spend, window: 7 days}
      - {name: last_channel, dimension: order__channel}
"""


def orders() -> pd.DataFrame:
    rng = np.random.default_rng(2024)
    frames = []
    for i in range(DAYS):
        day = START + timedelta(days=i)
        counts = rng.poisson(1.5, size=400)
        customers = np.repeat(np.arange(1, 401), counts)
        scale = 1.3 if day == SHIFTED else 1.0
        frames.append(
            pd.DataFrame(
                {
                    "customer_id": customers,
                    "at": [datetime(day.year, day.month, day.day, 12)] * len(customers),
                    "amount": (rng.gamma(2.0, 15.0, size=len(customers)) * scale).round(2),
                    "channel": rng.choice(["web", "app", "store"], p=[0.5, 0.3, 0.2], size=len(customers)),
                }
            )
        )
    frame = pd.concat(frames, ignore_index=True)
    frame.insert(0, "order_id", np.arange(1, len(frame) + 1))
    return frame


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Store:
    root: Path = tmp_path_factory.mktemp("calm")
    defs = root / "metrics_defs"
    (defs / "data").mkdir(parents=True)
    (defs / "defs.yaml").write_text(textwrap.dedent(YAML))
    orders().to_parquet(defs / "data" / "orders.parquet", index=False)
    store = Store(defs=defs, home=root / "home")
    materialize_days(store, [(START, SHIFTED)])
    return store


def test_calm_days_do_not_alert_and_a_shifted_day_does(shop: Store) -> None:
    days = [START + timedelta(days=i) for i in range(DAYS)]
    verdicts, _, _ = view_range_checks(shop, "shopper", days)
    drift = [v for v in verdicts if v.check == "drift"]
    judged_calm = [v for v in drift if v.partition != str(SHIFTED) and not v.summary.startswith(("skipped", "warming"))]
    false_alarms = [v for v in judged_calm if not v.passed]
    # 7-day window + 7 reference partitions: days 0..12 warm up; 49 calm days x 4 features judged
    assert len(judged_calm) == (DAYS - 1 - 13) * 4
    print(f"false alarms: {len(false_alarms)} of {len(judged_calm)}: {[(v.asset, v.partition) for v in false_alarms]}")
    assert len(false_alarms) <= 1, [(v.asset, v.partition, v.summary) for v in false_alarms]
    shifted = {v.asset.rsplit("/", 1)[1]: v for v in drift if v.partition == str(SHIFTED)}
    assert not shifted["spend_1d"].passed, shifted["spend_1d"].summary
    assert shifted["orders_1d"].passed and shifted["last_channel"].passed  # what did not change


def test_a_p_value_is_called_a_p_value() -> None:
    from pantry.monitor.checks import drift_figures
    from pantry.monitor.drift import DriftSettings, quick_judge

    rng = np.random.default_rng(5)
    current = pd.DataFrame({"x": rng.normal(0, 1, 300)})
    reference = pd.DataFrame({"x": rng.normal(0, 1, 2100)})
    [ks] = quick_judge(current, reference, ["x"], DriftSettings(method="ks", threshold=0.05))
    assert ks.score_name == "p-value" and "drift below 0.05" in drift_figures(ks) and "score" not in drift_figures(ks)
    [auto] = quick_judge(current, reference, ["x"], DriftSettings())
    assert auto.score_name == "distance" and auto.p_value is not None and auto.threshold_p == 0.01
    assert "p-value" in drift_figures(auto) and "Wasserstein" in drift_figures(auto)


def test_an_unknown_drift_setting_is_refused(tmp_path: Path) -> None:
    from pantry import PantryError

    defs = tmp_path / "metrics_defs"
    (defs / "data").mkdir(parents=True)
    (defs / "defs.yaml").write_text(
        textwrap.dedent(YAML).replace("    ttl: 3650 days\n", "    ttl: 3650 days\n    drift: {treshold: 0.2}\n")
    )
    orders().head(50).to_parquet(defs / "data" / "orders.parquet", index=False)
    with pytest.raises(PantryError, match="drift: unknown field 'treshold'") as err:
        Store(defs=defs, home=tmp_path / "h").validate()
    assert "did you mean 'threshold'" in str(err.value) and "defs.yaml" in str(err.value)
