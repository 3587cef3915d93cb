"""Feast 0.67's get_historical_features for the latest-value feature; run in bench/.feast-venv.

Usage: feast_peer.py ORDERS_TS.parquet ENTITIES.parquet OUT.parquet
Prints the median seconds of 3 runs. The orders file has o_custkey, o_orderpriority and
event_ts (UTC); the entities file has o_custkey and event_timestamp (UTC).
"""

import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import pandas as pd
from feast import Entity, FeatureStore, FeatureView, Field, FileSource, RepoConfig
from feast.infra.offline_stores.duckdb import DuckDBOfflineStoreConfig
from feast.infra.online_stores.sqlite import SqliteOnlineStoreConfig
from feast.types import String


def main() -> None:
    orders, entities, out = (Path(p) for p in sys.argv[1:4])
    repo = Path(tempfile.mkdtemp())
    config = RepoConfig(
        project="bench",
        registry=str(repo / "registry.db"),
        provider="local",
        offline_store=DuckDBOfflineStoreConfig(),
        online_store=SqliteOnlineStoreConfig(path=str(repo / "online.db")),
        entity_key_serialization_version=3,
    )
    store = FeatureStore(config=config)
    customer = Entity(name="customer", join_keys=["o_custkey"])
    view = FeatureView(
        name="orders_fv",
        entities=[customer],
        ttl=timedelta(days=3650),
        schema=[Field(name="o_orderpriority", dtype=String)],
        source=FileSource(path=str(orders), timestamp_field="event_ts"),
    )
    store.apply([customer, view])
    entity_df = pd.read_parquet(entities)
    times, frame = [], None
    for _ in range(3):
        start = time.perf_counter()
        frame = store.get_historical_features(entity_df=entity_df, features=["orders_fv:o_orderpriority"]).to_df()
        times.append(time.perf_counter() - start)
    frame.to_parquet(out, index=False)
    print(f"{statistics.median(times):.4f}")


if __name__ == "__main__":
    main()
