"""Online keys are canonical: every integer width and DECIMAL(38,0) id finds what the push wrote.

Data small enough to work out by hand, on partition D (stamp D + 1 day):
  entity A: two rows on D (1.5 and 2.5)  -> sum_2d 4.0,  n_2d 2
  entity B: one row on D (10.0)          -> sum_2d 10.0, n_2d 1
  entity C: one row on D - 1 (7.0)       -> sum_2d 7.0,  n_2d 1
"""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from pantry import PantryError, Store
from tests.conftest import RedisServer, Server, free_port
from tests.features.test_historical_oracle import materialize_days

D = datetime.now(UTC).date() - timedelta(days=2)
FEATURES = ["events_2d:sum_2d", "events_2d:n_2d"]
BY_HAND = {"A": (4.0, 2), "B": (10.0, 1), "C": (7.0, 1)}

# key type -> (DuckDB type written to Parquet, entity expr, the ids of A, B, C)
KEY_TYPES: dict[str, tuple[str, str, tuple[object, object, object]]] = {
    "bigint": ("BIGINT", "id", (1, 2, -3)),
    "decimal": ("DECIMAL(38,0)", "id", (1, 12345678901234567890123, 3)),
    "hugeint": ("DECIMAL(38,0)", "CAST(id AS HUGEINT)", (1, 2**70, -(2**65))),
    "ubigint": ("UBIGINT", "id", (1, 2**64 - 1, 2**63 + 7)),
    "varchar": ("VARCHAR", "id", ("a1", "01", "b")),
}

YAML = """
semantic_models:
  - name: events
    source: data/events.parquet
    defaults: {{agg_time_dimension: at}}
    entities:
      - {{name: event, type: primary, expr: event_id}}
      - {{name: customer, type: foreign, expr: "{expr}"}}
    dimensions:
      - {{name: at, type: time, type_params: {{time_granularity: day}}}}
    measures:
      - {{name: amount, agg: sum, expr: amount}}
      - {{name: rows, agg: count, expr: amount}}
feature_views:
  - name: events_2d
    entity: customer
    online: true
    features:
      - {{name: sum_2d, measure: events.amount, window: 2 days}}
      - {{name: n_2d, measure: events.rows, window: 2 days}}
"""


def key_of(kind: str) -> str:
    """The entity_df column of the key: the entity's expr when it is a plain column, else its name."""
    expr = KEY_TYPES[kind][1]
    return expr if expr.isidentifier() else "customer"


def build(root: Path, kind: str) -> Store:
    duck_type, expr, (a, b, c) = KEY_TYPES[kind]
    defs = root / "metrics_defs"
    (defs / "data").mkdir(parents=True)
    (defs / "defs.yaml").write_text(textwrap.dedent(YAML.format(expr=expr)))
    ids = [a, a, b, c]
    days = [D, D, D, D - timedelta(days=1)]
    values = ", ".join(
        f"({i}, CAST('{key}' AS {duck_type}), TIMESTAMP '{day} 12:00:00', {amount})"
        for i, (key, day, amount) in enumerate(zip(ids, days, [1.5, 2.5, 10.0, 7.0]))
    )
    duckdb.sql(
        f"COPY (SELECT * FROM (VALUES {values}) t(event_id, id, \"at\", amount)) TO '{defs / 'data' / 'events.parquet'}'"
    )
    store = Store(defs=defs, home=root / "home")
    materialize_days(store, [(D - timedelta(days=1), D)])
    return store


@pytest.mark.parametrize("kind", list(KEY_TYPES))
def test_every_key_type_serves_what_training_reads(tmp_path: Path, redis_server: RedisServer, kind: str) -> None:
    built = build(tmp_path, kind)
    store = Store(defs=built.defs, home=built.home, redis_url=redis_server.url)
    store.push_online("events_2d", D)
    ids = KEY_TYPES[kind][2]
    key = key_of(kind)
    expected = {"sum_2d": [BY_HAND[n][0] for n in "ABC"], "n_2d": [BY_HAND[n][1] for n in "ABC"]}

    # the keys Redis holds are the ids' digits (or the strings themselves), nothing else
    raw = redis.Redis.from_url(redis_server.url)
    stored = {k.decode() for k in raw.scan_iter("pantry:events_2d:*")}
    assert stored == {f"pantry:events_2d:{i}" for i in ids}

    # Python ints (of any size) find them
    online = store.get_online_features(FEATURES, [{key: i} for i in ids])
    assert {k: online[k] for k in expected} == expected
    assert all(type(v) is int for v in online["n_2d"])
    # so do Decimal, numpy integers and, for integer keys, the digits as a string
    if kind != "varchar":
        for variant in (Decimal, str):
            again = store.get_online_features(FEATURES, [{key: variant(i)} for i in ids])
            assert {k: again[k] for k in expected} == expected, variant
    if kind in ("bigint", "ubigint"):
        numpy_ids = np.array(ids, dtype=np.int64 if kind == "bigint" else np.uint64)
        again = store.get_online_features(FEATURES, [{key: i} for i in numpy_ids])
        assert {k: again[k] for k in expected} == expected

    # training reads at the stamp agree, with the key column in its own type
    column = pd.Series(list(ids), dtype="uint64" if kind == "ubigint" else object)
    stamp = pd.Timestamp(D + timedelta(days=1))
    training = store.get_historical_features(pd.DataFrame({key: column, "event_timestamp": [stamp] * 3}), FEATURES)
    assert training["sum_2d"].tolist() == expected["sum_2d"]
    assert training["n_2d"].tolist() == expected["n_2d"]

    # the training set without an entity_df keeps the keys exact and in their type
    spine = store.get_historical_features(None, FEATURES, start_time=stamp, end_time=stamp)
    keys = spine[key].tolist()
    assert sorted(keys, key=str) == sorted(ids, key=str)
    if kind in ("decimal", "hugeint"):
        assert all(isinstance(k, Decimal) for k in keys)
    if kind == "ubigint":
        assert spine[key].dtype == np.uint64


def test_json_ints_over_http_find_wide_keys(tmp_path: Path, redis_server: RedisServer) -> None:
    built = build(tmp_path, "ubigint")
    store = Store(defs=built.defs, home=built.home, redis_url=redis_server.url)
    store.push_online("events_2d", D)
    ids = list(KEY_TYPES["ubigint"][2])
    with Server(store) as http:
        reply = http.post("/features/online", json={"features": FEATURES, "entities": {"id": ids}})  # type: ignore[attr-defined]
        as_strings = http.post(  # type: ignore[attr-defined]
            "/features/online", json={"features": FEATURES, "entities": {"id": [str(i) for i in ids]}}
        )
        fractional = http.post("/features/online", json={"features": FEATURES, "entities": {"id": [1.5]}})  # type: ignore[attr-defined]
    assert reply.status_code == 200
    assert reply.json() == {"id": ids, "sum_2d": [4.0, 10.0, 7.0], "n_2d": [2, 1, 1]}
    assert as_strings.json()["sum_2d"] == [4.0, 10.0, 7.0]
    assert fractional.status_code == 422 and "1.5 is not an entity key" in fractional.json()["detail"]


def test_non_integral_keys_are_refused(tmp_path: Path, redis_server: RedisServer) -> None:
    defs = build(tmp_path / "double", "bigint").defs
    (defs / "defs.yaml").write_text(
        (defs / "defs.yaml").read_text().replace('expr: "id"', 'expr: "CAST(id AS DOUBLE) / 2"')
    )
    with pytest.raises(PantryError) as err:
        Store(defs=defs, home=tmp_path / "home2").validate()  # strict: loading alone leaves the view out
    assert str(err.value).startswith(
        "metrics_defs/defs.yaml: feature view 'events_2d': entity 'customer' has key type DOUBLE in semantic model 'events'"
    )
    assert "CAST(CAST(id AS DOUBLE) / 2 AS BIGINT)" in str(err.value)
    built = build(tmp_path / "ok", "bigint")
    store = Store(defs=built.defs, home=built.home, redis_url=redis_server.url)
    for bad in (1.5, Decimal("2.5"), True, None, float("nan")):
        with pytest.raises(PantryError, match="is not an entity key"):
            store.get_online_features(FEATURES, [{"id": bad}])
    store.push_online("events_2d", D)
    # a whole float is its digits
    assert store.get_online_features(FEATURES, [{"id": 1.0}])["sum_2d"] == [4.0]


def cluster_port() -> int:
    """A free port whose cluster bus port (port + 10000) is a valid port and free too."""
    import socket

    while True:
        port = free_port()
        if port + 10000 > 65535:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        return port


def test_a_one_node_cluster_is_seen_and_served(tmp_path: Path) -> None:
    """A URL of a cluster node gives a cluster client: keys carry hash tags, one script call per
    slot group, and 64-bit keys still serve what training read (the 3-node case: test_redis_cluster)."""
    import subprocess
    import time

    port = cluster_port()
    server = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        + ["--cluster-enabled", "yes", "--cluster-config-file", str(tmp_path / "nodes.conf"), "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL,
    )
    try:
        client = redis.Redis(port=port, retry=Retry(NoBackoff(), 0))  # one try per poll: the wait stays bounded
        for _ in range(200):
            try:
                client.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.05)
        client.execute_command("CLUSTER", "ADDSLOTSRANGE", 0, 16383)
        for _ in range(200):
            if b"cluster_state:ok" in client.execute_command("CLUSTER", "INFO"):
                break
            time.sleep(0.05)
        built = build(tmp_path / "p", "bigint")
        store = Store(defs=built.defs, home=built.home, redis_url=f"redis://127.0.0.1:{port}/0")
        assert store.push_online("events_2d", D) == 3
        ids = KEY_TYPES["bigint"][2]
        assert {k.decode() for k in client.scan_iter("pantry:events_2d:*")} == {
            f"pantry:events_2d:{{{i}}}" for i in ids
        }
        online = store.get_online_features(FEATURES, [{key_of("bigint"): i} for i in ids])
        assert online["sum_2d"] == [BY_HAND[n][0] for n in "ABC"]
        assert online["n_2d"] == [BY_HAND[n][1] for n in "ABC"]
    finally:
        server.terminate()
        server.wait(timeout=10)
