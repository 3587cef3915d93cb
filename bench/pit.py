"""Point-in-time training reads over TPC-H scale factor 1 orders, against peers, in one run.

1. Windowed features (``spend_90d``: sum of o_totalprice; ``orders_30d``: a count) for
   100k entity rows: ``Store.get_historical_features`` against a hand-written DuckDB
   query for the same answers (daily sums, running totals, two ASOF joins per window).
   Values must be identical.
2. A row-level latest-value feature (the priority of the customer's latest order) for
   the same 100k rows: Pantry against Feast 0.67 (duckdb offline store, in
   bench/.feast-venv) and against a raw DuckDB ASOF join. Disagreements are classified:
   a tie is a customer with several orders at that latest timestamp, where Feast and
   ASOF leave the order unspecified; Pantry takes the later source row, every run.

3. Scale: the windowed read of 1 at 100k and 1M entity rows on SF1, and 1M rows on
   SF10 orders (15M orders, 1.5M customers), Pantry against the hand-written query.
   Each side runs in its own process (a warm-up, then 5 timed runs), which reports its
   median time and its peak memory (peak RSS above the process's RSS before the first
   read: the entity frame and the imports are not counted); the answers are compared.

Run: ``.venv/bin/python bench/pit.py`` (after bench/metrics_query.py generated the data;
SF10 orders are generated on first run; ``--no-sf10`` skips them. Feast:
``python3 -m venv bench/.feast-venv && bench/.feast-venv/bin/pip install 'feast[redis,duckdb]==0.67.*' 'pandas<3'``).
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent))
DATA = ROOT / "data" / "tpch-sf1"
DEFS = ROOT / "tpch_defs"
FEAST = ROOT / ".feast-venv" / "bin" / "python"
RUNS = 5
N = 100_000


def median_time(fn, runs: int = RUNS):  # noqa: ANN001, ANN201
    times, result = [], None
    for _ in range(runs):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def entity_rows(n: int = N, customers: int = 150_000) -> pd.DataFrame:
    rng = np.random.default_rng(42)
    days = pd.Timestamp("1992-02-01") + pd.to_timedelta(rng.integers(0, 2370, size=n), unit="D")
    return pd.DataFrame({"o_custkey": rng.integers(1, customers + 1, size=n), "event_timestamp": days})


HAND_WINDOWED_TEMPLATE = """
WITH daily AS (
    SELECT o_custkey AS k, o_orderdate AS d, SUM(o_totalprice) AS s, COUNT(*) AS c
    FROM read_parquet('{data}/orders.parquet') GROUP BY ALL
), running AS (
    SELECT k, d, SUM(s) OVER w AS cs, SUM(c) OVER w AS cc FROM daily WINDOW w AS (PARTITION BY k ORDER BY d)
), q AS (
    SELECT qid, o_custkey AS k, CAST(event_timestamp AS DATE) AS sd FROM entities
)
SELECT q.qid,
       CASE WHEN a.cc - COALESCE(b90.cc, 0) > 0 THEN a.cs - COALESCE(b90.cs, 0) END AS spend_90d,
       CASE WHEN a.cc - COALESCE(b90.cc, 0) > 0 THEN a.cc - COALESCE(b30.cc, 0) END AS orders_30d
FROM q
ASOF LEFT JOIN running a ON q.k = a.k AND a.d < q.sd
ASOF LEFT JOIN running b90 ON q.k = b90.k AND b90.d < q.sd - 90
ASOF LEFT JOIN running b30 ON q.k = b30.k AND b30.d < q.sd - 30
ORDER BY q.qid
"""
HAND_WINDOWED = HAND_WINDOWED_TEMPLATE.format(data=DATA)

HAND_LATEST = f"""
WITH o AS (SELECT o_custkey, CAST(o_orderdate AS TIMESTAMP) AS t, o_orderpriority FROM read_parquet('{DATA}/orders.parquet'))
SELECT q.qid, o.o_orderpriority AS last_priority
FROM (SELECT qid, o_custkey, CAST(event_timestamp AS TIMESTAMP) AS ts FROM entities) q
ASOF LEFT JOIN o ON q.o_custkey = o.o_custkey AND o.t < q.ts
ORDER BY q.qid
"""


def materialize_all(store, views: tuple[str, ...] = ("customer_spend", "customer_last_order")) -> None:  # noqa: ANN001
    from pantry.compile.view_plan import plan_view
    from pantry.features.tiles import materialize
    from pantry.offline.sources import connect

    store.home.mkdir(parents=True, exist_ok=True)
    offline = duckdb.connect(str(store.offline_db))
    for name in views:
        plan = plan_view(store.definitions, store.definitions.views[name])
        source = connect(store.definitions, models=plan.models)
        materialize(source, offline, plan, date(1992, 1, 1), date(1998, 8, 2))
        source.close()
    offline.close()


def main() -> None:
    from pantry import Store

    store = Store(defs=DEFS, home=Path(tempfile.mkdtemp()))
    materialize_all(store)
    entities = entity_rows()
    rows = []

    # 1. windowed features
    store.get_historical_features(entities, ["customer_spend:spend_90d"])  # warm the page cache
    ours_s, ours = median_time(
        lambda: store.get_historical_features(entities, ["customer_spend:spend_90d", "customer_spend:orders_30d"])
    )
    con = duckdb.connect()
    con.register("entities", entities.assign(qid=range(N)))
    hand_s, hand = median_time(lambda: con.execute(HAND_WINDOWED).df())
    same = np.allclose(ours["spend_90d"].astype(float).fillna(-1), hand["spend_90d"].astype(float).fillna(-1)) and (
        ours["orders_30d"].astype("Int64").fillna(-1).tolist() == hand["orders_30d"].astype("Int64").fillna(-1).tolist()
    )
    present = int(ours["spend_90d"].notna().sum())
    rows.append(
        (
            "windowed spend_90d + orders_30d, 100k rows",
            ours_s,
            hand_s,
            None,
            f"identical: {same}; {present} rows present",
        )
    )

    # 2. latest value: Pantry, raw ASOF, Feast
    latest_s, latest = median_time(
        lambda: store.get_historical_features(entities, ["customer_last_order:last_priority"])
    )
    asof_s, asof = median_time(lambda: con.execute(HAND_LATEST).df())
    again = store.get_historical_features(entities, ["customer_last_order:last_priority"])
    deterministic = (
        latest["last_priority"].fillna("<null>").tolist() == again["last_priority"].fillna("<null>").tolist()
    )
    ties = con.execute(
        f"""SELECT q.qid FROM (SELECT qid, o_custkey, CAST(event_timestamp AS DATE) AS sd FROM entities) q
        JOIN (SELECT o_custkey, o_orderdate, count(*) AS n FROM read_parquet('{DATA}/orders.parquet') GROUP BY ALL HAVING n > 1) dup
          ON dup.o_custkey = q.o_custkey
        WHERE dup.o_orderdate = (SELECT max(o_orderdate) FROM read_parquet('{DATA}/orders.parquet') o WHERE o.o_custkey = q.o_custkey AND o.o_orderdate < q.sd)"""
    ).df()["qid"]
    tie_set = set(ties.tolist())
    ours_vals = latest["last_priority"].fillna("<null>")
    asof_vals = asof["last_priority"].fillna("<null>")
    asof_diff = set(np.flatnonzero(ours_vals.values != asof_vals.values).tolist())
    feast_s = feast_diff = None
    if not FEAST.exists():
        print("Feast peer skipped: bench/.feast-venv is missing ('make bench-features' creates it)", file=sys.stderr)
    if FEAST.exists():
        work = Path(tempfile.mkdtemp())
        orders = con.execute(
            f"SELECT o_custkey, o_orderpriority, CAST(o_orderdate AS TIMESTAMPTZ) AS event_ts FROM read_parquet('{DATA}/orders.parquet')"
        ).df()
        orders.to_parquet(work / "orders_ts.parquet", index=False)
        # Feast includes rows at the event time itself; one microsecond earlier equals Pantry's t < stamp
        feast_entities = entities.assign(
            event_timestamp=(entities["event_timestamp"] - pd.Timedelta(microseconds=1)).dt.tz_localize("UTC"),
            qid=range(N),
        )
        feast_entities.to_parquet(work / "entities.parquet", index=False)
        done = subprocess.run(
            [
                str(FEAST),
                str(ROOT / "feast_peer.py"),
                str(work / "orders_ts.parquet"),
                str(work / "entities.parquet"),
                str(work / "out.parquet"),
            ],
            capture_output=True,
            text=True,
        )
        if done.returncode == 0:
            feast_s = float(done.stdout.strip().splitlines()[-1])
            theirs = pd.read_parquet(work / "out.parquet").sort_values("qid")
            feast_vals = theirs["o_orderpriority"].fillna("<null>").values
            feast_diff = set(np.flatnonzero(ours_vals.values != feast_vals).tolist())
        else:
            print("feast failed:", done.stderr[-2000:])
    rows.append(
        (
            "latest value, 100k rows: Pantry vs raw ASOF join",
            latest_s,
            asof_s,
            None,
            f"deterministic: {deterministic}; differs from ASOF on {len(asof_diff)} rows, {len(asof_diff - tie_set)} of them not ties",
        )
    )
    if feast_s is not None:
        rows.append(
            (
                "latest value, 100k rows: Pantry vs Feast 0.67 (duckdb)",
                latest_s,
                None,
                feast_s,
                f"differs from Feast on {len(feast_diff)} rows, {len(feast_diff - tie_set)} of them not ties; Feast / raw ASOF = {feast_s / asof_s:.2f}",
            )
        )
    print()
    print(f"| {'workload':<55} | {'Pantry (s)':>10} | {'raw (s)':>8} | {'Feast (s)':>9} | {'ratio':>6} | note")
    print(f"|{'-' * 57}|{'-' * 12}|{'-' * 10}|{'-' * 11}|{'-' * 8}|------")
    for name, ours_t, raw_t, feast_t, note in rows:
        peer = raw_t or feast_t
        print(
            f"| {name:<55} | {ours_t:>10.3f} | {raw_t or 0:>8.3f} | {feast_t or 0:>9.3f} | {ours_t / peer:>6.2f} | {note}"
        )


SF10 = ROOT / "data" / "tpch-sf10"
WINDOWED = ["customer_spend:spend_90d", "customer_spend:orders_30d"]


def sf10_defs() -> Path:
    """The TPC-H definitions over SF10 orders only (no lineitem at SF10), generating the data once."""
    if not (SF10 / "orders.parquet").exists():
        print("generating TPC-H scale factor 10 orders with tpchgen-cli ...", file=sys.stderr, flush=True)
        tool = Path(sys.executable).with_name("tpchgen-cli")
        subprocess.run([str(tool), "parquet", "-s", "10", "--tables=orders", f"--output-dir={SF10}"], check=True)
    defs = SF10 / "defs"
    defs.mkdir(exist_ok=True)
    text = (DEFS / "tpch.yaml").read_text()
    orders = text[text.index("  - name: orders") : text.index("metrics:")]
    views = text[text.index("feature_views:") :]
    (defs / "tpch.yaml").write_text(
        "project: {name: tpch10, partitions: {start: 1992-01-01}}\nsemantic_models:\n"
        + orders.replace("../data/tpch-sf1/orders.parquet", str(SF10 / "orders.parquet"))
        + views
    )
    return defs


def measured(side: str, defs: str, home: str, rows: int, customers: int, data: str, out: str) -> None:
    """One side in this process: warm up, 5 timed runs; prints median seconds and peak RSS (MB)."""
    import resource

    entities = entity_rows(rows, customers)
    if side == "pantry":
        from pantry import Store

        store = Store(defs=defs, home=home)
        _ = store.definitions

        def run() -> pd.DataFrame:
            return store.get_historical_features(entities, WINDOWED)
    else:
        con = duckdb.connect()
        con.register("entities", entities.assign(qid=np.arange(rows)))
        sql = HAND_WINDOWED_TEMPLATE.format(data=data)

        def run() -> pd.DataFrame:
            return con.execute(sql).df()

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    from_rss = int(Path("/proc/self/statm").read_text().split()[1]) * 4096 / 2**20
    run()
    seconds, result = median_time(run)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result[["spend_90d", "orders_30d"]].astype({"spend_90d": "float64", "orders_30d": "Float64"}).to_parquet(out)
    print(f"{seconds} {max(peak, before) - from_rss} {peak}")


def scale_rows(no_sf10: bool) -> list[tuple]:
    from pantry import Store

    cases = [("SF1", DEFS, DATA, 100_000, 150_000), ("SF1", DEFS, DATA, 1_000_000, 150_000)]
    if not no_sf10:
        cases.append(("SF10", sf10_defs(), SF10, 1_000_000, 1_500_000))
    homes: dict[str, Path] = {}
    rows = []
    for scale, defs, data, n, customers in cases:
        if scale not in homes:
            store = Store(defs=defs, home=Path(tempfile.mkdtemp()))
            started = time.perf_counter()
            materialize_all(store, ("customer_spend",))
            print(f"{scale}: tiles materialized in {time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)
            homes[scale] = store.home
        results = {}
        for side in ("pantry", "hand"):
            out = Path(tempfile.mkdtemp()) / f"{side}.parquet"
            args = [side, str(defs), str(homes[scale]), str(n), str(customers), str(data), str(out)]
            done = subprocess.run(
                [sys.executable, __file__, "--measure", *args], check=True, capture_output=True, text=True
            )
            seconds, grown, peak = (float(v) for v in done.stdout.split()[-3:])
            results[side] = (seconds, grown, peak, pd.read_parquet(out))
        ours, hand = results["pantry"], results["hand"]
        same = np.allclose(ours[3]["spend_90d"].fillna(-1), hand[3]["spend_90d"].fillna(-1)) and (
            ours[3]["orders_30d"].fillna(-1).tolist() == hand[3]["orders_30d"].fillna(-1).tolist()
        )
        rows.append((f"windowed, {n:,} rows, TPC-H {scale}", ours, hand, same))
    return rows


def print_scale(rows: list[tuple]) -> None:
    print()
    print(
        f"| {'workload':<38} | {'Pantry (s)':>10} | {'hand (s)':>8} | {'ratio':>5} | {'Pantry MB':>9} | {'hand MB':>7} | note"
    )
    print(f"|{'-' * 40}|{'-' * 12}|{'-' * 10}|{'-' * 7}|{'-' * 11}|{'-' * 9}|------")
    for name, ours, hand, same in rows:
        print(
            f"| {name:<38} | {ours[0]:>10.3f} | {hand[0]:>8.3f} | {ours[0] / hand[0]:>5.2f} | {ours[1]:>9.0f} | "
            f"{hand[1]:>7.0f} | identical: {same}; peak RSS {ours[2]:.0f} / {hand[2]:.0f} MB"
        )


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--measure":
        measured(*sys.argv[2:5], int(sys.argv[5]), int(sys.argv[6]), *sys.argv[7:9])
    elif len(sys.argv) > 1 and sys.argv[1] == "--scale":
        print_scale(scale_rows("--no-sf10" in sys.argv))
    else:
        main()
        print_scale(scale_rows("--no-sf10" in sys.argv))
