"""The online store on a real redis-server: parity with training, newer-wins, nulls, expiry."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
import redis

from pantry import PantryError, Store
from pantry.compile.view_plan import stamp_of
from tests.conftest import RedisServer, cli_run, free_port, offline_env
from tests.features.oracle import Row, expected
from tests.features.test_historical_oracle import FEATURES, SPECS, TTL, build, generated_rows, materialize_days

TODAY = datetime.now(UTC).date()
DAY0 = TODAY - timedelta(days=13)  # recent enough that a 5-day ttl has not expired


def recent_rows() -> list[Row]:
    """The oracle's data moved to start 13 days ago, so that ttl has not expired yet."""
    shift = datetime(DAY0.year, DAY0.month, DAY0.day) - datetime(2024, 1, 1)
    return [Row(r.key, r.at + shift, r.amount, r.status, r.position) for r in generated_rows()]


@pytest.fixture(scope="module", autouse=True)
def each_offline_store(offline_uri: str | None) -> str | None:
    """Every test here runs against the local DuckDB file and against S3."""
    return offline_uri


@pytest.fixture
def store(tmp_path: Path, redis_server: RedisServer) -> Store:
    built = build(tmp_path, recent_rows())
    materialize_days(built, [(DAY0, TODAY - timedelta(days=2))])
    return Store(defs=built.defs, home=built.home, redis_url=redis_server.url, offline_uri=built.offline_uri)


def _historical(store: Store, day: date, keys: list[int]) -> pd.DataFrame:
    stamp = pd.Timestamp(day + timedelta(days=1))
    return store.get_historical_features(
        pd.DataFrame({"customer_id": keys, "event_timestamp": [stamp] * len(keys)}), FEATURES
    )


def _same(a: object, b: object) -> bool:
    if b is None or b is pd.NA or (isinstance(b, float) and b != b):
        return a is None
    if isinstance(b, str):
        return a == b
    return a == pytest.approx(float(b)) and type(a) in (int, float)


def test_parity_with_training_after_push(store: Store) -> None:
    day = TODAY - timedelta(days=3)
    seen: list[tuple[int, int]] = []
    written = store.push_online("shopper", day, progress=lambda done, total: seen.append((done, total)))
    keys = list(range(1, 11))
    online = store.get_online_features(FEATURES, [{"customer_id": k} for k in keys])
    offline = _historical(store, day, keys)
    assert online["customer_id"] == keys
    present = offline["revenue_7d"].notna().sum()
    assert written == present > 0
    assert seen == [(written, written)]  # one batch: all of the partition's entities at once
    for name in [f.split(":")[1] for f in FEATURES]:
        for i in range(len(keys)):
            assert _same(online[name][i], offline[name].iloc[i]), (
                name,
                keys[i],
                online[name][i],
                offline[name].iloc[i],
            )
    counts = [v for v in online["amounts_3d"] if v is not None]
    assert counts and all(type(v) is int for v in counts), "a count comes back as an int"
    assert all(type(v) is str for v in online["status_last"] if v is not None)


def test_layout_stamp_and_expiry(store: Store, redis_server: RedisServer) -> None:
    day = TODAY - timedelta(days=3)
    store.push_online("shopper", day)
    client = redis.Redis.from_url(redis_server.url)
    keys = sorted(k.decode() for k in client.keys("pantry:shopper:*"))
    assert keys and all(k.split(":")[2].isdigit() for k in keys)
    stamp = int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()) + 86400
    fields = client.hgetall(keys[0])
    assert int(fields[b"__stamp"]) == stamp
    assert set(fields) == {b"__stamp", *[f.split(":")[1].encode() for f in FEATURES]}
    expected_ttl = stamp + 5 * 86400 - time.time()  # ttl: 5 days
    assert abs(client.ttl(keys[0]) - expected_ttl) < 5


def test_older_partition_never_overwrites_a_newer_stamp(store: Store, redis_server: RedisServer) -> None:
    newer, older = TODAY - timedelta(days=2), TODAY - timedelta(days=6)
    store.push_online("shopper", newer)
    before = store.get_online_features(FEATURES, [{"customer_id": k} for k in range(1, 9)])
    store.push_online("shopper", older)
    after = store.get_online_features(FEATURES, [{"customer_id": k} for k in range(1, 9)])
    assert after == before
    # and pushing the same partition again changes nothing
    store.push_online("shopper", newer)
    assert store.get_online_features(FEATURES, [{"customer_id": k} for k in range(1, 9)]) == before


def test_entity_absent_now_reads_null(store: Store) -> None:
    # customer 7 only buys in the first four days: present at stamp DAY0 + 10, absent from DAY0 + 11
    early, late = DAY0 + timedelta(days=9), DAY0 + timedelta(days=10)
    assert store.get_historical_features(
        pd.DataFrame(
            {
                "customer_id": [7, 7],
                "event_timestamp": pd.to_datetime([early + timedelta(days=1), late + timedelta(days=1)]),
            }
        ),
        ["shopper:revenue_7d"],
    )["revenue_7d"].isna().tolist() == [False, True]
    store.push_online("shopper", early)
    assert store.get_online_features(["shopper:revenue_7d"], [{"customer_id": 7}])["revenue_7d"] != [None]
    store.push_online("shopper", late)
    assert store.get_online_features(["shopper:revenue_7d", "shopper:status_last"], [{"customer_id": 7}]) == {
        "customer_id": [7],
        "revenue_7d": [None],
        "status_last": [None],
    }


def test_unknown_entities_get_nulls_and_views_mix(store: Store) -> None:
    store.push_online("shopper", TODAY - timedelta(days=3))
    store.push_online("recent", TODAY - timedelta(days=3))
    got = store.get_online_features(
        ["recent:revenue_2d", "shopper:max_7d"], [{"customer_id": 12345}, {"customer_id": 1}]
    )
    assert list(got) == ["customer_id", "revenue_2d", "max_7d"]
    assert got["revenue_2d"][0] is None and got["max_7d"][0] is None


def test_latest_rebuilds_redis_after_it_lost_its_data(
    store: Store,
    redis_server: RedisServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:
    store.push_online("shopper", store.latest_partition("shopper"))
    before = store.get_online_features(FEATURES, [{"customer_id": k} for k in range(1, 9)])
    assert any(v is not None for v in before["revenue_7d"])
    redis_server.stop()
    redis_server.start()  # same port, empty
    assert store.get_online_features(["shopper:revenue_7d"], [{"customer_id": 1}])["revenue_7d"] == [None]
    env = {
        "PANTRY_DEFS": str(store.defs),
        "PANTRY_HOME": str(store.home),
        "PANTRY_REDIS_URL": redis_server.url,
        "PATH": "/usr/bin:/bin",
        **offline_env(store.offline_uri),
    }
    done = cli_run(monkeypatch, capsys, ["online", "push", "shopper", "--latest"], env)
    assert done.returncode == 0, done.stderr
    assert "keys written" in done.stdout
    assert store.get_online_features(FEATURES, [{"customer_id": k} for k in range(1, 9)]) == before
    shown = cli_run(
        monkeypatch,
        capsys,
        ["features", "online", "--entity", "customer_id=1", "--features", "shopper:status_last"],
        {**env, "COLUMNS": "200"},
    )
    assert shown.returncode == 0 and str(before["status_last"][0]) in shown.stdout

    def online(*entities: str) -> subprocess.CompletedProcess:
        args = [a for e in entities for a in ("--entity", e)]
        return cli_run(
            monkeypatch,
            capsys,
            ["features", "online", *args, "--features", "shopper:status_last"],
            {**env, "COLUMNS": "200"},
        )

    # the entity's name works as well as its key column, one row per --entity
    by_name = online("customer=1", "customer_id=2")
    assert by_name.returncode == 0, by_name.stderr
    lines = [line for line in by_name.stdout.splitlines() if "│" in line]
    assert [line.split("│")[2].strip() for line in lines] == [str(v) for v in before["status_last"][:2]]
    # a wrong name answers in CLI terms, not Python's
    wrong = online("shopper_id=1")
    assert wrong.returncode == 1 and "Traceback" not in wrong.stderr
    assert "keyed by 'customer' (column 'customer_id')" in wrong.stderr and "--entity customer=1" in wrong.stderr
    assert "entity_rows" not in wrong.stderr


def test_unreachable_redis_is_a_clear_error(store: Store) -> None:
    dead = Store(
        defs=store.defs, home=store.home, redis_url=f"redis://127.0.0.1:{free_port()}/0", offline_uri=store.offline_uri
    )
    _ = dead.definitions, dead._plans(["shopper:revenue_7d"])  # time the Redis calls alone

    def bounded(call: Callable[[], object]) -> None:
        started = time.monotonic()
        with pytest.raises(PantryError, match=r"Redis at redis://127\.0\.0\.1:\d+/0 is unreachable after 3 attempts"):
            call()
        # 3 attempts, 2 s socket timeouts and backoff capped at 0.5 s: seconds, never a hang
        assert time.monotonic() - started < 20

    bounded(lambda: dead.get_online_features(["shopper:revenue_7d"], [{"customer_id": 1}]))
    bounded(lambda: dead.push_online("shopper", TODAY - timedelta(days=3)))


def test_push_of_an_unmaterialized_partition_is_refused(store: Store) -> None:
    with pytest.raises(PantryError, match=f"partition {TODAY} of feature view 'shopper' is not materialized"):
        store.push_online("shopper", TODAY)


def test_a_key_in_the_way_is_a_clear_error_and_a_rerun_completes(store: Store, redis_server: RedisServer) -> None:
    client = redis.Redis.from_url(redis_server.url)
    day = TODAY - timedelta(days=3)
    keys = store.get_historical_features(None, ["shopper:revenue_7d"], start_time=stamp_of(day), end_time=stamp_of(day))
    stray = f"pantry:shopper:{keys['customer_id'].iloc[0]}"
    client.set(stray, "written by someone else")
    with pytest.raises(
        PantryError, match=r"Redis refused part of the push of feature view 'shopper'.*WRONGTYPE"
    ) as err:
        store.push_online("shopper", day)
    assert "--pattern 'pantry:shopper:*'" in str(err.value)
    assert client.hget("pantry:__meta__:shopper", "stamp") is None  # not recorded as pushed
    client.delete(stray)
    assert store.push_online("shopper", day) == len(keys)


def test_the_demo_serves_what_training_reads(store: Store) -> None:
    from rich.console import Console

    from pantry.demo.run import serve_online

    console = Console(record=True, width=200)
    served = serve_online(store, console)["shopper"]
    text = console.export_text()
    latest = TODAY - timedelta(days=2)
    assert f"pushed shopper partition {latest}: " in text
    assert "Served online (shopper" in text
    assert text.count(" yes ") >= 3 and " NO " not in text
    # the served values, against the brute-force oracle over the raw rows
    stamp = datetime(latest.year, latest.month, latest.day) + timedelta(days=1)
    days = [DAY0 + timedelta(days=i) for i in range((latest - DAY0).days + 1)]
    assert len(served) >= 3
    for i, key in enumerate(served["customer_id"]):
        want = expected(recent_rows(), days, TTL, SPECS, int(key), stamp)
        for spec in SPECS:
            got, wanted = served[spec.name].iloc[i], want[spec.name]
            if wanted is None:
                assert pd.isna(got), (key, spec.name, got)
            else:
                assert got == (wanted if isinstance(wanted, str) else pytest.approx(wanted)), (key, spec.name)


def test_a_key_in_the_way_of_a_read_is_a_clear_error(store: Store, redis_server: RedisServer) -> None:
    redis.Redis.from_url(redis_server.url).set("pantry:shopper:3", "written by someone else")
    with pytest.raises(
        PantryError, match=r"Redis refused the online read: .*HMGET pantry:shopper:3 .*WRONGTYPE"
    ) as err:
        store.get_online_features(["shopper:revenue_7d"], [{"customer_id": 3}])
    assert "--pattern 'pantry:shopper:*'" in str(err.value)
