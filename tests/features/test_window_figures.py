"""Every stamp's figures from the dense pass (``window_figures``) against a brute force in
pandas over the raw events: sums, counts, averages, min, max and a text dimension over
windows of 1 to 4 days, with null values, entities that come and go, several key chunks and
several passes of stamps."""

from __future__ import annotations

import math
import textwrap
from datetime import date, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

import pantry.features.window_figures as wf
from pantry import Store
from tests.features.test_historical_oracle import materialize_days

START, DAYS, CUSTOMERS = date(2024, 5, 1), 12, 40
WINDOWS = {"amount_1d": 1, "amount_4d": 4, "orders_3d": 3, "avg_3d": 3, "top_2d": 2, "low_4d": 4}
YAML = """
project: {name: dense, partitions: {start: 2024-05-01}}
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
      - {name: orders, agg: count, expr: amount}
      - {name: avg_amount, agg: average, expr: amount}
      - {name: top, agg: max, expr: amount}
      - {name: low, agg: min, expr: amount}
      - {name: kinds, agg: count_distinct, expr: kind}
feature_views:
  - name: dense
    entity: customer
    ttl: 3650 days
    features:
      - {name: amount_1d, measure: events.amount, window: 1 day}
      - {name: amount_4d, measure: events.amount, window: 4 days}
      - {name: orders_3d, measure: events.orders, window: 3 days}
      - {name: avg_3d, measure: events.avg_amount, window: 3 days}
      - {name: top_2d, measure: events.top, window: 2 days}
      - {name: low_4d, measure: events.low, window: 4 days}
      - {name: last_kind, dimension: event__kind}
      - {name: kinds_3d, measure: events.kinds, window: 3 days}
"""


@pytest.fixture(scope="module")
def dense(tmp_path_factory: pytest.TempPathFactory) -> tuple[Store, pd.DataFrame]:
    root = tmp_path_factory.mktemp("dense")
    defs = root / "metrics_defs"
    (defs / "data").mkdir(parents=True)
    (defs / "defs.yaml").write_text(textwrap.dedent(YAML))
    rng = np.random.default_rng(11)
    n = 900
    events = pd.DataFrame(
        {
            "event_id": np.arange(n),
            "customer_id": rng.integers(0, CUSTOMERS, n),
            "at": [datetime(2024, 5, 1) + timedelta(minutes=int(m)) for m in rng.integers(0, DAYS * 1440, n)],
            "amount": np.where(rng.random(n) < 0.15, np.nan, rng.integers(1, 100, n).astype(float)),
            "kind": np.where(rng.random(n) < 0.1, None, rng.choice(["a", "b", "c"], n)),
        }
    )
    events.to_parquet(defs / "data" / "events.parquet", index=False)
    store = Store(defs=defs, home=root / "home")
    materialize_days(store, [(START, START + timedelta(days=DAYS - 1))])
    return store, events


def brute(events: pd.DataFrame, day: date) -> tuple[int, dict[str, dict]]:
    """The figures at partition ``day``'s stamp, from the raw events."""
    stamp = pd.Timestamp(day + timedelta(days=1))
    longest = max(WINDOWS.values())
    inside = events[(events["at"] >= stamp - pd.Timedelta(days=longest)) & (events["at"] < stamp)]
    present = sorted(inside["customer_id"].unique())
    values: dict[str, list] = {name: [] for name in [*WINDOWS, "last_kind"]}
    for customer in present:
        mine = inside[inside["customer_id"] == customer]
        for name, days in WINDOWS.items():
            window = mine[mine["at"] >= stamp - pd.Timedelta(days=days)]["amount"]
            if name.startswith("amount"):
                values[name].append(float(window.sum()))  # no rows or all null: 0
            elif name.startswith("orders"):
                values[name].append(float(window.notna().sum()))
            elif name.startswith("avg"):
                values[name].append(float(window.mean()) if window.notna().any() else math.nan)
            elif name.startswith("top"):
                values[name].append(float(window.max()) if window.notna().any() else math.nan)
            else:
                values[name].append(float(window.min()) if window.notna().any() else math.nan)
        latest = mine.sort_values(["at", "event_id"]).iloc[-1]["kind"]
        values["last_kind"].append(latest)
    figures = {}
    for name, column in values.items():
        series = pd.Series(column, dtype=object if name == "last_kind" else float)
        known = series.dropna()
        numeric = name != "last_kind"
        figures[name] = {
            "null_rate": (len(series) - len(known)) / len(series),
            "mean": float(known.mean()) if numeric and len(known) else None,
            "min": float(known.min()) if numeric and len(known) else None,
            "max": float(known.max()) if numeric and len(known) else None,
            "sum": float(known.sum()) if numeric and len(known) else None,
            "distinct": known.nunique(),
        }
    return len(present), figures


@pytest.mark.parametrize("dense_bytes,per_pass", [(64 * 1024 * 1024, 32), (512, 3)])
def test_every_stamp_s_figures_equal_a_brute_force(
    dense: tuple[Store, pd.DataFrame], dense_bytes: int, per_pass: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, events = dense
    monkeypatch.setattr(wf, "DENSE_BYTES", dense_bytes)  # the small one: several key chunks
    monkeypatch.setattr(wf, "STAMPS_PER_PASS", per_pass)  # and several passes of stamps
    names = [*WINDOWS, "last_kind"]
    plan = store._plans([f"dense:{n}" for n in names])["dense"][0]
    days = [START + timedelta(days=i) for i in range(DAYS)]
    con, _ = store._offline_reader(views=["dense"])
    try:
        forms = wf.dense_forms(con, plan, names)
        assert all(forms.values()), forms
        figures, entities, samples = wf.window_figures(con, plan, days, forms, wf.HASH_SPACE)
    finally:
        con.close()
    for day in days:
        count, expected = brute(events, day)
        assert entities[day] == count, day
        assert len(samples[day]) == count  # a cut at the whole hash space samples everyone
        for name in names:
            got = figures[day][name]
            assert got["rows"] == count
            for key, want in expected[name].items():
                if key == "distinct" and name != "last_kind" and dense_bytes < 1024 * 1024:
                    assert got[key] is None  # numbers are counted only within one chunk
                elif want is None:
                    assert got[key] is None, (day, name, key)
                else:
                    assert got[key] == pytest.approx(want, rel=1e-12, abs=1e-9), (day, name, key)


def test_a_feature_without_a_dense_form_is_summarized_by_sql_on_the_same_panel(
    dense: tuple[Store, pd.DataFrame],
) -> None:
    """count_distinct has no dense form: its figures come from SQL per stamp, and the
    samples of every feature from one query over the sampled entities."""
    from pantry.features.stamp_stats import summarize_days

    store, events = dense
    names = [*WINDOWS, "last_kind", "kinds_3d"]
    plan = store._plans([f"dense:{n}" for n in names])["dense"][0]
    days = [START + timedelta(days=i) for i in (3, 7, 11)]
    con, _ = store._offline_reader(views=["dense"])
    try:
        summaries = summarize_days(con, plan, days, names, sample_rows=10_000)
    finally:
        con.close()
    for day in days:
        count, expected = brute(events, day)
        stamp = pd.Timestamp(day + timedelta(days=1))
        window = events[(events["at"] >= stamp - pd.Timedelta(days=3)) & (events["at"] < stamp)]
        present = events[(events["at"] >= stamp - pd.Timedelta(days=4)) & (events["at"] < stamp)]["customer_id"]
        kinds = window.groupby("customer_id")["kind"].nunique().reindex(present.unique(), fill_value=0)
        summary = summaries[day]
        assert summary.entities == count and len(summary.sample) == count  # everyone under 10,000
        assert summary.figures["kinds_3d"]["sum"] == pytest.approx(float(kinds.sum()))
        assert summary.figures["kinds_3d"]["max"] == pytest.approx(float(kinds.max()))
        assert summary.figures["amount_4d"]["sum"] == pytest.approx(expected["amount_4d"]["sum"])
        assert list(summary.sample.columns) == names
