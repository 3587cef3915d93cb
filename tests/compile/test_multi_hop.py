"""Multi-hop joins as MetricFlow makes them (its multi-hop manifests): each dimension source
is joined on its own (bridge, then the model), so a bridge key that repeats fans out per
source; a one-hop dimension of the bridge reads the first source's bridge; a metric filter
may group by a path. Oracle: pandas merges written the same way, by hand."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from pantry import Store
from pantry.errors import PantryError
from tests.conftest import write_defs

YAML = """
semantic_models:
  - name: txns
    source: data/txns.csv
    defaults: {agg_time_dimension: ds}
    entities: [{name: account, type: primary, expr: account_id}]
    dimensions: [{name: ds, type: time, type_params: {time_granularity: day}}]
    measures: [{name: txn_count, agg: sum, expr: txns}]
  - name: bridge
    source: data/bridge.csv
    entities:
      - {name: account, type: primary, expr: account_id}
      - {name: customer, type: foreign, expr: customer_id}
    dimensions: [{name: tier, type: categorical}]
  - name: customers
    source: data/customers.csv
    entities: [{name: customer, type: primary, expr: customer_id}]
    dimensions: [{name: customer_name, type: categorical}]
  - name: customer_more
    source: data/customer_more.csv
    entities:
      - {name: customer, type: primary, expr: customer_id}
      - {name: region, type: unique, expr: region_id}
    dimensions: [{name: country, type: categorical}]
  - name: regions
    source: data/regions.csv
    entities: [{name: region, type: primary, expr: region_id}]
    dimensions: [{name: region_label, type: categorical}]
    measures: [{name: regions, agg: count_distinct, expr: region_id}]
metrics:
  - {name: txn_count, type: simple, type_params: {measure: txn_count}}
  - name: busy_regions
    type: simple
    type_params: {measure: regions}
    filter: "{{ Metric('txn_count', group_by=['account__customer__region']) }} > 6"
"""

TXNS = pd.DataFrame({"account_id": [1, 1, 2, 3, 4], "ds": ["2024-01-01"] * 5, "txns": [3, 4, 5, 6, 7]})
# account 1 appears twice in the bridge: MetricFlow's rows fan out for it
BRIDGE = pd.DataFrame({"account_id": [1, 1, 2, 3], "customer_id": [10, 11, 10, 12], "tier": ["a", "b", "a", "c"]})
CUSTOMERS = pd.DataFrame({"customer_id": [10, 11, 12], "customer_name": ["ann", "bob", "cy"]})
MORE = pd.DataFrame({"customer_id": [10, 11, 12], "country": ["fr", "de", "fr"], "region_id": [100, 101, 102]})
REGIONS = pd.DataFrame({"region_id": [100, 101, 102, 103], "region_label": ["w", "x", "y", "z"]})


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    root = tmp_path_factory.mktemp("hops")
    defs = write_defs(root, {"hops.yaml": YAML})
    (defs / "data").mkdir()
    for name, frame in {
        "txns": TXNS,
        "bridge": BRIDGE,
        "customers": CUSTOMERS,
        "customer_more": MORE,
        "regions": REGIONS,
    }.items():
        frame.to_csv(defs / "data" / f"{name}.csv", index=False)
    return Store(defs=defs, home=root / "home")


def _rows(frame: pd.DataFrame) -> set[tuple]:
    return {tuple(None if pd.isna(v) else v for v in row) for row in frame.itertuples(index=False)}


def _source(model: pd.DataFrame, suffix: str) -> pd.DataFrame:
    return (
        BRIDGE.merge(model, on="customer_id", how="left")
        .add_suffix(suffix)
        .rename(columns={f"account_id{suffix}": "account_id"})
    )


def test_two_dimensions_through_one_bridge_into_two_models_fan_out_per_source(store: Store) -> None:
    brute = TXNS.merge(_source(CUSTOMERS, "_0"), on="account_id", how="left").merge(
        _source(MORE, "_1"), on="account_id", how="left"
    )
    want = brute.groupby(["customer_name_0", "country_1"], dropna=False)["txns"].sum().reset_index()
    got = store.query(["txn_count"], group_by=["account__customer__customer_name", "account__customer__country"])
    assert _rows(got) == _rows(want)
    assert got["txn_count"].sum() == 3 * 4 + 4 * 4 + 5 + 6 + 7  # account 1: 2 x 2 bridge rows


def test_a_one_hop_dimension_reads_the_first_sources_bridge(store: Store) -> None:
    brute = TXNS.merge(_source(CUSTOMERS, "_0"), on="account_id", how="left").merge(
        _source(MORE, "_1"), on="account_id", how="left"
    )
    want = brute.groupby(["customer_name_0", "country_1", "tier_0"], dropna=False)["txns"].sum().reset_index()
    got = store.query(
        ["txn_count"],
        group_by=["account__customer__customer_name", "account__customer__country", "account__tier"],
    )
    assert _rows(got) == _rows(want)


def test_a_name_without_its_path_finds_the_shortest_one_and_is_named_by_it(store: Store) -> None:
    """``customer__customer_name`` from txns (which has no customer entity): MetricFlow matches
    every path ending in ``customer`` and takes the shortest, ``account__customer``, and names
    the column by it (its test_subdaily_granularity... ``user__last_login_ts__minute`` case)."""
    got = store.query(["txn_count"], group_by=["customer__customer_name"])
    assert list(got.columns) == ["account__customer__customer_name", "txn_count"]
    # by hand: account 1 (3+4) fans out to customers 10 and 11, account 2 (5) is 10,
    # account 3 (6) is 12, account 4 (7) has no bridge row
    assert _rows(got) == {("ann", 12), ("bob", 7), ("cy", 6), (None, 7)}
    # two hops of prefix: region through account and customer
    got = store.query(["txn_count"], group_by=["region__region_label"])
    assert list(got.columns) == ["account__customer__region__region_label", "txn_count"]
    assert _rows(got) == {("w", 12), ("x", 7), ("y", 6), (None, 7)}


def test_a_name_no_path_reaches_still_says_so(store: Store) -> None:
    with pytest.raises(PantryError, match="customer_nme"):
        store.query(["txn_count"], group_by=["customer__customer_nme"])


def test_a_metric_filter_may_group_by_a_path(store: Store) -> None:
    per_region = (
        TXNS.merge(BRIDGE, on="account_id", how="left")
        .merge(MORE, on="customer_id", how="left")
        .groupby("region_id")["txns"]
        .sum()
    )
    busy = set(per_region[per_region > 6].index)
    got = store.query(["busy_regions"])
    assert int(got["busy_regions"].iloc[0]) == len(busy & set(REGIONS["region_id"]))
    assert busy == {100, 101}  # the oracle itself: 100 has 3+4+5, 101 has 3+4 (fanned out), 102 has 6


LOCAL_PREFIX_YAML = """
semantic_models:
  - name: views
    source: data/views.csv
    primary_entity: view
    defaults: {agg_time_dimension: ds}
    entities: [{name: listing, type: foreign, expr: listing_id}]
    dimensions: [{name: ds, type: time, type_params: {time_granularity: day}}]
    measures: [{name: views, agg: sum, expr: "1"}]
  - name: listings
    source: data/listings.csv
    defaults: {agg_time_dimension: created}
    entities: [{name: listing, type: primary, expr: listing_id}]
    dimensions: [{name: created, type: time, type_params: {time_granularity: day}}]
    measures: [{name: listings, agg: count_distinct, expr: listing_id}]
metrics:
  - {name: views, type: simple, type_params: {measure: views}}
  - name: popular_listings
    type: simple
    type_params: {measure: listings}
    filter: "{{ Metric('views', group_by=['view__listing']) }} > 1"
"""


def test_a_metric_filter_grouped_through_the_models_own_primary_entity(tmp_path: Path) -> None:
    """``view__listing``: the views model names its key with ``primary_entity: view`` (no
    entity entry), as MetricFlow's test_metric_filter_with_local_entity_prefix does."""
    defs = write_defs(tmp_path, {"views.yaml": LOCAL_PREFIX_YAML})
    (defs / "data").mkdir()
    views = pd.DataFrame({"listing_id": [1, 1, 2, 3, 3, 3], "ds": ["2024-01-01"] * 6})
    views.to_csv(defs / "data" / "views.csv", index=False)
    pd.DataFrame({"listing_id": [1, 2, 3, 4], "created": ["2024-01-01"] * 4}).to_csv(
        defs / "data" / "listings.csv", index=False
    )
    got = Store(defs=defs, home=tmp_path / "home").query(["popular_listings"])
    counts = views.groupby("listing_id").size()
    assert int(got["popular_listings"].iloc[0]) == int((counts > 1).sum()) == 2


PARTITIONED_YAML = """
semantic_models:
  - name: bookings
    source: data/bookings.csv
    defaults: {agg_time_dimension: ds}
    entities:
      - {name: booking, type: primary, expr: booking_id}
      - {name: listing, type: foreign, expr: listing_id}
    dimensions:
      - {name: ds, type: time, type_params: {time_granularity: day}}
      - {name: ds_partitioned, type: time, is_partition: true, type_params: {time_granularity: day}}
    measures: [{name: bookings, agg: sum, expr: "1"}]
  - name: listings
    source: data/listings.csv
    entities:
      - {name: listing, type: primary, expr: listing_id}
      - {name: user, type: foreign, expr: user_id}
  - name: users
    source: data/users.csv
    entities: [{name: user, type: primary, expr: user_id}]
    dimensions:
      - {name: state, type: categorical}
      - {name: ds_partitioned, type: time, is_partition: true, type_params: {time_granularity: day}}
metrics:
  - {name: bookings, type: simple, type_params: {measure: bookings}}
"""


def test_the_end_of_a_path_joins_the_measures_partition(tmp_path: Path) -> None:
    """bookings -> listings -> users, where bookings and users (not listings) are partitioned
    by day: the user row of the booking's own partition, as MetricFlow's
    test_simple_metric_with_multi_hop_custom_granularity joins them."""
    defs = write_defs(tmp_path, {"p.yaml": PARTITIONED_YAML})
    (defs / "data").mkdir()
    bookings = pd.DataFrame(
        {
            "booking_id": [1, 2, 3],
            "listing_id": [1, 1, 2],
            "ds": ["2024-01-01", "2024-01-02", "2024-01-02"],
            "ds_partitioned": ["2024-01-01", "2024-01-02", "2024-01-02"],
        }
    )
    listings = pd.DataFrame({"listing_id": [1, 2], "user_id": [7, 8]})
    users = pd.DataFrame(
        {
            "user_id": [7, 7, 8],
            "state": ["CA", "NY", "TX"],
            "ds_partitioned": ["2024-01-01", "2024-01-02", "2024-01-01"],
        }
    )
    for name, frame in {"bookings": bookings, "listings": listings, "users": users}.items():
        frame.to_csv(defs / "data" / f"{name}.csv", index=False)
    brute = bookings.merge(listings, on="listing_id", how="left").merge(
        users, on=["user_id", "ds_partitioned"], how="left"
    )
    want = {(None if pd.isna(k) else k,): float(v) for k, v in brute.groupby("state", dropna=False).size().items()}
    got = Store(defs=defs, home=tmp_path / "home").query(["bookings"], group_by=["listing__user__state"])
    assert {(None if pd.isna(r[0]) else r[0],): float(r[1]) for r in got.itertuples(index=False)} == want
    assert want == {("CA",): 1.0, ("NY",): 1.0, (None,): 1.0}  # the oracle itself, by hand


def test_two_paths_of_one_length_are_ambiguous(tmp_path: Path) -> None:
    yaml = """
semantic_models:
  - name: trips
    source: data/trips.csv
    defaults: {agg_time_dimension: ds}
    entities:
      - {name: rider, type: foreign, expr: rider_id}
      - {name: driver, type: foreign, expr: driver_id}
    dimensions: [{name: ds, type: time, type_params: {time_granularity: day}}]
    measures: [{name: trips, agg: sum, expr: "1"}]
  - name: riders
    source: data/riders.csv
    entities: [{name: rider, type: primary, expr: rider_id}, {name: city, type: foreign, expr: city_id}]
  - name: drivers
    source: data/drivers.csv
    entities: [{name: driver, type: primary, expr: driver_id}, {name: city, type: foreign, expr: city_id}]
  - name: cities
    source: data/cities.csv
    entities: [{name: city, type: primary, expr: city_id}]
    dimensions: [{name: city_name, type: categorical}]
metrics:
  - {name: trips, type: simple, type_params: {measure: trips}}
"""
    defs = write_defs(tmp_path, {"t.yaml": yaml})
    (defs / "data").mkdir()
    pd.DataFrame({"rider_id": [1], "driver_id": [2], "ds": ["2024-01-01"]}).to_csv(
        defs / "data" / "trips.csv", index=False
    )
    for name, key in (("riders", "rider_id"), ("drivers", "driver_id")):
        pd.DataFrame({key: [1, 2], "city_id": [5, 6]}).to_csv(defs / "data" / f"{name}.csv", index=False)
    pd.DataFrame({"city_id": [5, 6], "city_name": ["x", "y"]}).to_csv(defs / "data" / "cities.csv", index=False)
    store = Store(defs=defs, home=tmp_path / "home")
    with pytest.raises(PantryError, match="2 paths") as err:
        store.query(["trips"], group_by=["city__city_name"])
    assert "driver__city__city_name" in str(err.value.hint) and "rider__city__city_name" in str(err.value.hint)
    got = store.query(["trips"], group_by=["driver__city__city_name"])
    assert _rows(got) == {("y", 1)}
