"""Online store benchmark: Pantry against the raw redis-py limit and Feast 0.67, in one run.

Data: 150,000 entities with 25 features (24 windowed sums and one latest string), all
present at yesterday's stamp. Each side writes to its own redis-server on a free port.

1. In-process reads, 1 x 25 and 100 x 25: ``Store.get_online_features`` against a raw
   pipelined HMGET of the same keys (p50 and p99 of 2,000 calls each).
2. Push throughput: ``Store.push_online`` of 150k entities (JSON values, newer-wins Lua in
   chunks) against a raw pipelined HSET of the same encoded values; Redis memory per key.
3. HTTP: ``pantry serve`` under an open-loop load generator at 500 requests/s for 30 s,
   10 entities x 25 features per request (a separate process; latencies include queueing).
4. Feast 0.67 (redis online store), when bench/.feast-venv exists: materialize throughput
   and get_online_features p50/p99 for 100 x 3 and 100 x 25.

Run: ``.venv/bin/python bench/online.py``.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import tempfile
import textwrap
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import redis

if TYPE_CHECKING:
    from pantry import Store

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent))
FEAST = ROOT / ".feast-venv" / "bin" / "python"
N = 150_000
FEATURES = 25
YESTERDAY = datetime.now(UTC).date() - timedelta(days=1)


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_redis(folder: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--save", "", "--appendonly", "no", "--dir", str(folder)],
        stdout=subprocess.DEVNULL,
    )
    for _ in range(200):
        try:
            if redis.Redis(port=port).ping():
                break
        except redis.RedisError:
            time.sleep(0.02)
    return proc, f"redis://127.0.0.1:{port}/0"


def wait_until_healthy(port: int, seconds: float = 300) -> None:
    """The server's imports take seconds, minutes on a loaded machine: wait for /healthz."""
    import httpx

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"pantry serve on port {port} did not become healthy in {seconds:.0f} s")


def build_project(root: Path) -> Path:
    defs = root / "metrics_defs"
    (defs / "data").mkdir(parents=True)
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"entity_id": np.arange(1, N + 1), "at": pd.Timestamp(YESTERDAY) + pd.Timedelta(hours=12)})
    for i in range(FEATURES - 1):
        frame[f"f{i}"] = rng.random(N).round(6)
    frame["label"] = rng.choice(["red", "green", "blue"], size=N)
    frame.to_parquet(defs / "data" / "events.parquet", index=False)
    measures = "\n".join(f"      - {{name: m{i}, agg: sum, expr: f{i}}}" for i in range(FEATURES - 1))
    features = "\n".join(f"      - {{name: f{i}, measure: events.m{i}, window: 1 day}}" for i in range(FEATURES - 1))
    (defs / "online.yaml").write_text(
        textwrap.dedent(f"""
semantic_models:
  - name: events
    source: data/events.parquet
    defaults: {{agg_time_dimension: at}}
    entities:
      - {{name: event, type: primary, expr: entity_id}}
      - {{name: entity, type: foreign, expr: entity_id}}
    dimensions:
      - {{name: at, type: time, type_params: {{time_granularity: day}}}}
      - {{name: label, type: categorical}}
    measures:
{measures}
feature_views:
  - name: wide
    entity: entity
    ttl: 30 days
    online: true
    features:
{features}
      - {{name: label_last, dimension: event__label}}
""")
    )
    return defs


def materialized_project(root: Path, redis_url: str) -> Store:
    """The ``wide`` view built under ``root`` with its newest day materialized offline."""
    import duckdb

    from pantry import Store
    from pantry.compile.view_plan import plan_view
    from pantry.features.tiles import materialize
    from pantry.offline.sources import connect

    store = Store(defs=build_project(root), home=root / "home", redis_url=redis_url)
    store.home.mkdir()
    plan = plan_view(store.definitions, store.definitions.views["wide"])
    offline = duckdb.connect(str(store.offline_db))
    materialize(connect(store.definitions, models=plan.models), offline, plan, YESTERDAY, YESTERDAY)
    offline.close()
    return store


def served_project(root: Path) -> tuple[Store, subprocess.Popen, str]:
    """The ``wide`` view built under ``root``, its newest day materialized and pushed into a
    redis-server of its own: what the HTTP benchmarks serve."""
    redis_proc, url = start_redis(root)
    store = materialized_project(root, url)
    store.push_online("wide", YESTERDAY)
    return store, redis_proc, url


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return ordered[len(ordered) // 2] * 1000, ordered[int(len(ordered) * 0.99) - 1] * 1000


def timed_pair(ours, theirs, n: int = 2000) -> tuple[tuple[float, float], tuple[float, float]]:  # noqa: ANN001
    """p50/p99 of both sides, call by call interleaved (the order swapped every call), so
    that a noisy second on this shared machine lands on both sides alike."""
    samples: tuple[list[float], list[float]] = ([], [])
    for fn in (ours, theirs):
        for _ in range(50):  # warm-up: connections, caches
            fn()
    for i in range(n):
        for side in (0, 1) if i % 2 == 0 else (1, 0):
            start = time.perf_counter()
            (ours, theirs)[side]()
            samples[side].append(time.perf_counter() - start)
    return percentiles(samples[0]), percentiles(samples[1])


async def load(host: str, port: int, rate: int, seconds: int, body: dict, connections: int = 48) -> list[float]:
    """Open-loop, bounded load: requests are due at a fixed rate; latency counts from when each
    was due, so queueing shows. A minimal HTTP/1.1 keep-alive client keeps the generator's own
    cost far below the server's (httpx cost ~1 ms of CPU per request on this machine)."""
    payload = json.dumps(body).encode()
    request = (
        f"POST /features/online HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(payload)}\r\n\r\n"
    ).encode() + payload
    queue: asyncio.Queue[float | None] = asyncio.Queue()
    latencies: list[float] = []

    async def worker() -> None:
        reader, writer = await asyncio.open_connection(host, port)
        while (due := await queue.get()) is not None:
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(
                next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length"))
            )
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - due)
        writer.close()

    workers = [asyncio.create_task(worker()) for _ in range(connections)]
    start = time.perf_counter()
    for i in range(rate * seconds):
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        queue.put_nowait(due)
    for _ in workers:
        queue.put_nowait(None)
    await asyncio.gather(*workers)
    return latencies


def main() -> None:
    from pantry.online.layout import encode

    root = Path(tempfile.mkdtemp())
    ours_redis, ours_url = start_redis(root)
    raw_dir = root / "raw"
    raw_dir.mkdir()
    raw_redis, raw_url = start_redis(raw_dir)
    store = materialized_project(root, ours_url)
    defs = store.defs
    names = [f"f{i}" for i in range(FEATURES - 1)] + ["label_last"]
    rows = []

    # push: Pantry vs raw pipelined HSET of the same encoded values
    values = store.get_historical_features(
        None,
        [f"wide:{n}" for n in names],
        start_time=datetime.combine(YESTERDAY + timedelta(days=1), datetime.min.time()),
        end_time=datetime.combine(YESTERDAY + timedelta(days=1), datetime.min.time()),
    )
    start = time.perf_counter()
    written = store.push_online("wide", YESTERDAY)
    push_s = time.perf_counter() - start
    raw = redis.Redis.from_url(raw_url)
    encoded = [
        (f"pantry:wide:{k}", {"__stamp": "1", **{n: encode(v) for n, v in zip(names, row)}})
        for k, row in zip(values["entity_id"], values[names].itertuples(index=False, name=None))
    ]
    start = time.perf_counter()
    pipe = raw.pipeline(transaction=False)
    for i, (key, mapping) in enumerate(encoded):
        pipe.hset(key, mapping=mapping)
        if i % 1000 == 999:
            pipe.execute()
    pipe.execute()
    raw_push_s = time.perf_counter() - start
    client = redis.Redis.from_url(ours_url)
    memory = client.info("memory")["used_memory"] / max(client.dbsize(), 1)
    rows.append(
        (
            "push 150k entities x 25 features (keys/s)",
            written / push_s,
            len(encoded) / raw_push_s,
            f"{written} keys; {memory:.0f} bytes of Redis memory per key",
        )
    )

    # reads: drop the push's 150k rows first, so neither side's timings catch a GC pass over them
    del encoded, values
    import gc

    gc.collect()
    gc.freeze()
    features = [f"wide:{n}" for n in names]
    for count in (1, 100):
        entity_rows = [{"entity_id": int(k)} for k in np.random.default_rng(count).integers(1, N + 1, size=count)]
        keys = [f"pantry:wide:{r['entity_id']}" for r in entity_rows]

        def raw_read(keys: list[str] = keys) -> list:
            p = raw.pipeline(transaction=False)
            for key in keys:
                p.hmget(key, names)
            return p.execute()

        ours, theirs = timed_pair(lambda rows=entity_rows: store.get_online_features(features, rows), raw_read)
        rows.append((f"read {count} x 25 in-process p50/p99 (ms)", ours, theirs, ""))

    # HTTP
    port = free_port()
    env = {
        "PANTRY_DEFS": str(defs),
        "PANTRY_HOME": str(store.home),
        "PANTRY_REDIS_URL": ours_url,
        "PATH": "/usr/bin:/bin",
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "pantry.api.cli", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_until_healthy(port)
    body = {"features": features, "entities": {"entity_id": [int(k) for k in range(1000, 1010)]}}
    # the load generator runs in a fresh process: this one holds 150k encoded rows, and its
    # garbage collector's pauses would be counted as server latency
    generator = [sys.executable, str(Path(__file__)), "--load", str(port), json.dumps(body)]
    subprocess.run(generator + ["--rate", "200", "--seconds", "2"], check=True, capture_output=True)  # warm-up
    done = subprocess.run(generator + ["--rate", "500", "--seconds", "30"], check=True, capture_output=True, text=True)
    latencies = json.loads(done.stdout.strip().splitlines()[-1])
    server.terminate()
    rows.append(
        (
            "HTTP 10 x 25 at 500 req/s for 30 s, p50/p99 (ms)",
            percentiles(latencies),
            None,
            f"{len(latencies)} requests, open loop",
        )
    )

    # Feast
    if not FEAST.exists():
        print("Feast peer skipped: bench/.feast-venv is missing ('make bench-features' creates it)", file=sys.stderr)
    if FEAST.exists() and "--no-feast" not in sys.argv:
        feast_dir = root / "feast"
        feast_dir.mkdir()
        feast_redis, feast_url = start_redis(feast_dir)
        done = subprocess.run(
            [
                str(FEAST),
                str(ROOT / "feast_online_peer.py"),
                str(defs / "data" / "events.parquet"),
                feast_url.removeprefix("redis://").removesuffix("/0"),
            ],
            capture_output=True,
            text=True,
        )
        if done.returncode == 0:
            result = json.loads(done.stdout.strip().splitlines()[-1])
            rows.append(("Feast 0.67 materialize (keys/s)", result["keys_per_s"], None, f"{result['keys']} keys"))
            rows.append(("Feast 0.67 read 100 x 3 p50/p99 (ms)", tuple(result["read_100x3"]), None, ""))
            rows.append(("Feast 0.67 read 100 x 25 p50/p99 (ms)", tuple(result["read_100x25"]), None, ""))
        else:
            print("feast failed:", done.stderr[-3000:])
        feast_redis.terminate()
    ours_redis.terminate()
    raw_redis.terminate()
    print()
    print(f"| {'workload':<52} | {'Pantry':>17} | {'raw redis-py':>17} | ratio | note")
    print(f"|{'-' * 54}|{'-' * 19}|{'-' * 19}|-------|------")
    for name, ours, theirs, note in rows:
        fmt = lambda v: "-" if v is None else (f"{v[0]:.2f} / {v[1]:.2f}" if isinstance(v, tuple) else f"{v:,.0f}")  # noqa: E731
        if theirs is None:
            ratio = "-"
        elif isinstance(ours, tuple):
            ratio = f"{ours[0] / theirs[0]:.2f} / {ours[1] / theirs[1]:.2f}"
        else:
            ratio = f"{ours / theirs:.2f}"
        print(f"| {name:<52} | {fmt(ours):>17} | {fmt(theirs):>17} | {ratio} | {note}")


def load_main(argv: list[str]) -> None:
    """``online.py --load PORT BODY --rate R --seconds S``: print latencies as JSON."""
    port, body = int(argv[argv.index("--load") + 1]), json.loads(argv[argv.index("--load") + 2])
    rate, seconds = int(argv[argv.index("--rate") + 1]), int(argv[argv.index("--seconds") + 1])
    print(json.dumps(asyncio.run(load("127.0.0.1", port, rate, seconds, body))))


if __name__ == "__main__":
    if "--load" in sys.argv:
        load_main(sys.argv)
    else:
        main()
