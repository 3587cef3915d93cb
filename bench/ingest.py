"""Stream ingestion: Pantry's consumer against the raw Redis limit, in the same run.

Workloads, on a redis-server started here on a free port:
1. Sustained rate: N events XADDed to ``pantry:ingest:events`` beforehand, then drained by
   ``StreamConsumer`` (checks, a durable Parquet batch per read, dead letters, XACK), against
   the raw limit: XREADGROUP in the same batches plus a pipelined HSET of each event and
   XACK (no checks, nothing durable on disk).
2. Event-to-durable latency at a steady 1,000 events/s: a producer thread XADDs, the consumer
   runs beside it; each entry's latency is the time its batch became durable (queryable)
   minus its XADD time (the stream ID's milliseconds). p50 and p99.

Not measured yet: event-to-served latency and streaming-view reads (streaming feature
views are not built), and Feast's push as the peer (``make bench-features`` builds its venv).

Run: ``.venv/bin/python bench/ingest.py [N]``.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pandas as pd
import redis

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pantry import Store  # noqa: E402
from pantry.ingest.stream import GROUP, StreamConsumer, stream_key  # noqa: E402
from tests.conftest import free_port, write_defs  # noqa: E402
from tests.ingest.conftest import EVENTS_YAML  # noqa: E402

KEY = stream_key("events")


def event(i: int) -> dict[str, str]:
    return {
        "event_id": str(i),
        "customer_id": str(i % 97),
        "ts": f"2026-11-30 10:{i // 60 % 60:02d}:{i % 60:02d}",
        "amount": "1.5",
    }


def fill(client: redis.Redis, key: str, lo: int, hi: int) -> None:
    pipe = client.pipeline(transaction=False)
    for i in range(lo, hi):
        pipe.xadd(key, event(i))
        if (i - lo) % 5000 == 4999:
            pipe.execute()
    pipe.execute()


def raw_limit(client: redis.Redis, n: int, batch: int) -> float:
    key = "raw:ingest:events"
    fill(client, key, 0, n)
    client.xgroup_create(key, GROUP, id="0")
    started = time.perf_counter()
    done = 0
    while done < n:
        reply = client.xreadgroup(GROUP, "raw", {key: ">"}, count=batch)
        entries = reply[0][1]
        pipe = client.pipeline(transaction=False)
        for _, fields in entries:
            pipe.hset(f"raw:event:{fields[b'event_id'].decode()}", mapping=fields)
        pipe.xack(key, GROUP, *[e[0] for e in entries])
        pipe.execute()
        done += len(entries)
    return time.perf_counter() - started


def pantry_rate(store: Store, client: redis.Redis, n: int, batch: int) -> float:
    fill(client, KEY, 0, n)
    consumer = StreamConsumer(store, ["events"], client, name="bench", batch=batch, block_ms=10)
    started = time.perf_counter()
    while consumer.counts.acked < n:
        consumer.step()
    return time.perf_counter() - started


def latency(store: Store, client: redis.Redis, rate: int, seconds: int, batch: int) -> list[float]:
    consumer = StreamConsumer(store, ["events"], client, name="latency", batch=batch, block_ms=5)
    waits: list[float] = []
    handle = consumer._handle

    def timed(model, entries):  # noqa: ANN001, ANN202
        handle(model, entries)
        now_ms = time.time() * 1000
        waits.extend(now_ms - int(e[0].split(b"-")[0]) for e in entries)

    consumer._handle = timed  # type: ignore[method-assign]
    stop = threading.Event()
    base = 10_000_000

    def produce() -> None:
        i, started = 0, time.perf_counter()
        while i < rate * seconds:
            due = started + i / rate
            pause = due - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
            client.xadd(KEY, event(base + i))
            i += 1
        stop.set()

    producer = threading.Thread(target=produce)
    producer.start()
    while not stop.is_set() or consumer.step():
        consumer.step()
    producer.join()
    return waits


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 50_000
    batch = 1000
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        port = free_port()
        server = subprocess.Popen(
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
        )
        try:
            client = redis.Redis(port=port)
            for _ in range(100):
                try:
                    client.ping()
                    break
                except redis.ConnectionError:
                    time.sleep(0.05)
            defs = write_defs(root, {"events.yaml": EVENTS_YAML})
            (defs / "data").mkdir()
            pd.DataFrame(
                {"event_id": [1], "customer_id": [1], "ts": pd.to_datetime(["2026-11-30"]), "amount": [1.0]}
            ).to_parquet(defs / "data" / "events.parquet", index=False)
            store = Store(defs=defs, home=root / "home")
            raw = raw_limit(client, n, batch)
            ours = pantry_rate(store, client, n, batch)
            got = store.query("events")
            assert int(got["events"].iloc[0]) == n, got  # ids 0..n-1; the declared row is id 1
            client.delete(KEY)
            waits = latency(store, client, rate=1000, seconds=20, batch=batch)
            waits.sort()
            p50, p99 = statistics.median(waits), waits[int(len(waits) * 0.99) - 1]
        finally:
            server.terminate()
    print("| workload | Pantry | raw limit | ratio |\n|---|---:|---:|---:|")
    print(
        f"| drain {n:,} stream events (batches of {batch}) | {n / ours:,.0f} events/s | {n / raw:,.0f} events/s | {raw / ours:.2f} |"
    )
    print(f"| event to durable at 1,000 events/s for 20 s, p50 / p99 | {p50:.0f} / {p99:.0f} ms | - | - |")


if __name__ == "__main__":
    main()
