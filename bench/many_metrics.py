"""Many filtered metrics in one query: Pantry against a hand-written one-scan pivot.

80 simple metrics over TPC-H SF1 lineitem (6M rows, joined to orders for the priority),
each the revenue or the quantity of one (order priority, ship mode) pair or of one return
flag, queried together by ``metric_time__month``. Three plans, in the same run:

- Pantry: metrics of one model, time dimension and group-by share one scan, each its own
  aggregate with ``FILTER (WHERE ...)`` (``pantry/compile/fused.py``);
- one subquery per metric, FULL OUTER JOINed on the group-by: Pantry's plan before the
  fusion, and the shape of MetricFlow's (its dataflow plan joins one aggregated subquery per
  metric), run by the same DuckDB;
- the raw limit: a hand-written query, one scan with ``SUM(...) FILTER (WHERE ...)`` per
  metric.

The answers are compared cell by cell. Target (issue 26): 2x the pivot or better.
Run: ``.venv/bin/python bench/many_metrics.py`` (generates TPC-H data on first run).
"""

from __future__ import annotations

import sys
import tempfile
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pandas as pd

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent))
sys.path.insert(0, str(ROOT))

from metrics_query import DATA, ensure_data, timed_pair  # noqa: E402

PRIORITIES = ["1-URGENT", "2-HIGH", "3-MEDIUM", "4-NOT SPECIFIED", "5-LOW"]
MODES = ["AIR", "FOB", "MAIL", "RAIL", "REG AIR", "SHIP", "TRUCK"]
FLAGS = ["A", "N", "R"]
REVENUE = "l_extendedprice * (1 - l_discount)"


def metric_filters() -> list[tuple[str, str, str, str]]:
    """(name, measure, Pantry filter, hand-written condition) for 80 metrics."""
    out = []
    for measure in ("revenue", "quantity"):
        for p in PRIORITIES:
            for m in MODES:
                out.append(
                    (
                        f"{measure}_{p[0]}_{m.replace(' ', '_').lower()}",
                        measure,
                        f"{{{{ Dimension('order__orderpriority') }}}} = '{p}' AND {{{{ Dimension('line__ship_mode') }}}} = '{m}'",
                        f"o_orderpriority = '{p}' AND l_shipmode = '{m}'",
                    )
                )
    for measure in ("revenue", "quantity"):
        for f in FLAGS:
            out.append(
                (
                    f"{measure}_flag_{f.lower()}",
                    measure,
                    f"{{{{ Dimension('line__return_flag') }}}} = '{f}'",
                    f"l_returnflag = '{f}'",
                )
            )
    for measure in ("revenue", "quantity"):
        out.append(
            (
                f"{measure}_by_air",
                measure,
                "{{ Dimension('line__ship_mode') }} IN ('AIR', 'REG AIR')",
                "l_shipmode IN ('AIR', 'REG AIR')",
            )
        )
    out.append(("revenue_all", "revenue", "", "TRUE"))
    out.append(("quantity_all", "quantity", "", "TRUE"))
    assert len(out) == 80, len(out)
    return out


def growth_names() -> list[str]:
    """The 40 revenue metrics that get a month-over-month growth metric each."""
    return [n for n, measure, *_ in metric_filters() if measure == "revenue"]


def definitions() -> str:
    metrics = []
    for name, measure, where, _ in metric_filters():
        line = f"  - name: {name}\n    type: simple\n    type_params: {{measure: {measure}}}"
        if where:
            line += f'\n    filter: "{where}"'
        metrics.append(line)
    for name, _, where, _ in metric_filters():  # cumulative: each revenue filter over a trailing 3 months
        if name in growth_names():
            line = f"  - name: t3_{name}\n    type: cumulative\n    type_params: {{measure: revenue, window: 3 months}}"
            metrics.append(line + (f'\n    filter: "{where}"' if where else ""))
    for name in growth_names():  # derived, with an offset input: (this month - last month) / last month
        metrics.append(
            f"  - name: growth_{name}\n    type: derived\n    type_params:\n"
            f'      expr: "(cur - prev) / prev"\n      metrics:\n'
            f"        - {{name: {name}, alias: cur}}\n"
            f"        - {{name: {name}, alias: prev, offset_window: 1 month}}"
        )
    return (
        textwrap.dedent(f"""
    project: {{name: many_metrics}}
    semantic_models:
      - name: lineitem
        source: {DATA}/lineitem.parquet
        defaults: {{agg_time_dimension: ship_date}}
        entities:
          - {{name: line, type: primary, expr: "l_orderkey * 8 + l_linenumber"}}
          - {{name: order, type: foreign, expr: l_orderkey}}
        dimensions:
          - {{name: ship_date, type: time, expr: l_shipdate, type_params: {{time_granularity: day}}}}
          - {{name: ship_mode, type: categorical, expr: l_shipmode}}
          - {{name: return_flag, type: categorical, expr: l_returnflag}}
        measures:
          - {{name: revenue, agg: sum, expr: "{REVENUE}"}}
          - {{name: quantity, agg: sum, expr: l_quantity}}
      - name: orders
        source: {DATA}/orders.parquet
        defaults: {{agg_time_dimension: order_date}}
        entities:
          - {{name: order, type: primary, expr: o_orderkey}}
        dimensions:
          - {{name: order_date, type: time, expr: o_orderdate, type_params: {{time_granularity: day}}}}
          - {{name: orderpriority, type: categorical, expr: o_orderpriority}}
    metrics:
    """)
        + "\n".join(metrics)
        + "\n"
    )


def pivot_sql() -> str:
    aggregates = ",\n       ".join(
        f"SUM({REVENUE if measure == 'revenue' else 'l_quantity'}) FILTER (WHERE {cond}) AS {name}"
        for name, measure, _, cond in metric_filters()
    )
    return f"""SELECT CAST(date_trunc('month', l_shipdate) AS DATE) AS metric_time__month,
       {aggregates}
FROM read_parquet('{DATA}/lineitem.parquet')
LEFT JOIN read_parquet('{DATA}/orders.parquet') ON l_orderkey = o_orderkey
GROUP BY 1 ORDER BY 1"""


def growth_sql() -> str:
    """The 40 growth metrics by hand: the one-scan pivot by month, joined to itself a month
    later (every month with this month's or last month's revenue has a row)."""
    conds = {name: cond for name, measure, _, cond in metric_filters() if measure == "revenue"}
    aggregates = ",\n       ".join(f"SUM({REVENUE}) FILTER (WHERE {conds[n]}) AS {n}" for n in growth_names())
    growth = ",\n       ".join(f"(c.{n} - p.{n}) / p.{n} AS growth_{n}" for n in growth_names())
    return f"""WITH m AS (
SELECT CAST(date_trunc('month', l_shipdate) AS DATE) AS month,
       {aggregates}
FROM read_parquet('{DATA}/lineitem.parquet')
LEFT JOIN read_parquet('{DATA}/orders.parquet') ON l_orderkey = o_orderkey
GROUP BY 1)
SELECT COALESCE(c.month, CAST(p.month + INTERVAL 1 MONTH AS DATE)) AS metric_time__month,
       {growth}
FROM m AS c FULL OUTER JOIN m AS p ON c.month = CAST(p.month + INTERVAL 1 MONTH AS DATE)
ORDER BY 1"""


def trailing_sql() -> str:
    """The 40 trailing-3-month metrics by hand: one scan to a daily pivot (each filter's sum
    and row count), the days from the first row to the last plus the window, each day joined
    to the daily rows in its window; a metric is present on a day its rows reach."""
    conds = {name: cond for name, measure, _, cond in metric_filters() if measure == "revenue"}
    daily = ",\n       ".join(
        f"SUM({REVENUE}) FILTER (WHERE {conds[n]}) AS x_{n}, COUNT(*) FILTER (WHERE {conds[n]}) AS n_{n}"
        for n in growth_names()
    )
    windowed = ",\n       ".join(f"CASE WHEN SUM(d.n_{n}) > 0 THEN SUM(d.x_{n}) END AS t3_{n}" for n in growth_names())
    present = " OR ".join(f"SUM(d.n_{n}) > 0" for n in growth_names())
    return f"""WITH d AS (
SELECT CAST(l_shipdate AS DATE) AS day,
       {daily}
FROM read_parquet('{DATA}/lineitem.parquet')
LEFT JOIN read_parquet('{DATA}/orders.parquet') ON l_orderkey = o_orderkey
GROUP BY 1),
s AS (SELECT CAST(unnest(generate_series(MIN(day), MAX(day) + INTERVAL 3 MONTH - INTERVAL 1 DAY, INTERVAL 1 DAY)) AS DATE) AS ds FROM d)
SELECT s.ds AS metric_time__day,
       {windowed}
FROM s JOIN d ON d.day <= s.ds AND d.day > CAST(s.ds - INTERVAL 3 MONTH AS DATE)
GROUP BY s.ds HAVING {present}
ORDER BY 1"""


@contextmanager
def metricflow_shape(spine_join_over_rows: bool = False) -> Iterator[None]:
    """Pantry with its sharing switched off: one subquery per metric or input, joined (and,
    for cumulative metrics, every row joined to every day its window reaches)."""
    import pantry.compile.cumulative as cumulative
    import pantry.compile.query as query

    shareable, fuse = cumulative.shareable, query.Compiler._fuse
    query.Compiler._fuse = lambda self, parts: (parts, [])
    if spine_join_over_rows:
        cumulative.shareable = query.shareable = lambda measure: False
    try:
        yield
    finally:
        cumulative.shareable = query.shareable = shareable
        query.Compiler._fuse = fuse


def compare(
    store, con, title: str, names: list[str], by: str, hand: str, labels: tuple[str, str, str], **shape
) -> None:  # noqa: ANN001
    """Pantry, MetricFlow's plan shape and the hand-written query, timed in one run, their
    answers compared cell by cell, printed as a table."""
    run = lambda: store.query(names, group_by=[by])  # noqa: E731
    run(), con.execute(hand).fetchall()  # warm: catalog, page cache
    ours_s, ours, hand_s, theirs = timed_pair(run, lambda: con.execute(hand).df())
    with metricflow_shape(**shape):
        before_s, before, _, _ = timed_pair(run, lambda: None, runs=1 if shape else 3)
    for frame in (ours, before, theirs):
        frame[by] = pd.to_datetime(frame[by])
    expected = theirs.set_index(by)[names].astype(float)
    for frame in (ours, before):
        pd.testing.assert_frame_equal(frame.set_index(by)[names].astype(float), expected, check_exact=False, rtol=1e-9)
    print(f"\n{title}, {len(ours)} rows; answers identical\n")
    print("| plan | seconds | x hand-written |")
    print("|---|---:|---:|")
    for label, seconds in zip(labels, (ours_s, before_s, hand_s)):
        print(f"| {label} | {seconds:.2f} | {seconds / hand_s:.1f} |")


def growth_run(store, con) -> None:  # noqa: ANN001
    compare(
        store,
        con,
        "40 month-over-month growth metrics (derived, an offset input each) by month",
        [f"growth_{n}" for n in growth_names()],
        "metric_time__month",
        growth_sql(),
        (
            "Pantry (derived metrics on top of one shared scan; last month's values are its groups moved)",
            "one subquery per input, all joined (MetricFlow's plan shape)",
            "hand-written: one-scan pivot joined to itself a month later (raw DuckDB)",
        ),
    )


def trailing_run(store, con) -> None:  # noqa: ANN001
    compare(
        store,
        con,
        "40 trailing-3-month metrics (cumulative, one filter each) by day",
        [f"t3_{n}" for n in growth_names()],
        "metric_time__day",
        trailing_sql(),
        (
            "Pantry (one spine join over daily partials, FILTER per metric)",
            "one spine join over the rows per metric (MetricFlow's plan shape; Pantry's before)",
            "hand-written: one-scan daily pivot, each day joined to its window (raw DuckDB)",
        ),
        spine_join_over_rows=True,
    )


def main() -> None:
    from pantry import Store

    ensure_data()
    names = [n for n, *_ in metric_filters()]
    with tempfile.TemporaryDirectory() as tmp:
        defs = Path(tmp) / "metrics_defs"
        defs.mkdir()
        (defs / "many.yaml").write_text(definitions())
        store = Store(defs=defs, home=Path(tmp) / "home")
        con = duckdb.connect()
        pivot = pivot_sql()
        query = lambda: store.query(names, group_by=["metric_time__month"])  # noqa: E731
        query(), con.execute(pivot).fetchall()  # warm: catalog, page cache
        ours_s, ours, pivot_s, theirs = timed_pair(query, lambda: con.execute(pivot).df())
        with metricflow_shape():  # one subquery per metric, joined
            joined_s, joined, _, _ = timed_pair(query, lambda: None, runs=3)
        growth_run(store, con)
        trailing_run(store, con)
    for frame in (ours, joined, theirs):
        frame["metric_time__month"] = pd.to_datetime(frame["metric_time__month"])
    expected = theirs.set_index("metric_time__month").astype(float)
    for frame in (ours, joined):
        got = frame.set_index("metric_time__month")[names].astype(float)
        pd.testing.assert_frame_equal(got, expected[names], check_exact=False, rtol=1e-9)
    print(f"\n80 filtered metrics by month, TPC-H SF1 ({len(ours)} months; answers identical)\n")
    print("| plan | seconds | x pivot |")
    print("|---|---:|---:|")
    for label, seconds in (
        ("Pantry (shared scans, FILTER per metric)", ours_s),
        ("one subquery per metric, joined (MetricFlow's plan shape)", joined_s),
        ("hand-written one-scan pivot (raw DuckDB)", pivot_s),
    ):
        print(f"| {label} | {seconds:.2f} | {seconds / pivot_s:.1f} |")


if __name__ == "__main__":
    main()
