"""Stream ingestion and streaming views: Pantry against the raw Redis limit and Feast's push.

Workloads, on a redis-server started here on a free port, with a streaming view (1-second
tiles) and a daily view over the pushed model, both online:
1. Sustained rate: N events XADDed to ``pantry:ingest:events`` beforehand, then drained by
   ``StreamConsumer`` (checks, a durable Parquet batch per read, the streaming view's tiles
   in Redis, dead letters, XACK), against the raw limit: XREADGROUP in the same batches plus
   a pipelined HSET of each event and XACK (no checks, nothing durable, no windows).
   Feast's peer: ``store.push`` of the same events, in the same batches, to its Redis online
   store (it overwrites each entity's latest row; no windows, nothing durable offline).
2. Event to durable and event to served, at a steady 1,000 events/s: a producer thread
   XADDs, the consumer runs beside it. Durable: the time an entry's batch became queryable
   minus its XADD time. Served: one event in 50 goes to a customer never seen before, and a
   reader polls the online store until that customer's count reads 1. The events are
   stamped in the last closed tile, so the tile boundary adds no wait (an event stamped
   "now" waits up to one tile more, by definition).
3. Online reads of 100 customers x 2 features, p50 and p99: the streaming view (one read
   script call combines the 100 customers' tiles in Redis and returns 2 values each)
   against the raw read of the same data (a pipelined HGETALL of the same hashes, which
   ships every tile to the client), and the daily view against its raw HMGET. Feast's
   online read of its pushed rows (100 entities x 2 features) beside them. The streaming
   read is measured three ways: as served (repeated reads return the answer the first read
   kept), one second later each time (the kept answer holds until a tile enters or leaves a
   window), and cold (the kept answers dropped before each read, untimed: the script
   combines every tile of the window).

Run: ``.venv/bin/python bench/ingest.py [N]``; the Feast row needs ``make bench-features``
(its venv), else it says so.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import redis

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pantry import Store  # noqa: E402
from pantry.compile.view_plan import plan_view  # noqa: E402
from pantry.features.tiles import materialize  # noqa: E402
from pantry.ingest.stream import GROUP, StreamConsumer, stream_key  # noqa: E402
from pantry.offline.sources import connect  # noqa: E402
from pantry.online.layout import entity_key  # noqa: E402
from tests.conftest import free_port, write_defs  # noqa: E402

KEY = stream_key("events")
CUSTOMERS = 1000
FEAST_PY = ROOT / "bench" / ".feast-venv" / "bin" / "python"
BENCH_YAML = """
semantic_models:
  - name: events
    source: data/events.parquet
    ingest: push
    defaults: {agg_time_dimension: ts}
    entities:
      - {name: event, type: primary, expr: event_id}
      - {name: customer, type: foreign, expr: customer_id}
    dimensions:
      - {name: ts, type: time, type_params: {time_granularity: second}}
    measures:
      - {name: event_count, agg: count, expr: event_id}
      - {name: amount, agg: sum, expr: amount}
metrics:
  - {name: events, type: simple, type_params: {measure: event_count}}
feature_views:
  - name: live
    entity: customer
    online: true
    stream: {tile: 1 second}
    features:
      - {name: events_1m, measure: events.event_count, window: 1 minute}
      - {name: spend_1h, measure: events.amount, window: 1 hour}
  - name: daily
    entity: customer
    online: true
    partitions: {start: 2026-01-01}
    features:
      - {name: events_7d, measure: events.event_count, window: 7 days}
      - {name: spend_7d, measure: events.amount, window: 7 days}
"""


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered) * 1000, ordered[max(0, int(len(ordered) * 0.99) - 1)] * 1000


def event(i: int, at: datetime, customer: int | None = None) -> dict[str, str]:
    return {
        "event_id": str(i),
        "customer_id": str(i % CUSTOMERS if customer is None else customer),
        "ts": at.isoformat(sep=" ", timespec="milliseconds"),
        "amount": str((i % 40) / 4 + 0.1),
    }


def spread(n: int) -> list[datetime]:
    """N moments over the last hour, oldest first: every event lands in the windows read."""
    now = datetime.now(UTC).replace(tzinfo=None)
    return [now - timedelta(seconds=3600 * (n - i) / n) for i in range(n)]


def fill(client: redis.Redis, key: str, events: list[dict[str, str]]) -> None:
    pipe = client.pipeline(transaction=False)
    for i, fields in enumerate(events):
        pipe.xadd(key, fields)
        if i % 5000 == 4999:
            pipe.execute()
    pipe.execute()


def raw_limit(client: redis.Redis, events: list[dict[str, str]], batch: int) -> float:
    key = "raw:ingest:events"
    fill(client, key, events)
    client.xgroup_create(key, GROUP, id="0")
    started = time.perf_counter()
    done = 0
    while done < len(events):
        reply = client.xreadgroup(GROUP, "raw", {key: ">"}, count=batch)
        entries = reply[0][1]
        pipe = client.pipeline(transaction=False)
        for _, fields in entries:
            pipe.hset(f"raw:event:{fields[b'event_id'].decode()}", mapping=fields)
        pipe.xack(key, GROUP, *[e[0] for e in entries])
        pipe.execute()
        done += len(entries)
    return time.perf_counter() - started


def pantry_rate(store: Store, client: redis.Redis, events: list[dict[str, str]], batch: int) -> float:
    fill(client, KEY, events)
    consumer = StreamConsumer(store, ["events"], client, name="bench", batch=batch, block_ms=10)
    started = time.perf_counter()
    while consumer.counts.acked < len(events):
        consumer.step()
    return time.perf_counter() - started


def latencies(store: Store, client: redis.Redis, rate: int, seconds: int, batch: int) -> tuple[list, list]:
    """(event to durable, event to served) samples at a steady ``rate`` events/s."""
    consumer = StreamConsumer(store, ["events"], client, name="latency", batch=batch, block_ms=5)
    durable: list[float] = []
    served: list[float] = []
    handle = consumer._handle

    def timed(model, entries, redelivered=False):  # noqa: ANN001, ANN202
        handle(model, entries, redelivered=redelivered)
        now_ms = time.time() * 1000
        durable.extend((now_ms - int(e[0].split(b"-")[0])) / 1000 for e in entries)

    consumer._handle = timed  # type: ignore[method-assign]
    stop = threading.Event()
    probes: dict[int, float] = {}  # probe customer -> its XADD time
    lock = threading.Lock()
    base, probe_base = 50_000_000, 9_000_000

    def produce() -> None:
        i, started = 0, time.perf_counter()
        while i < rate * seconds:
            due = started + i / rate
            pause = due - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
            # stamped in the last closed second: served as soon as it is in Redis
            at = datetime.now(UTC).replace(tzinfo=None, microsecond=0) - timedelta(milliseconds=500)
            customer = probe_base + i if i % 50 == 0 else None
            sent = time.time()
            client.xadd(KEY, event(base + i, at, customer))
            if customer is not None:
                with lock:
                    probes[customer] = sent
            i += 1
        stop.set()

    def watch() -> None:
        while not (stop.is_set() and not probes):
            with lock:
                waiting = list(probes)
            if waiting:
                got = store.get_online_features(["live:events_1m"], [{"customer_id": c} for c in waiting])
                now = time.time()
                for customer, count in zip(waiting, got["events_1m"]):
                    if count == 1:
                        with lock:
                            served.append(now - probes.pop(customer))
            time.sleep(0.002)

    producer, watcher = threading.Thread(target=produce), threading.Thread(target=watch)
    producer.start()
    watcher.start()
    while not stop.is_set() or consumer.step():
        consumer.step()
    producer.join()
    watcher.join(timeout=30)
    return durable, served


def paired_latency(ours, raw, rounds: int = 500) -> tuple[tuple[float, float], tuple[float, float]]:  # noqa: ANN001
    """p50/p99 of both reads, alternating call by call, so a busy moment hits both sides."""
    samples: tuple[list[float], list[float]] = ([], [])
    for _ in range(rounds):
        for read, kept in ((ours, samples[0]), (raw, samples[1])):
            t = time.perf_counter()
            read()
            kept.append(time.perf_counter() - t)
    return percentiles(samples[0]), percentiles(samples[1])


def reads(store: Store, client: redis.Redis) -> dict[str, tuple[float, float]]:
    rng = np.random.default_rng(3)
    customers = [int(c) for c in rng.integers(0, CUSTOMERS, 100)]
    rows = [{"customer_id": c} for c in customers]
    live_keys = [entity_key("live", c) for c in customers]
    daily_keys = [entity_key("daily", c) for c in customers]

    def raw_hgetall() -> None:
        pipe = client.pipeline(transaction=False)
        for key in live_keys:
            pipe.hgetall(key)
        pipe.execute()

    def raw_hmget() -> None:
        pipe = client.pipeline(transaction=False)
        for key in daily_keys:
            pipe.hmget(key, ["events_7d", "spend_7d"])
        pipe.execute()

    out: dict[str, tuple[float, float]] = {}
    out["streaming"], out["streaming raw"] = paired_latency(
        lambda: store.get_online_features(["live:events_1m", "live:spend_1h"], rows), raw_hgetall
    )
    out["daily"], out["daily raw"] = paired_latency(
        lambda: store.get_online_features(["daily:events_7d", "daily:spend_7d"], rows), raw_hmget
    )
    # reads at a new stamp each time (a second later): served from the kept answer until a
    # tile enters or leaves one of the customer's windows
    ahead = iter(range(1, 10_000))
    start = pd.Timestamp(datetime.now(UTC)) + pd.Timedelta(seconds=5)
    out["moving"], out["moving raw"] = paired_latency(
        lambda: store.get_online_features(
            ["live:events_1m", "live:spend_1h"], rows, at=start + pd.Timedelta(seconds=next(ahead))
        ),
        raw_hgetall,
        rounds=200,
    )

    def forget() -> None:  # untimed: drop every kept answer, so the next read combines all tiles
        pipe = client.pipeline(transaction=False)
        for key in live_keys:
            pipe.hdel(key, "__at", "__until", "__memo")
        pipe.execute()

    cold: tuple[list[float], list[float]] = ([], [])
    for _ in range(200):
        forget()
        for read, kept in (
            (lambda: store.get_online_features(["live:events_1m", "live:spend_1h"], rows), cold[0]),
            (raw_hgetall, cold[1]),
        ):
            t = time.perf_counter()
            read()
            kept.append(time.perf_counter() - t)
    out["cold"], out["cold raw"] = percentiles(cold[0]), percentiles(cold[1])
    sample = store.get_online_features(["live:events_1m", "live:spend_1h", "daily:events_7d"], rows[:3])
    assert all(v is not None for v in sample["spend_1h"]) and all(v is not None for v in sample["events_7d"]), sample
    return out


def feast_peer(events: list[dict[str, str]], port: int, batch: int, root: Path) -> dict | None:
    if not FEAST_PY.exists():
        return None
    frame = pd.DataFrame(events)
    frame = frame.astype({"event_id": "int64", "customer_id": "int64", "amount": "float64"})
    frame["ts"] = pd.to_datetime(frame["ts"])
    path = root / "feast_events.parquet"
    frame.to_parquet(path, index=False)
    done = subprocess.run(
        [str(FEAST_PY), str(ROOT / "bench" / "feast_push_peer.py"), str(path), f"127.0.0.1:{port}", str(batch)],
        capture_output=True,
        text=True,
        timeout=3600,
    )
    if done.returncode != 0:
        print(done.stderr[-3000:], file=sys.stderr)
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])


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
            defs = write_defs(root, {"events.yaml": BENCH_YAML})
            (defs / "data").mkdir()
            yesterday = datetime.now(UTC).replace(tzinfo=None) - timedelta(days=1)
            pd.DataFrame(
                {
                    "event_id": np.arange(-CUSTOMERS * 5, 0),
                    "customer_id": np.arange(CUSTOMERS * 5) % CUSTOMERS,
                    "ts": [yesterday.replace(hour=12) + timedelta(seconds=i) for i in range(CUSTOMERS * 5)],
                    "amount": 1.0,
                }
            ).to_parquet(defs / "data" / "events.parquet", index=False)
            store = Store(defs=defs, home=root / "home", redis_url=f"redis://127.0.0.1:{port}/0")
            events = [event(i, at) for i, at in enumerate(spread(n))]
            raw = raw_limit(client, events, batch)
            ours = pantry_rate(store, client, events, batch)
            got = store.query("events")
            assert int(got["events"].iloc[0]) == n + CUSTOMERS * 5, got
            client.delete(KEY)
            durable, served = latencies(store, client, rate=1000, seconds=20, batch=batch)
            plan = plan_view(store.definitions, store.definitions.views["daily"])
            source = connect(store.definitions, store.offline, models=plan.models)
            materialize(source, store.offline, plan, yesterday.date(), yesterday.date())
            source.close()
            store.push_online("daily", yesterday.date())
            read = reads(store, client)
            client.flushall()
            feast = feast_peer(events, port, batch, root)
        finally:
            server.terminate()
    d50, d99 = percentiles(durable)
    s50, s99 = percentiles(served)
    print("| workload | Pantry | peer | ratio |\n|---|---:|---:|---:|")
    print(
        f"| drain {n:,} stream events into a streaming view (batches of {batch}) against the raw limit | "
        f"{n / ours:,.0f} events/s | {n / raw:,.0f} events/s | {raw / ours:.2f} |"
    )
    if feast is not None:
        print(
            f"| the same events, Feast 0.67 store.push (ONLINE, batches of {batch}) | {n / ours:,.0f} events/s | "
            f"{feast['events_per_s']:,.0f} events/s | {feast['events_per_s'] and (n / ours) / feast['events_per_s']:.2f} |"
        )
    else:
        print("| Feast's push | - | not run: `make bench-features` builds its venv | - |")
    print(f"| event to durable at 1,000 events/s for 20 s, p50 / p99 | {d50:.0f} / {d99:.0f} ms | - | - |")
    print(
        f"| event to served at 1,000 events/s for 20 s ({len(served)} probes), p50 / p99 | "
        f"{s50:.0f} / {s99:.0f} ms | target p99 < 1,000 ms | - |"
    )
    for view, raw_name, label in (
        ("streaming", "streaming raw", "streaming view online read"),
        ("moving", "moving raw", "streaming view, each read a second later than the last"),
        ("cold", "cold raw", "streaming view, no kept answer (every tile combined)"),
        ("daily", "daily raw", "daily view online read"),
    ):
        (p50, p99), (r50, r99) = read[view], read[raw_name]
        what = "pipelined HMGET" if view == "daily" else "pipelined HGETALL of the same hashes"
        print(
            f"| {label}, 100 customers x 2 features, p50 / p99, vs raw {what} | "
            f"{p50:.2f} / {p99:.2f} ms | {r50:.2f} / {r99:.2f} ms | {p50 / r50:.2f} |"
        )
    (s50, s99), (d50_, d99_) = read["streaming"], read["daily"]
    print(
        f"| streaming read against the daily read (target within 2x), p50 / p99 | {s50:.2f} / {s99:.2f} ms | "
        f"{d50_:.2f} / {d99_:.2f} ms | {s50 / d50_:.2f} / {s99 / d99_:.2f} |"
    )
    if feast is not None:
        f50, f99 = feast["read_100x2"]
        print(
            f"| Feast online read of its pushed view, 100 x 2, p50 / p99 | {read['streaming'][0]:.2f} / "
            f"{read['streaming'][1]:.2f} ms | {f50:.2f} / {f99:.2f} ms | {read['streaming'][0] / f50:.2f} |"
        )


if __name__ == "__main__":
    main()
