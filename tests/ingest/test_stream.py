"""The Redis Stream way in, on a real redis-server: consumer group, dead letters,
redelivery, a consumer claimed after it stopped, and one killed mid-stream (issue 14)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis

from pantry import Store
from pantry.ingest.stream import GROUP, StreamConsumer, dead_key, stream_key
from tests.ingest.conftest import totals as _totals

KEY = stream_key("events")


def _event(i: int, amount: str = "1") -> dict[str, str]:
    return {
        "event_id": str(i),
        "customer_id": "7",
        "ts": f"2026-11-30 15:{i // 60 % 60:02d}:{i % 60:02d}",
        "amount": amount,
    }


def test_entries_become_rows_bad_ones_go_dead_and_all_are_acknowledged(store: Store, redis_server) -> None:
    client = redis.Redis.from_url(redis_server.url)
    client.xadd(KEY, _event(100, "2.5"))
    client.xadd(KEY, _event(101, "not money"))
    client.xadd(KEY, _event(100, "2.5"))  # the same event again
    client.xadd(KEY, {"event_id": "102", "customer_id": "7", "ts": "2026-11-30 15:00:00", "amount": "1", "x": "1"})
    consumer = StreamConsumer(store, ["events"], client, name="c1", block_ms=50)
    counts = consumer.run(idle_rounds=3)
    assert (counts.acked, counts.refused) == (4, 2)
    assert _totals(store) == (3, 12.5 + 2.5)
    dead = client.xrange(dead_key("events"))
    reasons = {d[1][b"event_id"].decode(): d[1][b"__reason"].decode() for d in dead}
    assert reasons["101"] == "'not money' is not a DOUBLE (column amount)"
    assert reasons["102"].startswith("unknown column 'x'")
    assert client.xpending(KEY, GROUP)["pending"] == 0


def test_a_plain_batch_read_as_columns_keeps_each_entrys_verdict(store: Store, redis_server) -> None:
    """Entries with the same fields are read as columns at once (the drain's fast path):
    the bad value and the repeated event are still told apart entry by entry, and a dead
    letter keeps the entry's own bytes."""
    client = redis.Redis.from_url(redis_server.url)
    client.xadd(KEY, _event(300, "2.5"))
    client.xadd(KEY, _event(301, "1e999"))  # not a finite DOUBLE
    client.xadd(KEY, _event(302, "0.25"))
    client.xadd(KEY, _event(300, "2.5"))  # the same event again
    client.xadd(KEY, _event(303, "caf\u00e9"))  # UTF-8 text, not a number
    consumer = StreamConsumer(store, ["events"], client, name="cols", block_ms=50)
    counts = consumer.run(idle_rounds=3)
    assert (counts.acked, counts.refused) == (5, 2)
    assert _totals(store) == (2 + 2, 5.0 + 7.5 + 2.5 + 0.25)  # the declared two, then 300 and 302
    dead = {d[1][b"event_id"]: d[1] for _, d in enumerate(client.xrange(dead_key("events")))}
    assert (
        dead[b"301"][b"__reason"]
        == b"'1e999' is not a finite number (column amount; PANTRY_ACCEPT_NONFINITE=1 allows it)"
    )
    assert dead[b"303"][b"amount"] == "caf\u00e9".encode()
    assert dead[b"303"][b"__reason"].decode() == "'caf\u00e9' is not a DOUBLE (column amount)"


def test_entries_are_read_as_columns_only_when_every_one_is_plain() -> None:
    from pantry.ingest.stream import _as_table

    plain = [(b"1-0", {b"a": b"x", b"b": b"1"}), (b"2-0", {b"a": b"\xc3\xa9", b"b": b"2"})]
    table = _as_table(plain)
    assert table is not None and table.to_pydict() == {"a": ["x", "\u00e9"], "b": ["1", "2"]}
    assert _as_table([plain[0], (b"2-0", {b"a": b"y"})]) is None  # another set of fields
    assert _as_table([plain[0], (b"2-0", {b"b": b"2", b"a": b"y"})]) is None  # another order
    assert _as_table([plain[0], (b"2-0", {b"a": b"\xff", b"b": b"2"})]) is None  # not UTF-8
    assert _as_table([(b"1-0", {b"a": b"x", b"A": b"y"})]) is None  # one name twice, ignoring case
    assert _as_table([(b"1-0", {b"a": b"x" * 70_000})]) is None  # past PANTRY_MAX_FIELD_BYTES
    assert _as_table([(b"1-0", {"a": "x"})]) is None  # text already decoded
    assert _as_table([]) is None


def test_a_stopped_consumers_pending_entries_are_claimed_and_count_once(store: Store, redis_server) -> None:
    client = redis.Redis.from_url(redis_server.url)
    for i in range(200, 210):
        client.xadd(KEY, _event(i))
    StreamConsumer(store, ["events"], client, name="gone", block_ms=50)  # makes the group
    # "gone" reads five entries and dies before it acknowledges them
    client.xreadgroup(GROUP, "gone", {KEY: ">"}, count=5)
    assert client.xpending(KEY, GROUP)["pending"] == 5
    # and one entry was even written before the crash: redelivered, it must count once
    store.push("events", [_event(200)])
    taker = StreamConsumer(store, ["events"], client, name="taker", block_ms=50, claim_idle_ms=0)
    counts = taker.run(idle_rounds=3)
    assert counts.claimed == 5 and counts.acked == 10
    assert client.xpending(KEY, GROUP)["pending"] == 0
    assert _totals(store) == (12, 12.5 + 10)


@pytest.mark.end_to_end
def test_a_consumer_killed_mid_stream_loses_nothing_and_doubles_nothing(
    store: Store, redis_server, tmp_path: Path
) -> None:
    client = redis.Redis.from_url(redis_server.url)
    total = 3000
    pipe = client.pipeline()
    for i in range(1000, 1000 + total):
        pipe.xadd(KEY, _event(i, "0.5"))
    pipe.execute()
    env = {
        **os.environ,
        "PANTRY_DEFS": str(store.defs),
        "PANTRY_HOME": str(store.home),
        "PANTRY_REDIS_URL": redis_server.url,
    }
    pantry = str(Path(sys.executable).parent / "pantry")
    args = [pantry, "ingest", "events", "--batch", "100", "--name", "worker", "--idle-exit", "2"]
    first = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 60
    # Kill at the first published file, polled every 5 ms: on a fast host a 50 ms poll
    # let the consumer finish all 30 batches first, and then no work was left to recover.
    while time.time() < deadline and not any((store.home / "ingest" / "events").glob("*.parquet")):
        time.sleep(0.005)
    first.send_signal(signal.SIGKILL)  # mid-stream: between any two steps
    first.wait()
    assert client.xinfo_groups(KEY)[0]["lag"] > 0 or client.xpending(KEY, GROUP)["pending"] > 0  # work was left
    again = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stdout + again.stderr
    assert client.xpending(KEY, GROUP)["pending"] == 0
    assert _totals(store) == (2 + total, 12.5 + 0.5 * total)


def test_pantry_ingest_with_redis_down_is_one_clear_error(store: Store, tmp_path: Path) -> None:
    from tests.conftest import free_port

    env = {
        "PANTRY_DEFS": str(store.defs),
        "PANTRY_HOME": str(store.home),
        "PANTRY_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",
        "PATH": "/usr/bin:/bin",
    }
    pantry = str(Path(sys.executable).parent / "pantry")
    done = subprocess.run([pantry, "ingest", "events"], env=env, capture_output=True, text=True, timeout=120)
    said = done.stdout + done.stderr
    assert done.returncode == 1 and "Traceback" not in said, said
    assert "is unreachable after" in said and "PANTRY_REDIS_URL" in said
