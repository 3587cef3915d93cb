"""The HTTP API over real HTTP (uvicorn on a free port), a real redis-server and DuckDB."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import redis

from pantry import Store
from tests.conftest import RedisServer, Server
from tests.features.test_historical_oracle import FEATURES, build, materialize_days
from tests.online.test_online_store import DAY0, TODAY, recent_rows


@pytest.fixture
def store(tmp_path: Path, redis_server: RedisServer) -> Iterator[Store]:
    built = build(tmp_path, recent_rows())
    materialize_days(built, [(DAY0, TODAY - timedelta(days=2))])
    store = Store(defs=built.defs, home=built.home, redis_url=redis_server.url)
    store.push_online("shopper", TODAY - timedelta(days=2))
    store.push_online("recent", TODAY - timedelta(days=2))
    yield store


def test_online_features_over_http_equal_the_python_api(store: Store) -> None:
    with Server(store) as http:
        reply = http.post("/features/online", json={"features": FEATURES, "entities": {"customer_id": [1, 2, 99]}})
        assert reply.status_code == 200
        assert reply.json() == store.get_online_features(FEATURES, [{"customer_id": k} for k in (1, 2, 99)])
        assert list(reply.json()) == ["customer_id"] + [f.split(":")[1] for f in FEATURES]
        assert reply.json()["revenue_7d"][2] is None


def test_the_small_read_fast_path_and_the_route_give_the_same_answers(store: Store) -> None:
    """A plain body is answered before FastAPI routes it; a body with one more key (pydantic
    ignores it) takes the route. Both say the same, for every shape: several keys, none,
    keys given as text, a key never pushed, a feature list from two views."""
    bodies = [
        {"features": FEATURES, "entities": {"customer_id": [1, 2, 99]}},
        {"features": FEATURES[:1], "entities": {"customer_id": []}},
        {"features": FEATURES, "entities": {"customer_id": ["1", 2]}},
        {"features": list(reversed(FEATURES)), "entities": {"customer_id": [2, 2, 12345]}},
    ]
    with Server(store) as http:
        for body in bodies:
            fast = http.post("/features/online", json=body)
            routed = http.post("/features/online", json={**body, "note": "routed"})
            assert fast.status_code == routed.status_code == 200, (fast.text, routed.text)
            assert fast.json() == routed.json(), body
            rows = [{"customer_id": k} for k in body["entities"]["customer_id"]]
            assert fast.json() == store.get_online_features(body["features"], rows)
        assert fast.headers["content-type"] == "application/json"


def test_malformed_requests_get_422_with_a_reason(store: Store) -> None:
    with Server(store) as http:
        missing = http.post("/features/online", json={"entities": {"customer_id": [1]}})
        assert missing.status_code == 422 and "features" in missing.text
        unknown = http.post(
            "/features/online", json={"features": ["shopper:revenue_7"], "entities": {"customer_id": [1]}}
        )
        assert unknown.status_code == 422
        assert unknown.json()["detail"] == "'shopper:revenue_7' is not a feature (did you mean 'shopper:revenue_7d'?)"
        uneven = http.post(
            "/features/online", json={"features": FEATURES, "entities": {"customer_id": [1], "other": [1, 2]}}
        )
        assert uneven.status_code == 422 and "same length" in uneven.json()["detail"]
        for key in ({"$ne": 1}, [1, 2]):  # an object is not a key, nor a query operator
            odd = http.post("/features/online", json={"features": FEATURES, "entities": {"customer_id": [1, key]}})
            assert odd.status_code == 422 and "is not an entity key" in odd.json()["detail"], odd.text
        bad_query = http.get("/metrics/query", params={"metrics": "revenu"})
        assert bad_query.status_code == 422 and "did you mean 'revenue'" in bad_query.json()["detail"]


def test_metrics_query_catalog_healthz_docs(store: Store) -> None:
    with Server(store) as http:
        reply = http.get(
            "/metrics/query",
            params={"metrics": "revenue", "group_by": "metric_time__day", "order": "-revenue", "limit": 2},
        )
        assert reply.status_code == 200
        expected = store.query("revenue", group_by="metric_time__day", order="-revenue", limit=2)
        assert reply.json()["columns"] == ["metric_time__day", "revenue"]
        assert [r[1] for r in reply.json()["rows"]] == pytest.approx(expected["revenue"].tolist())
        assert [e["name"] for e in http.get("/catalog", params={"search": "p90"}).json()] == ["shopper:p90_7d"]
        assert http.get("/healthz").json() == {"redis": "ok", "offline": "ok"}
        assert http.get("/docs").status_code == 200
        assert "/features/online" in http.get("/openapi.json").json()["paths"]


def test_prometheus_metrics(store: Store) -> None:
    with Server(store) as http:
        http.post("/features/online", json={"features": FEATURES, "entities": {"customer_id": [1]}})
        text = http.get("/metrics").text
    assert 'pantry_request_seconds_count{method="POST",path="/features/online",status="200"} 1.0' in text
    age = float(
        next(
            line.split()[-1]
            for line in text.splitlines()
            if line.startswith('pantry_last_pushed_stamp_age_seconds{view="shopper"}')
        )
    )
    assert abs(age - (time.time() - (time.mktime((TODAY - timedelta(days=1)).timetuple()) - time.timezone))) < 120
    assert "pantry_redis_errors_total 0.0" in text


def test_redis_down_gives_503(store: Store, redis_server: RedisServer) -> None:
    with Server(store) as http:
        redis_server.stop()
        reply = http.post("/features/online", json={"features": FEATURES, "entities": {"customer_id": [1]}})
        assert reply.status_code == 503 and "is unreachable after 3 attempts" in reply.json()["detail"]
        assert http.get("/healthz").status_code == 503
        text = http.get("/metrics").text
        errors = float(
            next(line.split()[-1] for line in text.splitlines() if line.startswith("pantry_redis_errors_total "))
        )
        assert errors >= 2  # the failed read, and the stamp-age lookup of this very request


def test_a_key_in_the_way_gives_500_that_names_it(store: Store, redis_server: RedisServer) -> None:
    redis.Redis.from_url(redis_server.url).set("pantry:shopper:777", "written by someone else")
    with Server(store) as http:
        reply = http.post("/features/online", json={"features": FEATURES, "entities": {"customer_id": [777]}})
        text = http.get("/metrics").text
    assert reply.status_code == 500
    assert "Redis refused the online read" in reply.json()["detail"]
    assert "HMGET pantry:shopper:777" in reply.json()["detail"] and "WRONGTYPE" in reply.json()["detail"]
    assert "pantry_redis_errors_total 1.0" in text


def test_api_keys_and_the_pii_scope(store: Store) -> None:
    with Server(store, api_keys="secret:pii+read,plain:read") as http:
        body = {"features": ["recent:revenue_2d"], "entities": {"customer_id": [1]}}
        assert http.post("/features/online", json=body).status_code == 401
        assert http.post("/features/online", json=body, headers={"X-API-Key": "nope"}).status_code == 401
        assert http.get("/catalog").status_code == 401
        refused = http.post("/features/online", json=body, headers={"Authorization": "Bearer plain"})
        assert refused.status_code == 403 and "revenue_2d" not in refused.json() and "pii" in refused.json()["detail"]
        allowed = http.post("/features/online", json=body, headers={"Authorization": "Bearer secret"})
        assert allowed.status_code == 200 and list(allowed.json()) == ["customer_id", "revenue_2d"]
        not_pii = http.post(
            "/features/online",
            json={"features": ["shopper:max_7d"], "entities": {"customer_id": [1]}},
            headers={"X-API-Key": "plain"},
        )
        assert not_pii.status_code == 200
        assert http.get("/healthz").status_code == 200


def test_a_large_online_read_answers_from_the_read_worker_as_the_python_api_does(store: Store) -> None:
    """More than 2,000 entity-features go to the read worker process: same answer, same errors."""
    keys = list(range(-10, 3_000))
    assert len(keys) * len(FEATURES) > 2_000
    with Server(store) as http:
        reply = http.post("/features/online", json={"features": FEATURES, "entities": {"customer_id": keys}})
        assert reply.status_code == 200, reply.text
        assert reply.json() == store.get_online_features(FEATURES, [{"customer_id": k} for k in keys])
        bad = http.post("/features/online", json={"features": FEATURES, "entities": {"customer_id": keys + [1.5]}})
        assert bad.status_code == 422 and "1.5 is not an entity key" in bad.json()["detail"]
