"""The online store on a real 3-node Redis Cluster: push, reads, parity, newer-wins, expiry.

Entities spread over every node; a read of many entities and views in one call, and the
push's newer-wins script, stay correct across slots. The oracle is the training read.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
import redis
from redis.cluster import RedisCluster

from pantry import PantryError, Store
from pantry.online.client import is_cluster
from tests.conftest import RedisClusterServers
from tests.features.oracle import Row
from tests.features.test_historical_oracle import FEATURES, build
from tests.online.test_online_store import DAY0, TODAY, _historical, _same

CUSTOMERS = 400


def many_customers() -> list[Row]:
    rng = np.random.default_rng(11)
    start = datetime(DAY0.year, DAY0.month, DAY0.day)
    return [
        Row(
            int(rng.integers(1, CUSTOMERS + 1)),
            start + timedelta(days=int(rng.integers(0, 12)), minutes=int(rng.choice([0, 30, 1439]))),
            None if rng.random() < 0.1 else float(rng.integers(1, 100)),
            str(rng.choice(list("abc"))),
            i,
        )
        for i in range(3000)
    ]


@pytest.fixture
def store(tmp_path, redis_cluster: RedisClusterServers) -> Store:  # noqa: ANN001
    from tests.features.test_historical_oracle import materialize_days

    built = build(tmp_path, many_customers())
    materialize_days(built, [(DAY0, TODAY - timedelta(days=2))])
    return Store(defs=built.defs, home=built.home, redis_url=redis_cluster.url, offline_uri=built.offline_uri)


def test_push_spreads_over_every_node_and_reads_equal_training(store: Store, redis_cluster) -> None:  # noqa: ANN001
    day = TODAY - timedelta(days=3)
    assert is_cluster(store.online.client)
    written = store.push_online("shopper", day)
    keys = list(range(1, CUSTOMERS + 1)) + [10**6]  # and one entity nobody has seen
    online = store.get_online_features(FEATURES, [{"customer_id": k} for k in keys])
    offline = _historical(store, day, keys)
    assert written == offline["revenue_7d"].notna().sum() > 300
    for name in [f.split(":")[1] for f in FEATURES]:
        for i, key in enumerate(keys):
            assert _same(online[name][i], offline[name].iloc[i]), (name, key, online[name][i], offline[name].iloc[i])
    # each node holds a share of the entities, under hash-tagged keys
    per_node = [len(redis.Redis(port=p).keys("pantry:shopper:*")) for p in redis_cluster.ports]
    assert all(n > 50 for n in per_node) and sum(per_node) == written, per_node
    one = redis.Redis(port=redis_cluster.ports[0]).keys("pantry:shopper:*")[0].decode()
    assert one.startswith("pantry:shopper:{") and one.endswith("}")


def test_newer_wins_expiry_and_absent_entities_on_a_cluster(store: Store, redis_cluster) -> None:  # noqa: ANN001
    newer, older = TODAY - timedelta(days=2), TODAY - timedelta(days=6)
    rows = [{"customer_id": k} for k in range(1, CUSTOMERS + 1)]
    store.push_online("shopper", newer)
    before = store.get_online_features(FEATURES, rows)
    store.push_online("shopper", older)  # an older partition never overwrites a newer stamp
    assert store.get_online_features(FEATURES, rows) == before
    store.push_online("shopper", newer)  # and a repeat changes nothing
    assert store.get_online_features(FEATURES, rows) == before
    # EXPIREAT stamp + ttl (5 days), on every node
    client = RedisCluster.from_url(redis_cluster.url)
    stamp = int(datetime(newer.year, newer.month, newer.day, tzinfo=UTC).timestamp()) + 86400
    for port in redis_cluster.ports:
        node = redis.Redis(port=port)
        key = node.keys("pantry:shopper:*")[0]
        assert int(node.hget(key, "__stamp")) == stamp
        assert abs(node.ttl(key) - (stamp + 5 * 86400 - time.time())) < 5
    assert int(client.hget("pantry:__meta__:shopper", "stamp")) == stamp
    # an entity present at an earlier stamp but absent at the newer one reads null
    earlier = TODAY - timedelta(days=5)
    at_earlier = _historical(store, earlier, list(range(1, CUSTOMERS + 1)))
    at_newer = _historical(store, newer, list(range(1, CUSTOMERS + 1)))
    gone = [
        k
        for k, a, b in zip(range(1, CUSTOMERS + 1), at_earlier["revenue_7d"], at_newer["revenue_7d"])
        if pd.notna(a) and pd.isna(b)
    ]
    assert gone, "the data should leave some entities absent at the newer stamp"
    client.flushall()
    store.push_online("shopper", earlier)
    store.push_online("shopper", newer)
    got = store.get_online_features(["shopper:revenue_7d"], [{"customer_id": k} for k in gone])
    assert got["revenue_7d"] == [None] * len(gone)


def test_a_cluster_that_went_down_is_a_clear_error(store: Store, redis_cluster) -> None:  # noqa: ANN001
    store.push_online("shopper", TODAY - timedelta(days=3))
    assert store.get_online_features(["shopper:revenue_7d"], [{"customer_id": 1}])["customer_id"] == [1]
    redis_cluster.stop()
    started = time.monotonic()
    with pytest.raises(PantryError, match="Redis") as err:
        store.get_online_features(["shopper:revenue_7d"], [{"customer_id": k} for k in range(1, 50)])
    assert redis_cluster.url.split("/0")[0] in str(err.value) or "Cluster" in str(err.value)
    assert time.monotonic() - started < 60


def test_a_streaming_view_on_a_cluster_is_one_clear_sentence(tmp_path, redis_cluster) -> None:  # noqa: ANN001
    """Streaming views are served from a standalone Redis (docs/online.md, Limits): a push to
    one on a cluster keeps its rows durable and says so, with what to do, instead of a
    traceback or Redis's own CROSSSLOT error."""
    from tests.conftest import write_defs
    from tests.ingest.test_streaming_view import STREAM_YAML, _declared, _events

    numbers = STREAM_YAML.replace("      - {name: channel, dimension: click__channel}\n", "")
    defs = write_defs(tmp_path, {"clicks.yaml": numbers})
    (defs / "data").mkdir()
    _declared().to_parquet(defs / "data" / "clicks.parquet", index=False)
    store = Store(defs=defs, home=tmp_path / "home", redis_url=redis_cluster.url)
    clicks = _events(5, 40, 100)
    clicks["ts"] = datetime.now(UTC).replace(tzinfo=None) - timedelta(minutes=1)
    with pytest.raises(PantryError) as err:
        store.push("clicks", clicks)
    said = str(err.value)
    assert "40 rows of 'clicks' are stored" in said and "standalone Redis" in said and "PANTRY_REDIS_URL" in said, said
    import pyarrow.parquet as pq

    (batch,) = (tmp_path / "home" / "ingest" / "clicks").glob("*.parquet")  # durable, as the sentence says
    assert pq.read_table(batch).num_rows == 40
