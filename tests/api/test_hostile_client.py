"""`pantry serve` against the review's hostile client (issue 23): real uvicorn, real DuckDB
files, three keys (`read`, `pii+read`, `write`). Each test failed before its fix."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from pantry import Store
from tests.conftest import SHOP_YAML, Server, shop_frames, slow_percentile_defs, write_defs
from tests.ingest.conftest import EVENTS_YAML

SECRET = "VAULT-51f0-secret"
VAULT_YAML = """
semantic_models:
  - name: vault
    source: data/vault.csv
    entities: [{name: safe, type: primary, expr: safe_id}]
    dimensions: [{name: code, type: categorical}]
"""
# the ingest tests' push model, without their own 'orders' model (the shop has one)
PUSH_YAML = EVENTS_YAML.split("  - name: orders")[0] + "metrics:" + EVENTS_YAML.split("metrics:")[1]
KEYS = "reader=k-read:read,ops=k-pii:pii+read,writer=k-write:write"
READ, WRITE = {"X-API-Key": "k-read"}, {"X-API-Key": "k-write"}


def build(root: Path) -> Store:
    defs = write_defs(root, {"shop.yaml": SHOP_YAML, "vault.yaml": VAULT_YAML, "events.yaml": PUSH_YAML})
    (defs / "data").mkdir()
    frames = shop_frames()
    frames["orders"].to_parquet(defs / "data" / "orders.parquet", index=False)
    frames["customers"].to_parquet(defs / "data" / "customers.parquet", index=False)
    frames["regions"].to_csv(defs / "data" / "regions.csv", index=False)
    (defs / "data" / "vault.csv").write_text(f"safe_id,code\n1,{SECRET}\n")
    pd.DataFrame(
        {"event_id": [1], "customer_id": [10], "ts": pd.to_datetime(["2026-11-30 09:00:00"]), "amount": [5.0]}
    ).to_parquet(defs / "data" / "events.parquet", index=False)
    return Store(defs=defs, home=root / "home", redis_url="redis://127.0.0.1:1/0")


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Store:
    return build(tmp_path_factory.mktemp("hostile"))


@pytest.fixture(scope="module")
def http(shop: Store) -> Iterator[object]:
    with Server(shop, api_keys=KEYS) as client:
        yield client


INJECTION = "'1'::\"VARINT) IS NULL; SELECT safe_id, code FROM src.vault LIMIT 5 --\" IS NULL"


def test_the_cast_injection_is_refused_for_every_key(http: object) -> None:
    for variant in (
        INJECTION,
        "CAST('1' AS \"VARINT) IS NULL; SELECT code FROM src.vault --\") IS NULL",
        'TRY_CAST(customer__segment AS "VARINT) IS NULL; SELECT code FROM src.vault --") IS NULL',
    ):
        reply = http.get("/metrics/query", params={"group_by": "customer__segment", "where": variant}, headers=READ)
        assert reply.status_code == 422, (variant, reply.text)
        assert "is not allowed in a where" in reply.json()["detail"] and SECRET not in reply.text
        written = http.get("/metrics/query", params={"group_by": "customer__segment", "where": variant}, headers=WRITE)
        assert written.status_code == 403 and SECRET not in written.text


def test_a_conversion_error_quotes_no_value(http: object) -> None:
    reply = http.get(
        "/metrics/query",
        params={"group_by": "customer__segment", "where": "CAST(customer__segment AS INT) = 1"},
        headers=READ,
    )
    assert reply.status_code == 422
    detail = reply.json()["detail"]
    assert "Could not convert string '…' to INT32" in detail
    assert "retail" not in detail and "vip" not in detail


def test_an_allocating_function_is_refused_before_it_runs(http: object) -> None:
    started = time.perf_counter()
    reply = http.get(
        "/metrics/query",
        params={"metrics": "revenue", "where": "length(lpad(customer__segment, 20000000, 'b')) > 0"},
        headers=READ,
    )
    assert reply.status_code == 422 and "at most 10,000" in reply.json()["detail"]
    assert time.perf_counter() - started < 5


def test_every_route_checks_its_scope(http: object) -> None:
    assert http.get("/metrics/query", params={"metrics": "revenue"}, headers=WRITE).status_code == 403
    assert http.get("/catalog", headers=WRITE).status_code == 403
    assert http.get("/metrics", headers=WRITE).status_code == 403
    online = http.post("/features/online", json={"features": ["x:y"], "entities": {"id": [1]}}, headers=WRITE)
    assert online.status_code == 403 and "'read' scope" in online.text
    pushed = http.post("/push/events", json=[{"event_id": 9}], headers=READ)
    assert pushed.status_code == 403 and "'write' scope" in pushed.text
    ok = http.get("/metrics/query", params={"metrics": "revenue"}, headers=READ)
    assert ok.status_code == 200, ok.text
    assert http.get("/catalog", headers=READ).status_code == 200
    assert http.get("/healthz").status_code in (200, 503)  # open: it says nothing a key protects


def test_unknown_paths_add_no_prometheus_series(http: object) -> None:
    for i in range(2_000):
        assert http.get(f"/nothing/{i}/here-{i * 7}").status_code == 401
    for i in range(50):
        http.get(f"/push/model-{i}", headers=WRITE)  # a real route's template, many paths
    text = http.get("/metrics", headers=READ).text
    assert "here-" not in text and "model-" not in text
    assert 'path="unmatched"' in text and 'path="/push/{model}"' in text
    assert len(text) < 60_000, len(text)


def test_a_key_in_the_url_is_refused_and_never_logged(http: object, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="pantry.http"):
        reply = http.get("/metrics/query", params={"metrics": "revenue", "api_key": "k-read"})
    assert reply.status_code == 401 and "header" in reply.json()["detail"]
    logged = " ".join(r.getMessage() for r in caplog.records)
    assert "api_key=REDACTED" in logged and "k-read" not in logged


def test_bad_time_ranges_answer_422(http: object) -> None:
    reply = http.get(
        "/metrics/query",
        params={
            "metrics": "revenue",
            "group_by": "metric_time__week",
            "start_time": "0001-01-01",
            "end_time": "9999-12-31",
        },
        headers=READ,
    )
    assert reply.status_code == 422 and "between 1800-01-01 and 2299-12-31" in reply.json()["detail"]


def test_size_limits_are_named_in_the_refusal(shop: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PANTRY_MAX_BODY_BYTES", "20000")
    monkeypatch.setenv("PANTRY_MAX_PUSH_ROWS", "50")
    monkeypatch.setenv("PANTRY_MAX_ENTITIES", "100")
    with Server(shop, api_keys=KEYS) as client:
        big = client.post("/push/events", content=b"[" + b" " * 30_000 + b"]", headers=WRITE)
        assert big.status_code == 413 and "PANTRY_MAX_BODY_BYTES" in big.text and "20,000" in big.text

        def chunks() -> Iterator[bytes]:  # no content-length: the size is counted as it arrives
            yield b"["
            for _ in range(100):
                yield b" " * 1000
            yield b"]"

        streamed = client.post("/push/events", content=chunks(), headers=WRITE)
        assert streamed.status_code == 413 and "PANTRY_MAX_BODY_BYTES" in streamed.text
        rows = [{"event_id": 1000 + i, "customer_id": 1, "ts": "2026-11-30 10:00:00", "amount": 1} for i in range(51)]
        many = client.post("/push/events", json=rows, headers=WRITE)
        assert many.status_code == 413 and "at most 50 (PANTRY_MAX_PUSH_ROWS)" in many.text
        fine = client.post("/push/events", json=rows[:50], headers=WRITE)
        assert fine.status_code == 200 and fine.json()["accepted"] == 50
        read = client.post(
            "/features/online", json={"features": ["x:y"], "entities": {"id": list(range(101))}}, headers=READ
        )
        assert read.status_code == 413 and "at most 100 (PANTRY_MAX_ENTITIES)" in read.text


def test_slow_queries_fill_a_bounded_queue_and_nobody_waits_past_the_timeout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Legal, slow queries (a percentile over 6M rows) on one worker with a queue of one:
    the overflow is told 429 at once, and every other answer comes within the timeout
    (plus the kill's grace), queue time included; the server still answers afterwards."""
    slow = slow_percentile_defs(tmp_path)
    monkeypatch.setenv("PANTRY_QUERY_TIMEOUT", "1.5")
    monkeypatch.setenv("PANTRY_QUERY_WORKERS", "1")
    monkeypatch.setenv("PANTRY_QUERY_QUEUE", "1")
    store = Store(defs=slow, home=tmp_path / "home", redis_url="redis://127.0.0.1:1/0")
    with Server(store) as client:
        client.get("/metrics/query", params={"metrics": "p50"})  # the worker is warm
        answers: list[tuple[int, float]] = []

        def ask() -> None:
            started = time.perf_counter()
            reply = client.get("/metrics/query", params={"metrics": "p50", "group_by": "event"})
            answers.append((reply.status_code, time.perf_counter() - started))

        threads = [threading.Thread(target=ask) for _ in range(4)]
        for thread in threads:
            thread.start()
            time.sleep(0.1)
        for thread in threads:
            thread.join()
        statuses = sorted(code for code, _ in answers)
        assert 429 in statuses and set(statuses) <= {200, 429, 504}, answers
        assert all(seconds < 1.5 + 2.0 + 1.0 for _, seconds in answers), answers
        assert client.get("/metrics/query", params={"metrics": "p50"}).status_code in (200, 504)


def test_a_query_that_would_grow_without_bound_meets_the_memory_cap(
    shop: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Three nested replaces of a 1,000-character text: 2 GB per row, within every static
    rule. DuckDB's memory_limit does not count these strings; the worker's RLIMIT_DATA does,
    so the query fails as out of memory (422, the setting named) and the worker lives on."""
    monkeypatch.setenv("PANTRY_QUERY_MEMORY", "256MB")
    long = "'" + "e" * 1000 + "'"
    where = f"length(replace(replace(replace(customer__segment, 'e', {long}), 'e', {long}), 'e', {long})) > 0"
    with Server(shop, api_keys=KEYS) as client:
        reply = client.get("/metrics/query", params={"metrics": "revenue", "where": where}, headers=READ)
        assert reply.status_code == 422, reply.text
        assert "needs more memory" in reply.json()["detail"] and "PANTRY_QUERY_MEMORY" in reply.json()["detail"]
        after = client.get("/metrics/query", params={"metrics": "revenue"}, headers=READ)
        assert after.status_code == 200
        assert after.json()["rows"][0][0] == pytest.approx(shop_frames()["orders"]["amount"].sum())


def test_min_max_only_over_http(http: object) -> None:
    reply = http.get("/metrics/query", params={"group_by": "customer__segment", "min_max_only": "true"}, headers=READ)
    assert reply.status_code == 200, reply.text
    segments = shop_frames()["customers"]["segment"].dropna()
    assert reply.json()["columns"] == ["customer__segment__min", "customer__segment__max"]
    assert reply.json()["rows"] == [[segments.min(), segments.max()]]


def test_apply_group_by_false_over_http(http: object) -> None:
    reply = http.get(
        "/metrics/query", params={"group_by": "customer__segment", "apply_group_by": "false"}, headers=READ
    )
    assert reply.status_code == 200, reply.text
    assert len(reply.json()["rows"]) == len(shop_frames()["customers"])  # one per customer, nulls included
