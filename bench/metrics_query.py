"""Metrics query benchmark: Pantry against the raw DuckDB limit, in the same run.

Workloads:
1. TPC-H scale factor 1 (6M lineitem rows): ``revenue`` by ``metric_time__month`` and
   ``order__orderpriority`` (one hop, lineitem -> orders), against a hand-written DuckDB
   query for the same answer. Each is run 5 times; the medians and their ratio are
   reported, in-process (the engine) and end to end through the CLI (Python start-up
   included on both sides). The answers are compared cell by cell.
2. Compile time of one query of 80 generated metrics (simple, filtered, ratio, derived
   with offsets, cumulative). MetricFlow users report minutes (metricflow issue 1557).

Run: ``.venv/bin/python bench/metrics_query.py`` (generates TPC-H data on first run).
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import duckdb
import pandas as pd

ROOT = Path(__file__).resolve().parent
DATA = ROOT / "data" / "tpch-sf1"
DEFS = ROOT / "tpch_defs"
RUNS = 5
HAND_SQL = f"""
SELECT CAST(date_trunc('month', l_shipdate) AS DATE) AS metric_time__month,
       o_orderpriority AS order__orderpriority,
       SUM(l_extendedprice * (1 - l_discount)) AS revenue
FROM read_parquet('{DATA}/lineitem.parquet')
JOIN read_parquet('{DATA}/orders.parquet') ON l_orderkey = o_orderkey
GROUP BY ALL ORDER BY ALL
"""


def ensure_data() -> None:
    if (DATA / "lineitem.parquet").exists() and (DATA / "orders.parquet").exists():
        return
    print("generating TPC-H scale factor 1 with tpchgen-cli ...", flush=True)
    tool = Path(sys.executable).with_name("tpchgen-cli")
    subprocess.run(
        [str(tool), "parquet", "-s", "1", "--tables=lineitem,orders,customer", f"--output-dir={DATA}"], check=True
    )


def timed(fn, runs: int = RUNS) -> tuple[float, object]:  # noqa: ANN001
    times, result = [], None
    for _ in range(runs):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def timed_pair(ours, theirs, runs: int = RUNS) -> tuple[float, object, float, object]:  # noqa: ANN001
    """Alternate the two sides run by run, so both see the same machine state."""
    a, b, ra, rb = [], [], None, None
    for _ in range(runs):
        start = time.perf_counter()
        ra = ours()
        a.append(time.perf_counter() - start)
        start = time.perf_counter()
        rb = theirs()
        b.append(time.perf_counter() - start)
    return statistics.median(a), ra, statistics.median(b), rb


def query_benchmark() -> list[tuple[str, float, float, str]]:
    from pantry import Store

    store = Store(defs=DEFS, home=tempfile.mkdtemp())
    _ = store.definitions  # load and validate once, as a long-lived process would
    con = duckdb.connect()
    args = dict(metrics="revenue", group_by="metric_time__month,order__orderpriority")
    rows = []
    # interleave warm-ups so neither side profits from a warmer page cache
    store.query(**args)
    con.execute(HAND_SQL).fetchall()
    pantry_s, ours, raw_s, theirs = timed_pair(lambda: store.query(**args), lambda: con.execute(HAND_SQL).df())
    ours = ours.reset_index(drop=True)
    theirs = theirs.reset_index(drop=True)
    ours["metric_time__month"] = pd.to_datetime(ours["metric_time__month"])
    theirs["metric_time__month"] = pd.to_datetime(theirs["metric_time__month"])
    pd.testing.assert_frame_equal(ours, theirs.astype({"revenue": float}), check_dtype=False)
    rows.append(("TPC-H SF1 revenue by month x priority (in-process)", pantry_s, raw_s, f"{len(ours)} rows, identical"))

    pantry_cli = [
        str(Path(sys.executable).with_name("pantry")),
        "query",
        "--metrics",
        "revenue",
        "--group-by",
        "metric_time__month,order__orderpriority",
        "--csv",
        "/dev/null",
    ]
    hand_cli = [sys.executable, "-c", f"import duckdb; duckdb.connect().execute({HAND_SQL!r}).df().to_csv('/dev/null')"]
    env = {"PANTRY_DEFS": str(DEFS), "PANTRY_HOME": tempfile.mkdtemp(), "PATH": "/usr/bin:/bin"}
    cli_s, _, hand_cli_s, _ = timed_pair(
        lambda: subprocess.run(pantry_cli, check=True, capture_output=True, env=env),
        lambda: subprocess.run(hand_cli, check=True, capture_output=True, env=env),
    )
    rows.append(("same, end to end: `pantry query` vs python+duckdb", cli_s, hand_cli_s, "process start-up included"))
    return rows


def generated_metrics(n: int = 80) -> str:
    kinds = []
    for i in range(n):
        k = i % 5
        if k == 0:
            kinds.append(f"  - {{name: m{i}, type: simple, type_params: {{measure: revenue}}}}")
        elif k == 1:
            kinds.append(
                f"  - name: m{i}\n    type: simple\n    type_params: {{measure: order_total}}\n    filter: \"{{{{ Dimension('order__orderpriority') }}}} = '{i % 5}-X'\""
            )
        elif k == 2:
            kinds.append(
                f"  - {{name: m{i}, type: ratio, type_params: {{numerator: m{i - 2}, denominator: order_count}}}}"
            )
        elif k == 3:
            kinds.append(
                f"  - name: m{i}\n    type: derived\n    type_params:\n      expr: a - b\n      metrics:\n        - {{name: m{i - 3}, alias: a}}\n        - {{name: m{i - 3}, alias: b, offset_window: {1 + i % 7} days}}"
            )
        else:
            kinds.append(
                f"  - {{name: m{i}, type: cumulative, type_params: {{measure: order_total, cumulative_type_params: {{window: {7 + i} days}}}}}}"
            )
    base = (DEFS / "tpch.yaml").read_text()
    models = base.split("\nmetrics:")[0].replace("../data/tpch-sf1", str(DATA))
    return models + "\nmetrics:\n" + "\n".join(kinds) + "\n"


def compile_benchmark() -> list[tuple[str, float, float | None, str]]:
    from pantry.compile.context import QueryRequest
    from pantry.compile.render import compile_sql
    from pantry.spec.load import read_catalog
    from pantry.verify.validate import validate

    with tempfile.TemporaryDirectory() as tmp:
        defs = Path(tmp) / "metrics_defs"
        defs.mkdir()
        (defs / "generated.yaml").write_text(textwrap.dedent(generated_metrics()))
        start = time.perf_counter()
        catalog = validate(read_catalog(defs))
        load_s = time.perf_counter() - start
        request = QueryRequest(
            metrics=tuple(f"m{i}" for i in range(80)), group_by=("metric_time__month", "order__orderpriority")
        )
        compile_s, sql = timed(lambda: compile_sql(catalog, request, "duckdb"))
        snowflake_s, _ = timed(lambda: compile_sql(catalog, request, "snowflake"))
    return [
        (
            "compile 80 metrics in one query (duckdb SQL)",
            compile_s,
            None,
            f"{len(sql.splitlines())} lines of SQL; target < 1 s",
        ),
        ("compile 80 metrics in one query (snowflake SQL)", snowflake_s, None, "target < 1 s"),
        ("load + validate the 80-metric catalog", load_s, None, "includes source schema checks"),
    ]


def main() -> None:
    ensure_data()
    rows = query_benchmark() + compile_benchmark()
    print()
    print(f"| {'workload':<55} | {'Pantry (s)':>10} | {'raw limit (s)':>13} | {'ratio':>6} | note")
    print(f"|{'-' * 57}|{'-' * 12}|{'-' * 15}|{'-' * 8}|------")
    for name, ours, raw, note in rows:
        ratio = f"{ours / raw:.2f}" if raw else "-"
        raw_text = f"{raw:.3f}" if raw else "-"
        print(f"| {name:<55} | {ours:>10.3f} | {raw_text:>13} | {ratio:>6} | {note}")


if __name__ == "__main__":
    main()
