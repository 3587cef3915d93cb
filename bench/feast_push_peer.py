"""Feast 0.67's push (``store.push`` to its Redis online store): the peer of bench/ingest.py.

Usage (in bench/.feast-venv): feast_push_peer.py EVENTS.parquet HOST:PORT BATCH
The events are the ones Pantry ingests in the same run. Feast's push overwrites each
entity's latest row online (no windows, nothing durable offline with PushMode.ONLINE);
that is the work measured. Prints one JSON line: events, events_per_s, push_batch (p50,
p99 in ms per batch), read_100x2 (p50, p99 in ms).
"""

import json
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
from feast import Entity, FeatureStore, FeatureView, Field, FileSource, PushSource, RepoConfig
from feast.data_source import PushMode
from feast.infra.offline_stores.duckdb import DuckDBOfflineStoreConfig
from feast.infra.online_stores.redis import RedisOnlineStoreConfig
from feast.types import Float64, Int64


def percentiles(samples):
    ordered = sorted(samples)
    return [ordered[len(ordered) // 2] * 1000, ordered[int(len(ordered) * 0.99) - 1] * 1000]


def main() -> None:
    events, redis_host, batch = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    frame = pd.read_parquet(events)
    frame["ts"] = pd.to_datetime(frame["ts"]).dt.tz_localize("UTC")
    repo = Path(tempfile.mkdtemp())
    frame.head(1).to_parquet(repo / "batch.parquet", index=False)
    config = RepoConfig(
        project="bench_push",
        registry=str(repo / "registry.db"),
        provider="local",
        offline_store=DuckDBOfflineStoreConfig(),
        online_store=RedisOnlineStoreConfig(connection_string=redis_host),
        entity_key_serialization_version=3,
    )
    store = FeatureStore(config=config)
    customer = Entity(name="customer", join_keys=["customer_id"])
    source = PushSource(
        name="events_push",
        batch_source=FileSource(path=str(repo / "batch.parquet"), timestamp_field="ts"),
    )
    view = FeatureView(
        name="events_latest",
        entities=[customer],
        ttl=timedelta(days=1),
        schema=[Field(name="event_id", dtype=Int64), Field(name="amount", dtype=Float64)],
        source=source,
        online=True,
    )
    store.apply([customer, view])
    pushes = []
    started = time.perf_counter()
    for lo in range(0, len(frame), batch):
        t = time.perf_counter()
        store.push("events_push", frame.iloc[lo : lo + batch], to=PushMode.ONLINE)
        pushes.append(time.perf_counter() - t)
    elapsed = time.perf_counter() - started
    rng = np.random.default_rng(100)
    customers = frame["customer_id"].unique()
    rows = [{"customer_id": int(k)} for k in rng.choice(customers, size=100)]
    reads = []
    for _ in range(300):
        t = time.perf_counter()
        store.get_online_features(
            features=["events_latest:event_id", "events_latest:amount"], entity_rows=rows
        ).to_dict()
        reads.append(time.perf_counter() - t)
    print(
        json.dumps(
            {
                "events": len(frame),
                "events_per_s": len(frame) / elapsed,
                "push_batch": percentiles(pushes),
                "read_100x2": percentiles(reads),
            }
        )
    )


if __name__ == "__main__":
    main()
