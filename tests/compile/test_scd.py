"""Slowly changing dimensions (MetricFlow's SCD type II, ``validity_params``): a measure
joins the version of a row valid at its own agg time, through multi-hop paths too.

The oracle is a brute force in pandas: for each booking, the listing version whose
``[active_from, active_to)`` holds the booking's day (an open end holds for ever), then
that version's user, then the user's state.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pantry import PantryError, Store
from tests.conftest import write_defs

SCD_YAML = """
semantic_models:
  - name: bookings
    source: data/bookings.parquet
    defaults: {agg_time_dimension: ds}
    entities:
      - {name: booking, type: primary, expr: booking_id}
      - {name: listing, type: foreign, expr: listing_id}
    dimensions:
      - {name: ds, type: time, type_params: {time_granularity: day}}
    measures:
      - {name: bookings, agg: sum, expr: "1"}
      - {name: value, agg: sum, expr: amount}
  - name: listings
    source: data/listings.parquet
    primary_entity: listing
    entities:
      - {name: listing, type: natural, expr: listing_id}
      - {name: user, type: foreign, expr: user_id}
    dimensions:
      - name: window_start
        type: time
        expr: active_from
        type_params: {time_granularity: day, validity_params: {is_start: true}}
      - name: window_end
        type: time
        expr: active_to
        type_params: {time_granularity: day, validity_params: {is_end: true}}
      - {name: capacity, type: categorical}
  - name: users
    source: data/users.parquet
    entities: [{name: user, type: primary, expr: user_id}]
    dimensions: [{name: state, type: categorical}]
metrics:
  - {name: bookings, type: simple, type_params: {measure: bookings}}
  - {name: value, type: simple, type_params: {measure: value}}
  - name: big_listing_bookings
    type: simple
    type_params: {measure: bookings}
    filter: "{{ Dimension('listing__capacity') }} >= 4"
"""


def _data(rng: np.random.Generator) -> dict[str, pd.DataFrame]:
    day = pd.Timestamp("2024-01-01")
    versions = []
    for listing in range(1, 9):
        start = day + pd.Timedelta(days=int(rng.integers(0, 5)))  # bookings before it find no version
        for v in range(int(rng.integers(1, 4))):
            end = start + pd.Timedelta(days=int(rng.integers(3, 9)))
            last = v == 2 or rng.random() < 0.3
            versions.append(
                {
                    "listing_id": listing,
                    "active_from": start,
                    "active_to": None if last and rng.random() < 0.7 else end,
                    "capacity": int(rng.integers(1, 7)),
                    "user_id": int(rng.integers(1, 5)),
                }
            )
            if last:
                break
            start = end
    listings = pd.DataFrame(versions)
    listings["active_to"] = pd.to_datetime(listings["active_to"])
    bookings = pd.DataFrame(
        {
            "booking_id": np.arange(300),
            "listing_id": rng.integers(1, 10, 300),  # listing 9 has no version at all
            "ds": day + pd.to_timedelta(rng.integers(0, 30, 300), unit="D"),
            "amount": rng.integers(10, 100, 300).astype(float),
        }
    )
    users = pd.DataFrame({"user_id": [1, 2, 3, 4], "state": ["CA", "NY", "TX", None]})
    return {"bookings": bookings, "listings": listings, "users": users}


@pytest.fixture(scope="module")
def scd(tmp_path_factory: pytest.TempPathFactory) -> tuple[Store, dict[str, pd.DataFrame]]:
    root = tmp_path_factory.mktemp("scd")
    defs = write_defs(root, {"scd.yaml": SCD_YAML})
    (defs / "data").mkdir()
    frames = _data(np.random.default_rng(11))
    for name, frame in frames.items():
        frame.to_parquet(defs / "data" / f"{name}.parquet", index=False)
    return Store(defs=defs, home=root / "home"), frames


def _valid_versions(frames: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Each booking with the listing version valid on its day (or none), then its user's state."""
    rows = []
    listings = frames["listings"]
    for booking in frames["bookings"].itertuples():
        mine = listings[listings.listing_id == booking.listing_id]
        valid = mine[(mine.active_from <= booking.ds) & (mine.active_to.isna() | (booking.ds < mine.active_to))]
        assert len(valid) <= 1
        version = valid.iloc[0] if len(valid) else None
        user = None if version is None else int(version.user_id)
        state = frames["users"].set_index("user_id").state.get(user) if user is not None else None
        rows.append(
            {
                "ds": booking.ds,
                "amount": booking.amount,
                "capacity": None if version is None else int(version.capacity),
                "state": state,
            }
        )
    return pd.DataFrame(rows)


def _as_dict(frame: pd.DataFrame, keys: list[str], value: str) -> dict[tuple, float]:
    out = {}
    for row in frame.itertuples(index=False):
        key = tuple(None if pd.isna(getattr(row, k)) else getattr(row, k) for k in keys)
        out[key] = float(getattr(row, value))
    return out


def test_a_measure_joins_the_version_valid_at_its_time(scd) -> None:
    store, frames = scd
    brute = _valid_versions(frames)
    got = store.query(["bookings", "value"], group_by=["metric_time__day", "listing__capacity"])
    got["listing__capacity"] = got["listing__capacity"].astype("Int64")
    expected = brute.groupby(["ds", "capacity"], dropna=False).agg(bookings=("amount", "size"), value=("amount", "sum"))
    expected = expected.reset_index()
    want = {
        (pd.Timestamp(r.ds), None if pd.isna(r.capacity) else int(r.capacity)): (r.bookings, r.value)
        for r in expected.itertuples()
    }
    have = {
        (pd.Timestamp(r.metric_time__day), None if pd.isna(r.listing__capacity) else int(r.listing__capacity)): (
            r.bookings,
            r.value,
        )
        for r in got.itertuples()
    }
    assert have == want
    assert got["bookings"].sum() == 300  # every booking once: no version joined twice
    assert brute["capacity"].isna().sum() > 0  # bookings before any version, and of listing 9


def test_a_multi_hop_path_through_the_scd_uses_the_same_time(scd) -> None:
    store, frames = scd
    brute = _valid_versions(frames)
    got = store.query(["bookings"], group_by=["listing__user__state"])
    want = brute.groupby("state", dropna=False).size().to_dict()
    want = {(None if pd.isna(k) else k,): float(v) for k, v in want.items()}
    assert _as_dict(got, ["listing__user__state"], "bookings") == want


def test_a_filter_on_an_scd_dimension_reads_the_valid_version(scd) -> None:
    store, frames = scd
    brute = _valid_versions(frames)
    got = store.query(["big_listing_bookings"])
    assert float(got["big_listing_bookings"].iloc[0]) == float((brute["capacity"] >= 4).sum())
    where = store.query(["bookings"], where="listing__capacity < 3")
    assert float(where["bookings"].iloc[0]) == float((brute["capacity"] < 3).sum())


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ("{time_granularity: day, validity_params: {is_start: true, is_end: true}}", "either the start or the end"),
        ("{time_granularity: day, validity_params: {is_begin: true}}", "unknown field 'is_begin'"),
        ("{time_granularity: day, valid_params: {is_start: true}}", "unknown field 'valid_params'"),
    ],
)
def test_validity_params_are_read_or_refused_by_name(tmp_path: Path, params: str, message: str) -> None:
    broken = SCD_YAML.replace(
        "type_params: {time_granularity: day, validity_params: {is_start: true}}", f"type_params: {params}"
    )
    defs = write_defs(tmp_path, {"scd.yaml": broken})
    with pytest.raises(PantryError, match=message) as err:
        Store(defs=defs, home=tmp_path / "home").validate()
    assert "scd.yaml" in str(err.value) and "window_start" in str(err.value)
