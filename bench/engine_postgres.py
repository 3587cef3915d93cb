"""Pantry in PostgreSQL (issue 28): metric queries, a feature view's backfill and a training
read, each against hand-written PostgreSQL SQL.

TPC-H scale factor 1 (6M lineitem rows) is loaded into a PostgreSQL started here (a
cluster of its own on a free port, as the tests start one). Pantry runs with
``PANTRY_ENGINE`` pointing at it: ``revenue`` by ``metric_time__month`` and
``order__orderpriority`` is compiled, pointed at the warehouse tables, rendered for
PostgreSQL and run there through ADBC. The peer is the same answer written by hand, run
through the same driver on the same connection settings. Each side runs 5 times after one
warm-up; the medians and their ratio are printed, and the answers are compared cell by cell.

Then TPC-H's ``customer_spend`` view (spend over 90 days, orders over 30, per customer):
a year of daily partitions (1995) computed and stored in PostgreSQL by
``Store.materialize_view`` (one ``INSERT ... SELECT`` per day, one transaction), timed once;
the peer is the same year written by hand as one ``INSERT ... SELECT`` over a
``generate_series`` of stamps. And a training read of 100,000 (customer, moment) rows in
1995 (``get_historical_features``: the frame uploaded by ADBC's COPY, joined in PostgreSQL),
against the hand-written join of the same uploaded frame to the same stored partitions
(``LATERAL``, the latest stamp at or before each moment), medians of 5.

Run: ``.venv/bin/python bench/engine_postgres.py`` (generates TPC-H data on first run;
loading it into PostgreSQL takes a minute or two).
"""

from __future__ import annotations

import math
import statistics
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import pyarrow.parquet as pq
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from metrics_query import DATA, DEFS, ensure_data  # noqa: E402

from pantry import Store  # noqa: E402
from pantry.engines.frames import arrow_frame  # noqa: E402
from pantry.engines.postgres import PostgresEngine  # noqa: E402
from tests.conftest import PostgresServer  # noqa: E402

RUNS = 5
HAND_SQL = """
SELECT CAST(date_trunc('month', l_shipdate) AS DATE) AS metric_time__month,
       o_orderpriority AS order__orderpriority,
       SUM(l_extendedprice * (1 - l_discount)) AS revenue
FROM tpch.lineitem JOIN tpch.orders ON l_orderkey = o_orderkey
GROUP BY 1, 2 ORDER BY 1, 2
"""


def load(url: str) -> float:
    import adbc_driver_postgresql.dbapi as dbapi

    started = time.perf_counter()
    with dbapi.connect(url, autocommit=True) as con, con.cursor() as cur:
        cur.execute("CREATE SCHEMA tpch")
        for name in ("lineitem", "orders", "customer"):
            reader = pq.ParquetFile(DATA / f"{name}.parquet")
            for i, batch in enumerate(reader.iter_batches(batch_size=500_000)):
                cur.adbc_ingest(name, batch, mode="create" if i == 0 else "append", db_schema_name="tpch")
            cur.execute(f"ANALYZE tpch.{name}")
    return time.perf_counter() - started


def defs(folder: Path) -> Path:
    doc = yaml.safe_load((DEFS / "tpch.yaml").read_text())
    doc["feature_views"] = [v for v in doc["feature_views"] if v["name"] == "customer_spend"]
    for model in doc["semantic_models"]:
        model.pop("source")
        model["node_relation"] = {"schema_name": "tpch", "alias": model["name"]}
    folder.mkdir(parents=True)
    (folder / "tpch.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    return folder


READ_ROWS = 100_000
YEAR = (date(1995, 1, 1), date(1995, 12, 31))
HAND_BACKFILL = """
INSERT INTO hand.customer_spend
SELECT CAST(s - INTERVAL '1 day' AS DATE) AS __day, o_custkey AS customer, CAST(s AS TIMESTAMP) AS event_timestamp,
       COALESCE(SUM(o_totalprice) FILTER (WHERE o_orderdate >= s - INTERVAL '90 days'), 0) AS spend_90d,
       COALESCE(SUM(1) FILTER (WHERE o_orderdate >= s - INTERVAL '30 days'), 0) AS orders_30d
FROM generate_series(TIMESTAMP '1995-01-02', TIMESTAMP '1996-01-01', INTERVAL '1 day') AS g(s)
JOIN tpch.orders ON o_orderdate >= s - INTERVAL '90 days' AND o_orderdate < s
GROUP BY s, o_custkey
"""
HAND_READ = """
WITH stamps AS MATERIALIZED (
  SELECT s FROM generate_series(TIMESTAMP '1995-01-02', TIMESTAMP '1996-01-01', INTERVAL '1 day') AS g(s)
)
SELECT v.spend_90d, v.orders_30d
FROM __hand_q AS q
LEFT JOIN LATERAL (SELECT max(s) AS s FROM stamps WHERE s <= q.__ts) AS latest ON TRUE
LEFT JOIN hand.customer_spend AS v ON v.customer = q.__key AND v.event_timestamp = latest.s
ORDER BY q.__qid
"""


def backfill_and_read(store: Store, hand: PostgresEngine) -> dict:
    """The year's backfill on both sides, then the training read on both (answers compared)."""
    import adbc_driver_postgresql.dbapi as dbapi
    import numpy as np
    import pandas as pd
    import pyarrow as pa

    started = time.perf_counter()
    rows = store.materialize_view("customer_spend", *YEAR)
    ours = time.perf_counter() - started
    print(f"Pantry's backfill: {rows:,} rows in {ours:.1f} s", file=sys.stderr, flush=True)
    with dbapi.connect(hand.url) as con, con.cursor() as cur:
        started = time.perf_counter()
        cur.execute("CREATE SCHEMA hand")
        cur.execute(
            "CREATE TABLE hand.customer_spend (__day date, customer bigint, event_timestamp timestamp, "
            "spend_90d numeric, orders_30d bigint)"
        )
        cur.execute("CREATE INDEX ON hand.customer_spend (customer, event_timestamp)")  # as Pantry's table has
        cur.execute(HAND_BACKFILL)
        con.commit()
        peer = time.perf_counter() - started
        print(f"hand-written backfill: {peer:.1f} s", file=sys.stderr, flush=True)
        cur.execute("SELECT count(*) FROM hand.customer_spend")
        assert cur.fetchone()[0] == rows, "the hand-written backfill and Pantry's wrote different row counts"
    rng = np.random.default_rng(1995)
    frame = pd.DataFrame(
        {
            "o_custkey": rng.integers(1, 150_001, READ_ROWS),
            "event_timestamp": pd.Timestamp("1995-01-01")
            + pd.to_timedelta(rng.integers(0, 365 * 86400, READ_ROWS), "s"),
        }
    )
    features = ["customer_spend:spend_90d", "customer_spend:orders_30d"]
    read_ours, got = timed(lambda: store.get_historical_features(frame, features))
    print(f"Pantry's training read: {read_ours * 1000:.0f} ms", file=sys.stderr, flush=True)
    upload = pa.table(
        {
            "__qid": np.arange(READ_ROWS),
            "__key": frame["o_custkey"].to_numpy(),
            "__ts": pa.array(frame["event_timestamp"].astype("datetime64[us]")),
        }
    )
    read_peer, want = timed(lambda: arrow_frame(hand.run_with("__hand_q", upload, HAND_READ)))
    for column in ("spend_90d", "orders_30d"):
        for x, y in zip(got[column], want[column]):  # type: ignore[index]
            assert (pd.isna(x) and pd.isna(y)) or math.isclose(float(x), float(y), rel_tol=1e-9), (column, x, y)
    return {"backfill": (ours, peer, rows), "read": (read_ours, read_peer)}


def timed(fn) -> tuple[float, object]:  # noqa: ANN001
    fn()  # warm-up: the tables' pages in PostgreSQL's cache for both sides alike
    times, result = [], None
    for _ in range(RUNS):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main() -> None:
    ensure_data()
    server = PostgresServer()
    try:
        url = f"postgresql://pantry@127.0.0.1:{server.port}/dagster"
        loaded = load(url)
        with tempfile.TemporaryDirectory() as tmp:
            store = Store(defs=defs(Path(tmp) / "metrics_defs"), home=Path(tmp) / "home", engine=url)
            args = dict(metrics=["revenue"], group_by=["metric_time__month", "order__orderpriority"])
            ours, frame = timed(lambda: store.query(**args))
            hand = PostgresEngine(url)
            peer, expected = timed(lambda: arrow_frame(hand.run(HAND_SQL)))
            view = backfill_and_read(store, hand)
            hand.close()
        order = ["metric_time__month", "order__orderpriority"]
        a = frame.sort_values(order).reset_index(drop=True)  # type: ignore[union-attr]
        b = expected.sort_values(order).reset_index(drop=True)  # type: ignore[union-attr]
        assert len(a) == len(b) and list(a.columns) == list(b.columns), (a.shape, b.shape)
        for column in a.columns:
            for x, y in zip(a[column], b[column]):
                same = math.isclose(float(x), float(y), rel_tol=1e-12) if column == "revenue" else x == y
                assert same, (column, x, y)
    finally:
        server.stop()
    print(f"TPC-H SF1 loaded into PostgreSQL in {loaded:.0f} s; {len(a)} rows, identical cell by cell\n")
    print(
        "| workload | Pantry (PANTRY_ENGINE=postgresql) | hand-written PostgreSQL SQL | ratio (target 1.2x or better) |"
    )
    print("|---|---:|---:|---:|")
    print(
        f"| revenue by month and order priority, median of {RUNS} | {ours * 1000:,.0f} ms | "
        f"{peer * 1000:,.0f} ms | {ours / peer:.2f}x |"
    )
    b_ours, b_peer, rows = view["backfill"]
    print(
        f"| a year of customer_spend's daily partitions ({rows:,} rows), computed and stored in PostgreSQL | "
        f"{b_ours:,.1f} s | {b_peer:,.1f} s | {b_ours / b_peer:.2f}x |"
    )
    r_ours, r_peer = view["read"]
    print(
        f"| training read of {READ_ROWS:,} rows, median of {RUNS} (target 1.0x or better) | {r_ours * 1000:,.0f} ms | "
        f"{r_peer * 1000:,.0f} ms | {r_ours / r_peer:.2f}x |"
    )


if __name__ == "__main__":
    main()
