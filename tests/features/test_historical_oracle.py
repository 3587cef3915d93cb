"""get_historical_features against the brute-force oracle, on data full of edge cases."""

from __future__ import annotations

import textwrap
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pantry import PantryError, Store
from pantry.compile.view_plan import plan_view
from pantry.features.tiles import materialize
from pantry.offline.sources import connect
from tests.conftest import own_offline_uri
from tests.features.oracle import Row, Spec, expected

VIEW_YAML = """
semantic_models:
  - name: orders
    source: data/orders.parquet
    defaults: {agg_time_dimension: ordered_at}
    entities:
      - {name: order, type: primary, expr: order_id}
      - {name: customer, type: foreign, expr: customer_id}
    dimensions:
      - {name: ordered_at, type: time, type_params: {time_granularity: day}}
      - {name: status, type: categorical}
    measures:
      - {name: revenue, agg: sum, expr: amount}
      - {name: amounts, agg: count, expr: amount}
      - {name: statuses, agg: count_distinct, expr: status}
      - {name: avg_amount, agg: average, expr: amount}
      - {name: min_amount, agg: min, expr: amount}
      - {name: max_amount, agg: max, expr: amount}
      - {name: median_amount, agg: median, expr: amount}
      - {name: p90_amount, agg: percentile, expr: amount, agg_params: {percentile: 0.9}}
      - {name: big_orders, agg: sum_boolean, expr: amount >= 50}
feature_views:
  - name: shopper
    entity: customer
    ttl: 5 days
    online: true
    owner: growth-ml
    tags: {pii: "false"}
    features:
      - {name: revenue_7d, measure: orders.revenue, window: 7 days}
      - {name: amounts_3d, measure: orders.amounts, window: 3 days}
      - {name: statuses_7d, measure: orders.statuses, window: 1 week}
      - {name: avg_7d, measure: orders.avg_amount, window: 7 days}
      - {name: min_2d, measure: orders.min_amount, window: 2 days}
      - {name: max_7d, measure: orders.max_amount, window: 7 days}
      - {name: median_7d, measure: orders.median_amount, window: 7 days}
      - {name: p90_7d, measure: orders.p90_amount, window: 7 days}
      - {name: big_1d, measure: orders.big_orders, window: 1 day}
      - {name: status_last, dimension: order__status}
  - name: recent
    entity: customer
    ttl: 2 days
    tags: {pii: "true"}
    features:
      - {name: revenue_2d, measure: orders.revenue, window: 2 days}
"""
SPECS = [
    Spec("revenue_7d", "sum", 7),
    Spec("amounts_3d", "count", 3),
    Spec("statuses_7d", "count_distinct", 7),
    Spec("avg_7d", "average", 7),
    Spec("min_2d", "min", 2),
    Spec("max_7d", "max", 7),
    Spec("median_7d", "median", 7),
    Spec("p90_7d", "p90", 7),
    Spec("big_1d", "sum_boolean", 1),
    Spec("status_last", "last"),
]
FEATURES = [f"shopper:{s.name}" for s in SPECS]
TTL = timedelta(days=5)


def build(root: Path, rows: list[Row]) -> Store:
    defs = root / "metrics_defs"
    (defs / "data").mkdir(parents=True, exist_ok=True)
    (defs / "views.yaml").write_text(textwrap.dedent(VIEW_YAML))
    pd.DataFrame(
        {
            "order_id": range(1, len(rows) + 1),
            "customer_id": [r.key for r in rows],
            "ordered_at": pd.to_datetime([r.at for r in rows]),
            "amount": pd.array([r.amount for r in rows], dtype="Float64"),
            "status": [r.status for r in rows],
        }
    ).to_parquet(defs / "data" / "orders.parquet", index=False)
    return Store(defs=defs, home=root / "home", offline_uri=own_offline_uri())


def materialize_days(store: Store, ranges: list[tuple[date, date]]) -> None:
    store.home.mkdir(parents=True, exist_ok=True)
    source = connect(store.definitions)
    try:
        for name in store.definitions.views:
            plan = plan_view(store.definitions, store.definitions.views[name])
            for start, end in ranges:
                materialize(source, store.offline, plan, start, end)
    finally:
        source.close()


def generated_rows(seed: int = 3, n: int = 300) -> list[Row]:
    rng = np.random.default_rng(seed)
    day0 = datetime(2024, 1, 1)
    rows = []
    for i in range(n):
        day = int(rng.integers(0, 20))
        minute = int(rng.choice([0, 0, 1, 720, 1439]))  # midnight is common: ties and boundaries
        amount = None if rng.random() < 0.1 else float(rng.integers(1, 100))
        rows.append(
            Row(
                int(rng.integers(1, 9)),
                day0 + timedelta(days=day, minutes=minute),
                amount,
                str(rng.choice(list("abcde"))),
                i,
            )
        )
    # customer 7 buys only early: its windows empty out later
    return [r for r in rows if not (r.key == 7 and r.at >= day0 + timedelta(days=4))]


def _same(a: object, b: object) -> bool:
    if b is None:
        return a is None or a is pd.NA or (isinstance(a, float) and np.isnan(a))
    if isinstance(b, str):
        return a == b
    return a is not None and a is not pd.NA and float(a) == pytest.approx(float(b))


def compare(store: Store, rows: list[Row], days: list[date], entity_df: pd.DataFrame) -> None:
    got = store.get_historical_features(entity_df, FEATURES)
    assert len(got) == len(entity_df)
    assert got["customer_id"].tolist() == entity_df["customer_id"].tolist()
    for i, (key, at) in enumerate(zip(entity_df["customer_id"], entity_df["event_timestamp"])):
        at_utc = pd.Timestamp(at).tz_convert("UTC").tz_localize(None) if pd.Timestamp(at).tzinfo else pd.Timestamp(at)
        want = expected(rows, days, TTL, SPECS, int(key), at_utc.to_pydatetime())
        for spec in SPECS:
            assert _same(got[spec.name].iloc[i], want[spec.name]), (
                i,
                key,
                at,
                spec.name,
                got[spec.name].iloc[i],
                want[spec.name],
            )


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory, offline_uri: str | None) -> tuple[Store, list[Row], list[date]]:
    rows = generated_rows()
    store = build(tmp_path_factory.mktemp("oracle"), rows)
    assert store.offline.kind == ("s3" if offline_uri else "local")
    # partitions 01-01..01-08 and 01-10..01-19: 01-09 is a missing middle partition
    materialize_days(store, [(date(2024, 1, 1), date(2024, 1, 8)), (date(2024, 1, 10), date(2024, 1, 19))])
    days = [date(2024, 1, 1) + timedelta(days=i) for i in range(19) if i != 8]
    return store, rows, days


def test_edge_cases_match_the_oracle(scenario: tuple[Store, list[Row], list[date]]) -> None:
    store, rows, days = scenario
    rng = np.random.default_rng(11)
    keys = rng.integers(1, 11, size=400)  # 9 and 10 never bought
    offsets = rng.choice([0, 1, 60, 719, 1439, 1440], size=400)  # exact stamps, a minute after, mid-day
    day = rng.integers(-3, 28, size=400)  # before the first stamp, and past ttl at the end
    at = pd.Timestamp("2024-01-01") + pd.to_timedelta(day, unit="D") + pd.to_timedelta(offsets, unit="m")
    entity_df = pd.DataFrame({"customer_id": keys, "event_timestamp": at, "label": range(400)})
    compare(store, rows, days, entity_df)


def test_ties_midnight_and_missing_partition_by_hand(scenario: tuple[Store, list[Row], list[date]]) -> None:
    store, rows, days = scenario
    entity_df = pd.DataFrame(
        {
            "customer_id": [1, 1, 1, 7, 7],
            "event_timestamp": pd.to_datetime(
                ["2024-01-10 00:00", "2024-01-10 23:00", "2024-01-11 00:00", "2024-01-03", "2024-01-15"],
                format="ISO8601",
            ),
        }
    )
    got = store.get_historical_features(entity_df, ["shopper:revenue_7d"])
    # 01-10 00:00 and 23:00 fall back to stamp 01-09 00:00 (partition 01-09 was never run); 01-11 uses 01-11
    stamp = {0: datetime(2024, 1, 9), 1: datetime(2024, 1, 9), 2: datetime(2024, 1, 11)}
    for i, s in stamp.items():
        window = [r.amount or 0 for r in rows if r.key == 1 and s - timedelta(days=7) <= r.at < s]
        assert got["revenue_7d"].iloc[i] == pytest.approx(sum(window))
    assert pd.isna(got["revenue_7d"].iloc[4]), "customer 7 stopped buying: absent once its window empties"


def test_timezones_and_pyarrow_input(scenario: tuple[Store, list[Row], list[date]]) -> None:
    store, rows, days = scenario
    naive = pd.DataFrame(
        {
            "customer_id": [1, 2, 3],
            "event_timestamp": pd.to_datetime(["2024-01-05 00:30", "2024-01-06", "2024-01-07 13:00"], format="ISO8601"),
        }
    )
    aware = naive.assign(
        event_timestamp=naive["event_timestamp"].dt.tz_localize("UTC").dt.tz_convert("America/New_York")
    )
    a = store.get_historical_features(naive, FEATURES)
    b = store.get_historical_features(aware, FEATURES)
    import pyarrow as pa

    c = store.get_historical_features(pa.Table.from_pandas(naive), FEATURES)
    for name in [s.name for s in SPECS]:
        assert a[name].astype(str).tolist() == b[name].astype(str).tolist() == c[name].astype(str).tolist()
    compare(store, rows, days, aware)


def test_training_set_without_entity_df(scenario: tuple[Store, list[Row], list[date]]) -> None:
    store, rows, days = scenario
    got = store.get_historical_features(
        None, ["shopper:revenue_7d", "shopper:status_last"], start_time="2024-01-05", end_time="2024-01-12"
    )
    stamps = [datetime(d.year, d.month, d.day) + timedelta(days=1) for d in days]
    stamps = [s for s in stamps if datetime(2024, 1, 5) <= s <= datetime(2024, 1, 12)]
    expected_pairs = sorted(
        (s, k)
        for s in stamps
        for k in {r.key for r in rows}
        if any(r.key == k and s - timedelta(days=7) <= r.at < s for r in rows)
    )
    pairs = sorted(zip((t.to_pydatetime() for t in got["event_timestamp"].dt.tz_localize(None)), got["customer_id"]))
    assert pairs == expected_pairs
    compare(store, rows, days, got[["customer_id", "event_timestamp"]])


def test_full_feature_names_and_several_calls_agree(scenario: tuple[Store, list[Row], list[date]]) -> None:
    store, _, _ = scenario
    entity_df = pd.DataFrame({"customer_id": [1, 2], "event_timestamp": pd.to_datetime(["2024-01-05", "2024-01-06"])})
    got = store.get_historical_features(entity_df, ["shopper:revenue_7d", "shopper:max_7d"], full_feature_names=True)
    assert list(got.columns) == ["customer_id", "event_timestamp", "shopper__revenue_7d", "shopper__max_7d"]


def test_several_views_in_one_call(scenario: tuple[Store, list[Row], list[date]]) -> None:
    store, rows, days = scenario
    rng = np.random.default_rng(5)
    at = pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 24 * 60 * 24, size=200), unit="m")
    entity_df = pd.DataFrame({"event_timestamp": at, "customer_id": rng.integers(1, 10, size=200)})
    got = store.get_historical_features(entity_df, ["recent:revenue_2d", "shopper:revenue_7d", "shopper:status_last"])
    assert list(got.columns) == ["event_timestamp", "customer_id", "revenue_2d", "revenue_7d", "status_last"]
    recent = [Spec("revenue_2d", "sum", 2)]
    for i, (key, ts) in enumerate(zip(entity_df["customer_id"], entity_df["event_timestamp"])):
        assert _same(
            got["revenue_2d"].iloc[i],
            expected(rows, days, timedelta(days=2), recent, int(key), ts.to_pydatetime())["revenue_2d"],
        )
        want = expected(rows, days, TTL, SPECS, int(key), ts.to_pydatetime())
        assert _same(got["revenue_7d"].iloc[i], want["revenue_7d"]) and _same(
            got["status_last"].iloc[i], want["status_last"]
        )


def test_bad_input_gets_clear_errors(scenario: tuple[Store, list[Row], list[date]]) -> None:
    store, _, _ = scenario
    good = pd.DataFrame({"customer_id": [1], "event_timestamp": pd.to_datetime(["2024-01-05"])})
    with pytest.raises(
        PantryError, match=r"'shopper:revenue_7' is not a feature \(did you mean 'shopper:revenue_7d'\?\)"
    ):
        store.get_historical_features(good, ["shopper:revenue_7"])
    with pytest.raises(
        PantryError,
        match=r"entity_df has no column 'customer_id', the key of entity 'customer' \(feature view 'shopper'\) \(did you mean 'customerid'\?\)",
    ):
        store.get_historical_features(good.rename(columns={"customer_id": "customerid"}), ["shopper:revenue_7d"])
    with pytest.raises(PantryError, match="entity_df has no 'event_timestamp' column"):
        store.get_historical_features(good.rename(columns={"event_timestamp": "ts"}), ["shopper:revenue_7d"])
    with pytest.raises(PantryError, match="column 'event_timestamp' has type int64, not a timestamp"):
        store.get_historical_features(good.assign(event_timestamp=[5]), ["shopper:revenue_7d"])


def test_no_materialized_partition_gives_nulls_and_a_warning(tmp_path: Path) -> None:
    store = build(tmp_path, generated_rows(n=20))
    entity_df = pd.DataFrame({"customer_id": [1], "event_timestamp": pd.to_datetime(["2024-01-05"])})
    with pytest.warns(UserWarning, match="feature view 'shopper' has no materialized partition yet"):
        got = store.get_historical_features(entity_df, ["shopper:revenue_7d"])
    assert got["revenue_7d"].isna().all()


@pytest.fixture(scope="module", autouse=True)
def each_offline_store(offline_uri: str | None) -> str | None:
    """Every test here runs against the local DuckDB file and against S3."""
    return offline_uri


row_strategy = st.builds(
    lambda key, day, minute, amount, status: (key, day, minute, amount, status),
    st.integers(1, 4),
    st.integers(0, 9),
    st.sampled_from([0, 1, 720, 1439]),
    st.one_of(st.none(), st.integers(1, 99).map(float)),
    st.sampled_from(list("abc")),
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    raw=st.lists(row_strategy, min_size=1, max_size=40),
    skipped=st.sets(st.integers(0, 9), max_size=4),
    queries=st.lists(
        st.tuples(st.integers(1, 5), st.integers(-1, 13), st.sampled_from([0, 1, 600, 1439])), min_size=1, max_size=15
    ),
)
def test_property_matches_the_oracle(
    tmp_path_factory: pytest.TempPathFactory, raw: list, skipped: set[int], queries: list
) -> None:
    day0 = datetime(2024, 1, 1)
    rows = [Row(k, day0 + timedelta(days=d, minutes=m), a, s, i) for i, (k, d, m, a, s) in enumerate(raw)]
    store = build(tmp_path_factory.mktemp("prop"), rows)
    days = [date(2024, 1, 1) + timedelta(days=i) for i in range(10) if i not in skipped]
    ranges: list[tuple[date, date]] = []
    for d in days:
        if ranges and ranges[-1][1] == d - timedelta(days=1):
            ranges[-1] = (ranges[-1][0], d)
        else:
            ranges.append((d, d))
    materialize_days(store, ranges)
    entity_df = pd.DataFrame(
        {
            "customer_id": [k for k, _, _ in queries],
            "event_timestamp": [pd.Timestamp(day0 + timedelta(days=d, minutes=m)) for _, d, m in queries],
        }
    )
    compare(store, rows, days, entity_df)
