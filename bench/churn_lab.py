"""The seeds' churn lab at its own scale: 2,000,000 customers, 25 features, January 2024.

About 12M order events (seeded), one feature view of 25 features (eight measures over 1,
7 and 30 days, and the last channel), materialized **through Dagster** (`dagster asset
materialize --partition-range 2024-01-01...2024-01-31`, one run: tiles, then every
partition's checks and figures), then a training read of 10,000 entity rows and a push of
the newest partition (2M keys) into a redis-server. Each figure beside its peer in the same
run:

- the run: its wall time and peak RSS, beside a hand-written DuckDB query that computes the
  same per-customer daily partials from the same Parquet (the raw limit of the tiles' work);
- the training read: beside the same 10,000 rows read with a hand-written ASOF query over
  the daily partials Pantry wrote (the raw DuckDB limit of a point-in-time read);
- the push: beside a raw pipelined HSET (packed by hiredis) of the same encoded values into another
  redis-server.

Targets (issue 26): the run under 90 s with peak RSS under 2 GB, the read under 1 s, the
push under 60 s. Run: ``.venv/bin/python bench/churn_lab.py [--customers N]``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb
import hiredis
import numpy as np
import pandas as pd
import redis

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent))
sys.path.insert(0, str(ROOT))

from online import start_redis  # noqa: E402

START, END = date(2024, 1, 1), date(2024, 1, 31)
MEASURES = {  # name: (agg, expr)
    "spend": ("sum", "amount"),
    "orders": ("count", "order_id"),
    "items": ("sum", "quantity"),
    "basket": ("average", "amount"),
    "biggest": ("max", "amount"),
    "discount": ("sum", "discount"),
    "returns": ("sum", "returned"),
    "smallest": ("min", "amount"),
}
WINDOWS = (1, 7, 30)


def write_project(root: Path, customers: int) -> Path:
    """Orders for January 2024: each customer orders Poisson(0.2) times a day, seeded."""
    defs = root / "metrics_defs"
    (defs / "data").mkdir(parents=True)
    rng = np.random.default_rng(2024)
    frames = []
    for i in range((END - START).days + 1):
        counts = rng.poisson(0.2, size=customers)
        who = np.repeat(np.arange(1, customers + 1), counts)
        n = len(who)
        day = datetime.combine(START + timedelta(days=i), datetime.min.time())
        frames.append(
            pd.DataFrame(
                {
                    "customer_id": who,
                    "ordered_at": pd.Timestamp(day) + pd.to_timedelta(rng.integers(0, 86_400, n), unit="s"),
                    "amount": rng.gamma(2.0, 20.0, n).round(2),
                    "quantity": rng.integers(1, 6, n),
                    "discount": (rng.random(n) < 0.1) * rng.gamma(1.0, 5.0, n).round(2),
                    "returned": (rng.random(n) < 0.05).astype(np.int64),
                    "channel": rng.choice(np.array(["web", "app", "store"]), size=n, p=[0.5, 0.3, 0.2]),
                }
            )
        )
    orders = pd.concat(frames, ignore_index=True)
    orders.insert(0, "order_id", np.arange(1, len(orders) + 1))
    orders.to_parquet(defs / "data" / "orders.parquet", index=False, row_group_size=1_000_000)
    measures = "\n".join(f"      - {{name: {m}, agg: {a}, expr: {e}}}" for m, (a, e) in MEASURES.items())
    features = "\n".join(
        f"      - {{name: {m}_{w}d, measure: orders.{m}, window: {w} day{'s' if w > 1 else ''}}}"
        for m in MEASURES
        for w in WINDOWS
    )
    (defs / "churn.yaml").write_text(
        textwrap.dedent(f"""
project: {{name: churn_lab, partitions: {{start: {START}, end: {END}}}}}
semantic_models:
  - name: orders
    source: data/orders.parquet
    defaults: {{agg_time_dimension: ordered_at}}
    entities:
      - {{name: order, type: primary, expr: order_id}}
      - {{name: customer, type: foreign, expr: customer_id}}
    dimensions:
      - {{name: ordered_at, type: time, type_params: {{time_granularity: day}}}}
      - {{name: channel, type: categorical}}
    measures:
{measures}
feature_views:
  - name: churn
    entity: customer
    online: true
    features:
{features}
      - {{name: last_channel, dimension: order__channel}}
""")
    )
    return defs


def raw_tiles(defs: Path) -> float:
    """The raw limit of the tiles' work: per customer and day, every measure's partials."""
    con = duckdb.connect()
    start = time.perf_counter()
    con.execute(
        f"""CREATE TABLE t AS SELECT customer_id, CAST(ordered_at AS DATE) AS day, COUNT(*) AS n,
        SUM(amount) AS spend, SUM(quantity) AS items, MAX(amount) AS biggest, MIN(amount) AS smallest,
        SUM(discount) AS discount, SUM(returned) AS returns, ARG_MAX(channel, ordered_at) AS channel
        FROM read_parquet('{defs / "data" / "orders.parquet"}') GROUP BY ALL"""
    )
    took = time.perf_counter() - start
    con.close()
    return took


def materialize(defs: Path, home: Path) -> tuple[float, float, str]:
    """The 31 partitions through Dagster's CLI, as a user runs them: (seconds, peak RSS GB, log tail)."""
    dagster_home = home / "dagster"
    dagster_home.mkdir(parents=True)
    env = {**os.environ, "PANTRY_DEFS": str(defs), "PANTRY_HOME": str(home), "DAGSTER_HOME": str(dagster_home)}
    env.pop("PANTRY_SLACK_WEBHOOK_URL", None)
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", PEAK, str(Path(sys.executable).with_name("dagster")), "asset", "materialize"]
        + ["-m", "definitions", "--select", "*", "--partition-range", f"{START}...{END}"],
        cwd=ROOT.parent,
        env=env,
        capture_output=True,
        text=True,
    )
    took = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"the run failed:\n{done.stderr[-4000:]}")
    peak_gb = int(done.stdout.strip().splitlines()[-1]) / 1024 / 1024
    return took, peak_gb, done.stderr[-2000:]


# The run's peak RSS, taken by a small wrapper process: a child forked straight from this
# script starts as a copy of it (the 12M generated orders, ~3 GB), and ru_maxrss counts those
# pages before exec, which inflated earlier figures (3.33 GB reported where the run peaked at
# 1.69 GB by /usr/bin/time -v).
PEAK = """
import resource, subprocess, sys
code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
sys.exit(code)
"""


def training_read(defs: Path, home: Path, customers: int) -> tuple[float, float]:
    """10,000 entity rows at random times in the month: Pantry against a raw ASOF read."""
    from pantry import Store
    from pantry.offline.feature_tables import tile_table

    rng = np.random.default_rng(7)
    entity_df = pd.DataFrame(
        {
            "customer_id": rng.integers(1, customers + 1, 10_000),
            "event_timestamp": pd.Timestamp("2024-01-08", tz="UTC")
            + pd.to_timedelta(rng.integers(0, 24 * 24, 10_000), unit="h"),
        }
    )
    store = Store(defs=defs, home=home)
    features = ["churn:spend_7d", "churn:orders_30d"]
    store.get_historical_features(entity_df.head(100), features)  # warm: imports, catalog
    start = time.perf_counter()
    ours = store.get_historical_features(entity_df, features)
    ours_s = time.perf_counter() - start
    con = duckdb.connect()
    con.execute(f"ATTACH '{home / 'pantry.duckdb'}' AS offline (READ_ONLY)")
    con.register("q", entity_df.assign(qid=np.arange(len(entity_df))))
    start = time.perf_counter()
    raw = con.execute(
        f"""WITH v AS (SELECT qid, customer_id, CAST(date_trunc('day', event_timestamp) AS DATE) AS sday FROM q)
        SELECT v.qid, SUM(t."spend_7d__part") FILTER (WHERE t.__day >= v.sday - 7) AS spend_7d,
               SUM(t."orders_30d__part") AS orders_30d
        FROM v JOIN offline.{tile_table("churn")} t ON t.__key = v.customer_id AND t.__day >= v.sday - 30 AND t.__day < v.sday
        GROUP BY v.qid ORDER BY v.qid"""
    ).fetchall()
    raw_s = time.perf_counter() - start
    con.close()
    assert len(raw) <= len(ours)
    return ours_s, raw_s


def push(defs: Path, home: Path, folder: Path) -> tuple[float, float, int]:
    """The newest partition into a redis-server: Pantry's push against a raw pipelined HSET."""
    from pantry import Store

    ours_proc, ours_url = start_redis(folder / "ours")
    raw_proc, raw_url = start_redis(folder / "raw")
    try:
        store = Store(defs=defs, home=home, redis_url=ours_url)
        start = time.perf_counter()
        written = store.push_online("churn", END)
        ours_s = time.perf_counter() - start
        client = redis.Redis.from_url(ours_url)
        keys = [k for k in client.scan_iter("pantry:churn:*", count=10_000)]
        sample = client.hgetall(keys[0])
        raw = redis.Redis.from_url(raw_url)
        start = time.perf_counter()
        # the raw limit: HSETs packed by hiredis (as Pantry's push packs its calls), 1,000 per round trip
        connection = raw.connection_pool.get_connection()
        fields = [part for pair in sample.items() for part in pair]
        for begin in range(0, len(keys), 1000):
            chunk = keys[begin : begin + 1000]
            connection.send_packed_command([b"".join(hiredis.pack_command(("HSET", key, *fields)) for key in chunk)])
            for _ in chunk:
                connection.read_response()
        raw.connection_pool.release(connection)
        raw_s = time.perf_counter() - start
        return ours_s, raw_s, written
    finally:
        ours_proc.terminate()
        raw_proc.terminate()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=2_000_000)
    parser.add_argument("--no-push", action="store_true")
    parser.add_argument("--keep", type=Path, help="build the lab in this new folder and keep it (for profiling)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="churn_lab_") as tmp:
        root = Path(tmp) if args.keep is None else args.keep
        root.mkdir(parents=True, exist_ok=args.keep is None)
        for folder in ("ours", "raw"):
            (root / folder).mkdir()
        start = time.perf_counter()
        defs = write_project(root, args.customers)
        events = duckdb.sql(f"SELECT COUNT(*) FROM read_parquet('{defs / 'data' / 'orders.parquet'}')").fetchall()[0][0]
        print(f"generated {events:,} orders of {args.customers:,} customers in {time.perf_counter() - start:.0f} s")
        raw_s = raw_tiles(defs)
        home = root / "home"
        run_s, peak_gb, _ = materialize(defs, home)
        rows = [
            ("31-partition run through Dagster (s)", run_s, raw_s, f"peak RSS {peak_gb:.2f} GB; target < 90 s, < 2 GB")
        ]
        read_s, raw_read_s = training_read(defs, home, args.customers)
        rows.append(("training read, 10k rows x 2 features (s)", read_s, raw_read_s, "target < 1 s"))
        if not args.no_push:
            push_s, raw_push_s, written = push(defs, home, root)
            rows.append((f"push of the newest partition, {written:,} keys (s)", push_s, raw_push_s, "target < 60 s"))
    print(f"\n| {'workload':<48} | Pantry | peer (raw) | ratio | note")
    print(f"|{'-' * 50}|--------|------------|-------|-----")
    for name, ours, peer, note in rows:
        print(f"| {name:<48} | {ours:6.2f} | {peer:10.2f} | {ours / peer:5.1f} | {note}")
    print(json.dumps({name: [ours, peer] for name, ours, peer, _ in rows}))


if __name__ == "__main__":
    main()
