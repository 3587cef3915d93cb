"""Queries with group-bys and no metric return the distinct values, as ``mf query`` does.

The oracle is pandas over the demo's own Parquet files."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from pantry import PantryError, Store


@pytest.fixture(scope="module")
def store(demo_defs: Path, tmp_path_factory: pytest.TempPathFactory) -> Store:
    return Store(defs=demo_defs, home=tmp_path_factory.mktemp("home"))


def _rows(frame: pd.DataFrame) -> list[tuple]:
    return [tuple(None if pd.isna(v) else v for v in row) for row in frame.itertuples(index=False)]


def test_one_dimension_reads_its_own_model(store: Store, demo_defs: Path) -> None:
    airlines = pd.read_parquet(demo_defs / "data" / "airlines.parquet")
    got = store.query(group_by="carrier__name")
    assert list(got.columns) == ["carrier__name"]
    assert got["carrier__name"].tolist() == sorted(airlines["name"].unique())  # every airline, flown or not


def test_two_dimensions_a_join_and_a_where(store: Store, demo_defs: Path) -> None:
    planes = pd.read_parquet(demo_defs / "data" / "planes.parquet")
    want = (
        planes[planes["engine"] == "Turbo-jet"][["manufacturer", "engine"]]
        .drop_duplicates()
        .sort_values(["manufacturer", "engine"])
    )
    got = store.query(
        group_by="plane__manufacturer,plane__engine", where="{{ Dimension('plane__engine') }} = 'Turbo-jet'"
    )
    assert _rows(got) == _rows(want) and len(want) > 3


def test_a_time_dimension_at_a_grain(store: Store, demo_defs: Path) -> None:
    flights = pd.read_parquet(demo_defs / "data" / "flights.parquet")
    month = pd.to_datetime(flights["flight_date"]).dt.to_period("M").dt.start_time.dt.date
    want = sorted(set(zip(flights["origin"], month)))
    got = store.query(group_by="flight__origin,flight__flight_date__month")
    assert [(o, pd.Timestamp(m).date()) for o, m in got.itertuples(index=False)] == want
    assert len(want) == 36  # three airports x twelve months


def test_metric_time_alone_reads_the_time_spine(store: Store) -> None:
    got = store.query(group_by="metric_time__month", start_time="2024-01-15", end_time="2024-03-31")
    assert [pd.Timestamp(v).date().isoformat() for v in got["metric_time__month"]] == [
        "2024-01-01",
        "2024-02-01",
        "2024-03-01",
    ]


def test_metric_time_beside_a_dimension_is_every_day_with_every_value(store: Store, demo_defs: Path) -> None:
    """MetricFlow's answer without a metric: the spine's days crossed with the distinct values."""
    carriers = set(pd.read_parquet(demo_defs / "data" / "airlines.parquet")["name"])
    got = store.query(group_by="metric_time__day,carrier__name", start_time="2013-01-01", end_time="2013-01-03")
    pairs = {(pd.Timestamp(d).date().isoformat(), c) for d, c in zip(got["metric_time__day"], got["carrier__name"])}
    assert pairs == {(d, c) for d in ("2013-01-01", "2013-01-02", "2013-01-03") for c in carriers}
    assert len(got) == 3 * len(carriers) == 48


def test_what_is_not_supported_says_so(store: Store) -> None:
    with pytest.raises(PantryError, match="give --start-time and --end-time"):
        store.query(group_by="metric_time__day")
    with pytest.raises(PantryError, match="give --start-time and --end-time"):
        store.query(group_by="metric_time__day,carrier__name")
    with pytest.raises(PantryError, match="a time range needs metric_time"):
        store.query(group_by="carrier__name", start_time="2013-01-01")
    with pytest.raises(PantryError, match="carier"):
        store.query(group_by="carier__name")
    with pytest.raises(PantryError, match="no metrics given"):
        store.query()


def test_a_time_dimension_without_a_grain_is_named_with_its_grain(store: Store, demo_defs: Path) -> None:
    """MetricFlow answers ``verification__ds`` at the dimension's grain, named ``verification__ds__day``."""
    flights = pd.read_parquet(demo_defs / "data" / "flights.parquet")
    got = store.query("flights", group_by="flight__flight_date", order="-flight__flight_date", limit=2)
    assert list(got.columns) == ["flight__flight_date__day", "flights"]
    last_two = flights.groupby(pd.to_datetime(flights["flight_date"]).dt.date).size().sort_index().tail(2)[::-1]
    assert [pd.Timestamp(d).date() for d in got["flight__flight_date__day"]] == list(last_two.index)
    assert got["flights"].tolist() == last_two.tolist()


def test_a_dimension_is_read_from_the_model_that_owns_it(tmp_path: Path) -> None:
    """Two models keyed by ``user``: ``companies`` (one row per user with a company) sorts
    first by name, but ``user__home_state`` belongs to ``users``: every user's state comes
    back, not only those of users with a company (MetricFlow's query_dimension_only)."""
    from tests.conftest import write_defs

    defs = write_defs(
        tmp_path,
        {
            "users.yaml": """
            semantic_models:
              - name: companies
                source: data/companies.csv
                entities:
                  - {name: company, type: primary, expr: company_id}
                  - {name: user, type: unique, expr: user_id}
                dimensions: [{name: company_name, type: categorical}]
              - name: users
                source: data/users.csv
                entities: [{name: user, type: primary, expr: user_id}]
                dimensions: [{name: home_state, type: categorical}]
            """
        },
    )
    (defs / "data").mkdir()
    (defs / "data" / "companies.csv").write_text("company_id,user_id,company_name\n1,1,acme\n")
    (defs / "data" / "users.csv").write_text("user_id,home_state\n1,CA\n2,NY\n3,TX\n4,\n")
    store = Store(defs=defs, home=tmp_path / "home")
    assert _rows(store.query(group_by="user__home_state")) == [("CA",), ("NY",), ("TX",), (None,)]
    assert _rows(store.query(group_by="user__home_state", where="user__home_state <> 'CA'")) == [("NY",), ("TX",)]


def test_min_max_only_answers_each_group_bys_range(store: Store, demo_defs: Path) -> None:
    """MetricFlow's min_max_only: one row, ``<name>__min`` and ``<name>__max``, no metric."""
    airlines = pd.read_parquet(demo_defs / "data" / "airlines.parquet")
    got = store.query(group_by="carrier__name", min_max_only=True)
    assert list(got.columns) == ["carrier__name__min", "carrier__name__max"]
    assert _rows(got) == [(airlines["name"].min(), airlines["name"].max())]
    spine = store.query(group_by="metric_time", start_time="2013-02-03", end_time="2013-03-09", min_max_only=True)
    assert [str(v)[:10] for v in _rows(spine)[0]] == ["2013-02-03", "2013-03-09"]
    with pytest.raises(PantryError, match="without metrics") as err:
        store.query("flights", group_by="carrier__name", min_max_only=True)
    assert err.value.field == "min_max_only"


TWO_MODELS = """
semantic_models:
  - name: listings
    source: data/listings.csv
    entities:
      - {name: listing, type: primary, expr: listing_id}
      - {name: user, type: foreign, expr: user_id}
    dimensions: [{name: is_lux, type: categorical}]
  - name: users
    source: data/users.csv
    entities: [{name: user, type: primary, expr: user_id}]
    dimensions: [{name: state, type: categorical}]
"""


def test_dimensions_of_two_models_are_full_outer_joined(tmp_path: Path) -> None:
    """MetricFlow's query_dimensions_from_different_tables: listings full-outer-joined to users,
    so a user without a listing and a listing without a user both appear; with metric_time,
    the spine is crossed with the listings first and the range drops what has no day."""
    from tests.conftest import write_defs

    defs = write_defs(tmp_path, {"two.yaml": TWO_MODELS})
    (defs / "data").mkdir()
    listings = pd.DataFrame({"listing_id": [1, 2, 3], "user_id": [10, 10, 99], "is_lux": ["gold", "plain", "gold"]})
    users = pd.DataFrame({"user_id": [10, 11], "state": ["CA", "NY"]})
    listings.to_csv(defs / "data" / "listings.csv", index=False)
    users.to_csv(defs / "data" / "users.csv", index=False)
    store = Store(defs=defs, home=tmp_path / "home")
    brute = listings.merge(users, on="user_id", how="outer")[["state", "is_lux"]].drop_duplicates()
    got = store.query(group_by=["user__state", "listing__is_lux"])
    assert sorted(_rows(got), key=str) == sorted(
        [tuple(None if pd.isna(v) else v for v in r) for r in brute.itertuples(index=False)], key=str
    )
    assert (None, "gold") in _rows(got) and ("NY", None) in _rows(got)  # the oracle covers both sides
    days = store.query(
        group_by=["metric_time__day", "user__state", "listing__is_lux"], start_time="2024-01-01", end_time="2024-01-02"
    )
    matched = brute.dropna(subset=["is_lux"])  # rows of listings: crossed with the two days
    assert len(days) == 2 * len(matched) and days["metric_time__day"].notna().all()


def test_apply_group_by_false_keeps_every_row(store: Store, demo_defs: Path) -> None:
    """MetricFlow's apply_group_by=False: a query without metrics answers every row."""
    airlines = pd.read_parquet(demo_defs / "data" / "airlines.parquet")
    planes = pd.read_parquet(demo_defs / "data" / "planes.parquet")
    assert len(store.query(group_by="carrier__name", apply_group_by=False)) == len(airlines)
    every = store.query(group_by="plane__manufacturer", apply_group_by=False)
    assert len(every) == len(planes) > len(store.query(group_by="plane__manufacturer"))
    with pytest.raises(PantryError, match="metrics are always grouped"):
        store.query("flights", group_by="carrier__name", apply_group_by=False)


ENTITY_FILTER = """
semantic_models:
  - name: lux_mapping
    source: data/lux.csv
    entities:
      - {name: listing, type: primary, expr: listing_id}
      - {name: lux_listing, type: foreign, expr: lux_id}
  - name: listings
    source: data/listings.csv
    defaults: {agg_time_dimension: created}
    entities: [{name: listing, type: primary, expr: listing_id}]
    dimensions:
      - {name: created, type: time, type_params: {time_granularity: day}}
      - {name: country, type: categorical}
  - name: bookings
    source: data/bookings.csv
    defaults: {agg_time_dimension: ds}
    entities: [{name: listing, type: foreign, expr: listing_id}]
    dimensions: [{name: ds, type: time, type_params: {time_granularity: day}}]
    measures: [{name: bookings, agg: sum, expr: "1"}]
metrics:
  - {name: bookings, type: simple, type_params: {measure: bookings}}
"""


def test_an_entity_filtered_by_a_metric_reads_the_smallest_model_full_joined(tmp_path: Path) -> None:
    """MetricFlow's distinct_values_query_with_metric_filter: ``listing`` alone is read from
    the model offering the fewest names (the two-column mapping, not the listings), and the
    filter's metric is full-outer-joined, so busy listings the mapping lacks answer a null."""
    from tests.conftest import write_defs

    defs = write_defs(tmp_path, {"e.yaml": ENTITY_FILTER})
    (defs / "data").mkdir()
    pd.DataFrame({"listing_id": [1, 2], "lux_id": [7, 8]}).to_csv(defs / "data" / "lux.csv", index=False)
    pd.DataFrame({"listing_id": [1, 2, 3, 4], "created": ["2024-01-01"] * 4, "country": list("abcd")}).to_csv(
        defs / "data" / "listings.csv", index=False
    )
    booked = [1, 1, 1, 3, 3, 3, 3, 4, 5, 5, 5]  # 1: 3, 3: 4, 4: 1, 5 (in no model): 3
    pd.DataFrame({"listing_id": booked, "ds": ["2024-01-01"] * len(booked)}).to_csv(
        defs / "data" / "bookings.csv", index=False
    )
    got = Store(defs=defs, home=tmp_path / "home").query(
        group_by=["listing"], where=["{{ Metric('bookings', group_by=['listing']) }} > 2"]
    )
    # by hand: mapping rows 1 (3 bookings) and 2 (none); listings 3 and 5 come from the
    # metric side with a null entity; only 1 and the nulls pass "> 2"
    assert set(_rows(got)) == {(1,), (None,)} and len(got) == 2
