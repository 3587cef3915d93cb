"""Feast 0.67 with its redis online store: materialize throughput and online read latency.

Usage (in bench/.feast-venv): feast_online_peer.py EVENTS.parquet HOST:PORT
Prints one JSON line: keys, keys_per_s, read_100x3 and read_100x25 (p50, p99 in ms).
"""

import json
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
from feast import Entity, FeatureStore, FeatureView, Field, FileSource, RepoConfig
from feast.infra.offline_stores.duckdb import DuckDBOfflineStoreConfig
from feast.infra.online_stores.redis import RedisOnlineStoreConfig
from feast.types import Float64, String


def percentiles(samples):
    ordered = sorted(samples)
    return [ordered[len(ordered) // 2] * 1000, ordered[int(len(ordered) * 0.99) - 1] * 1000]


def main() -> None:
    events, redis_host = Path(sys.argv[1]), sys.argv[2]
    frame = pd.read_parquet(events)
    frame["event_ts"] = pd.to_datetime(frame["at"]).dt.tz_localize("UTC")
    repo = Path(tempfile.mkdtemp())
    source_path = repo / "events.parquet"
    frame.drop(columns=["at"]).to_parquet(source_path, index=False)
    config = RepoConfig(
        project="bench",
        registry=str(repo / "registry.db"),
        provider="local",
        offline_store=DuckDBOfflineStoreConfig(),
        online_store=RedisOnlineStoreConfig(connection_string=redis_host),
        entity_key_serialization_version=3,
    )
    store = FeatureStore(config=config)
    entity = Entity(name="entity", join_keys=["entity_id"])
    names = [c for c in frame.columns if c.startswith("f")] + ["label"]
    view = FeatureView(
        name="wide",
        entities=[entity],
        ttl=timedelta(days=30),
        schema=[Field(name=n, dtype=String if n == "label" else Float64) for n in names],
        source=FileSource(path=str(source_path), timestamp_field="event_ts"),
    )
    store.apply([entity, view])
    end = datetime.now(UTC)
    start = time.perf_counter()
    store.materialize(start_date=end - timedelta(days=3), end_date=end)
    elapsed = time.perf_counter() - start
    rng = np.random.default_rng(100)
    rows = [{"entity_id": int(k)} for k in rng.integers(1, len(frame) + 1, size=100)]
    out = {"keys": len(frame), "keys_per_s": len(frame) / elapsed}
    for label, feats in (("read_100x3", names[:3]), ("read_100x25", names)):
        refs = [f"wide:{n}" for n in feats]
        samples = []
        for _ in range(500):
            t = time.perf_counter()
            store.get_online_features(features=refs, entity_rows=rows).to_dict()
            samples.append(time.perf_counter() - t)
        out[label] = percentiles(samples)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
