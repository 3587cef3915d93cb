"""A feature view over a slowly changing dimension (SCD type II) reads, point in time, the
version valid at each stamp: the last version event before it (a version's start, with its
values, or its end, with none), within the view's ttl, as for every row of Pantry.

The oracle is a brute force over the versions, written here from the contract.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pantry import PantryError, Store
from pantry.compile.view_plan import plan_view
from pantry.features.tiles import materialize
from pantry.offline.sources import connect
from tests.conftest import write_defs

YAML = """
semantic_models:
  - name: listings
    source: data/listings.parquet
    primary_entity: listing
    entities: [{name: listing, type: natural, expr: listing_id}]
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
feature_views:
  - name: listing_now
    entity: listing
    ttl: 20 days
    features:
      - {name: capacity, dimension: listing__capacity}
"""
DAY0 = date(2024, 1, 1)
TTL_DAYS = 20


def _versions(rng: np.random.Generator) -> pd.DataFrame:
    rows = []
    for listing in range(1, 13):
        start = datetime(2024, 1, 1) + timedelta(days=int(rng.integers(0, 6)), hours=int(rng.integers(0, 24)))
        for v in range(int(rng.integers(1, 5))):
            length = timedelta(days=int(rng.integers(1, 9)), hours=int(rng.integers(0, 24)))
            last = v == 3 or rng.random() < 0.25
            gap = timedelta(hours=int(rng.integers(1, 30))) if rng.random() < 0.2 else timedelta(0)
            closed = not last or rng.random() < 0.5
            rows.append(
                {
                    "listing_id": listing,
                    "active_from": start,
                    "active_to": start + length if closed else None,
                    "capacity": int(rng.integers(1, 9)),
                }
            )
            if last:
                break
            start = start + length + gap  # back to back, or a gap with no valid version
    frame = pd.DataFrame(rows)
    frame["active_to"] = pd.to_datetime(frame["active_to"])
    return frame


def _oracle(versions: pd.DataFrame, listing: int, stamp: datetime) -> int | None:
    """The last event of the listing in [stamp - ttl, stamp): a start gives its capacity, an
    end gives nothing; at one instant a start outranks an end; no event: absent (None)."""
    events = []
    for i, v in enumerate(versions[versions.listing_id == listing].itertuples()):
        events.append((v.active_from.to_pydatetime(), 1, i, v.capacity))
        if not pd.isna(v.active_to):
            events.append((v.active_to.to_pydatetime(), 0, i, None))
    inside = [e for e in events if stamp - timedelta(days=TTL_DAYS) <= e[0] < stamp]
    return max(inside)[3] if inside else None


@pytest.fixture(scope="module")
def scd(tmp_path_factory: pytest.TempPathFactory) -> tuple[Store, pd.DataFrame]:
    root = tmp_path_factory.mktemp("scd_features")
    defs = write_defs(root, {"listings.yaml": YAML})
    (defs / "data").mkdir()
    versions = _versions(np.random.default_rng(5))
    versions.to_parquet(defs / "data" / "listings.parquet", index=False)
    store = Store(defs=defs, home=root / "home")
    store.home.mkdir()
    source = connect(store.definitions)
    try:
        plan = plan_view(store.definitions, store.definitions.views["listing_now"])
        materialize(source, store.offline, plan, DAY0, DAY0 + timedelta(days=40))
    finally:
        source.close()
    return store, versions


def test_each_stamp_reads_the_version_valid_before_it(scd) -> None:
    store, versions = scd
    days = [DAY0 + timedelta(days=d) for d in range(41)]
    stamps = [datetime(d.year, d.month, d.day) + timedelta(days=1) for d in days]
    entity_df = pd.DataFrame(
        [(listing, stamp) for listing in range(1, 14) for stamp in stamps], columns=["listing_id", "event_timestamp"]
    )
    got = store.get_historical_features(entity_df, ["listing_now:capacity"])
    compared = ended = 0
    for row, (listing, stamp) in zip(got.itertuples(index=False), entity_df.itertuples(index=False)):
        expected = _oracle(versions, listing, stamp.to_pydatetime())
        value = None if pd.isna(row.capacity) else int(row.capacity)
        assert value == expected, (listing, stamp, value, expected)
        compared += 1
        mine = versions[versions.listing_id == listing]
        if len(mine) and expected is None and (mine.active_from < stamp).any():
            ended += 1
    assert compared == 13 * 41 and ended > 0  # some stamps fall after a version ended, with no successor


def test_the_portable_form_refuses_an_scd_view_by_name(scd) -> None:
    store, _ = scd
    with pytest.raises(PantryError, match="slowly changing model 'listings'"):
        store.compile_partition("2024-01-10", view="listing_now", dialect="spark")


def test_metrics_still_read_every_version(scd, tmp_path: Path) -> None:
    """Without a measure, a query of the SCD model reads all its versions (distinct values)."""
    store, versions = scd
    got = store.query(group_by=["listing__capacity"])
    assert sorted(int(v) for v in got["listing__capacity"]) == sorted(versions["capacity"].unique())
