"""Metric queries in PostgreSQL (issue 28): Pantry against hand-written PostgreSQL SQL.

TPC-H scale factor 1 (6M lineitem rows) is loaded into a PostgreSQL started here (a
cluster of its own on a free port, as the tests start one). Pantry runs with
``PANTRY_ENGINE`` pointing at it: ``revenue`` by ``metric_time__month`` and
``order__orderpriority`` is compiled, pointed at the warehouse tables, rendered for
PostgreSQL and run there through ADBC. The peer is the same answer written by hand, run
through the same driver on the same connection settings. Each side runs 5 times after one
warm-up; the medians and their ratio are printed, and the answers are compared cell by cell.

Run: ``.venv/bin/python bench/engine_postgres.py`` (generates TPC-H data on first run;
loading it into PostgreSQL takes a minute or two).
"""

from __future__ import annotations

import math
import statistics
import sys
import tempfile
import time
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
        for name in ("lineitem", "orders"):
            reader = pq.ParquetFile(DATA / f"{name}.parquet")
            for i, batch in enumerate(reader.iter_batches(batch_size=500_000)):
                cur.adbc_ingest(name, batch, mode="create" if i == 0 else "append", db_schema_name="tpch")
            cur.execute(f"ANALYZE tpch.{name}")
    return time.perf_counter() - started


def defs(folder: Path) -> Path:
    doc = yaml.safe_load((DEFS / "tpch.yaml").read_text())
    doc.pop("feature_views", None)
    for model in doc["semantic_models"]:
        model.pop("source")
        model["node_relation"] = {"schema_name": "tpch", "alias": model["name"]}
    folder.mkdir(parents=True)
    (folder / "tpch.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    return folder


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


if __name__ == "__main__":
    main()
