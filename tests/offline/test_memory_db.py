"""A private in-memory database on the shared instance behaves as an instance of its own:
what one connection creates, no other sees; it is gone once the connection is dropped; a
forked child and concurrent threads each get what they asked for."""

from __future__ import annotations

import os
import threading
from datetime import date
from pathlib import Path

import duckdb

from pantry import Store
from pantry.offline.memory_db import private_database
from tests.conftest import write_defs


def _attached() -> set[str]:
    con = private_database()
    try:
        return {name for (name,) in con.execute("SELECT database_name FROM duckdb_databases()").fetchall()}
    finally:
        con.close()


def test_each_connection_sees_only_what_it_created() -> None:
    first, second = private_database(), private_database()
    first.execute("CREATE SCHEMA src")
    first.execute("CREATE TABLE src.orders AS SELECT 1 AS n")
    second.execute("CREATE SCHEMA src")
    second.execute("CREATE TABLE src.orders AS SELECT 2 AS n UNION ALL SELECT 3")
    assert first.execute("SELECT sum(n) FROM src.orders").fetchall() == [(1,)]
    assert second.execute("SELECT sum(n) FROM src.orders").fetchall() == [(5,)]
    first.close()
    second.close()


def test_a_dropped_connection_leaves_nothing_attached() -> None:
    before = _attached()
    con = private_database()
    con.execute("CREATE TABLE big AS SELECT range AS x FROM range(100000)")
    mine = con.execute("SELECT current_database()").fetchall()[0][0]
    assert mine not in before and mine in _attached()
    con.close()
    del con
    assert mine not in _attached()
    unclosed = private_database()
    theirs = unclosed.execute("SELECT current_database()").fetchall()[0][0]
    del unclosed  # dropped without close(): detached all the same
    assert theirs not in _attached()


def test_a_forked_child_gets_an_instance_of_its_own() -> None:
    parent = private_database()  # the parent's instance exists before the fork
    parent.execute("CREATE TABLE t AS SELECT 7 AS n")
    pid = os.fork()
    if pid == 0:  # the child: a query of its own, then out without running the parent's cleanup
        try:
            child = private_database()
            ok = child.execute("SELECT sum(range) FROM range(1000)").fetchall() == [(499500,)]
            child.close()
            os._exit(0 if ok else 1)
        except BaseException:
            os._exit(2)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert parent.execute("SELECT n FROM t").fetchall() == [(7,)]
    parent.close()


def test_threads_at_once_each_read_their_own_rows() -> None:
    wrong: list[object] = []

    def work(i: int) -> None:
        for _ in range(30):
            con = private_database()
            con.execute("CREATE SCHEMA src")
            con.execute(f"CREATE TABLE src.t AS SELECT {i} AS k, range AS v FROM range(500)")
            got = con.execute("SELECT min(k), max(k), count(*) FROM src.t").fetchall()
            con.close()
            if got != [(i, i, 500)]:
                wrong.append(got)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert wrong == []


TABLE_YAML = """
project: {name: tables, partitions: {start: 2024-01-01}}
semantic_models:
  - name: orders
    source: orders_table
    defaults: {agg_time_dimension: at}
    entities: [{name: order, type: primary, expr: id}]
    dimensions: [{name: at, type: time, type_params: {time_granularity: day}}]
    measures: [{name: revenue, agg: sum, expr: amount}]
metrics:
  - {name: revenue, type: simple, type_params: {measure: revenue}}
"""


def test_two_stores_with_table_sources_each_read_their_own_offline_store(tmp_path: Path) -> None:
    """A source that is a table of the offline store attaches that store as ``offline``, a name
    that belongs to the whole instance: each such connection keeps an instance of its own, so
    the second store reads its own table, not the first one's still attached."""
    answers = {}
    for name, amounts in (("first", [1.0, 2.0]), ("second", [10.0, 20.0, 30.0])):
        defs = write_defs(tmp_path / name, {"defs.yaml": TABLE_YAML})
        store = Store(defs=defs, home=tmp_path / name / "home")
        store.offline.path.parent.mkdir(parents=True, exist_ok=True)
        con = duckdb.connect(str(store.offline.path))
        con.execute(
            "CREATE TABLE orders_table AS SELECT * FROM (VALUES "
            + ", ".join(f"({i}, TIMESTAMP '2024-01-02 10:00:00', {a})" for i, a in enumerate(amounts))
            + ') AS t(id, "at", amount)'
        )
        con.close()
        answers[name] = store.compute_metric_days("revenue", date(2024, 1, 2), date(2024, 1, 2))["revenue"].tolist()
    assert answers == {"first": [3.0], "second": [60.0]}
