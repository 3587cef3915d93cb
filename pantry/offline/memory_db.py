"""In-memory DuckDB databases of their own, on one shared instance per process.

Why: ``duckdb.connect()`` builds a whole DuckDB instance (its function catalog and the
built-in ICU, JSON and Parquet extensions), about 20 ms of CPU, and Pantry opened one for
every metric partition, training read and validation. Attaching an empty in-memory
database to an instance that already exists takes about 1 ms. Each connection here is a
cursor of the shared instance that ``USE``s a database of its own, so the schemas, views
and tables it creates are its own, as with an instance of its own; the database is detached
when the connection is dropped.

Settings belong to an instance, not a database: a connection that needs its own (a thread
count, a memory cap, the lock-down of a metric query) still opens an instance of its own
(``offline/sources.connect``).
"""

from __future__ import annotations

import itertools
import os
import threading
import weakref

import duckdb

_lock = threading.RLock()  # a finalizer may run, through the garbage collector, under the lock
_names = itertools.count()
_shared: duckdb.DuckDBPyConnection | None = None


def _forgotten_in_child() -> None:
    """A forked child (Dagster's step processes, the HTTP server's query workers) makes an
    instance of its own, since an instance's threads do not survive a fork, and a lock of its
    own, since another thread may have held the parent's at the fork."""
    global _lock, _shared
    _lock, _shared = threading.RLock(), None


os.register_at_fork(after_in_child=_forgotten_in_child)


def _instance() -> duckdb.DuckDBPyConnection:
    """This process's shared instance, made on first use."""
    global _shared
    with _lock:
        if _shared is None:
            _shared = duckdb.connect()
        return _shared


def _detach(pid: int, name: str) -> None:
    if pid != os.getpid():
        return  # a forked child's copy of the connection: the database is its parent's
    with _lock:
        cursor = _instance().cursor()
    try:
        cursor.execute(f"DETACH DATABASE IF EXISTS {name}")
    finally:
        cursor.close()


def private_database() -> duckdb.DuckDBPyConnection:
    """A connection whose default database is a new, empty in-memory database of its own."""
    name = f"pantry_private_{next(_names)}"
    with _lock:
        con = _instance().cursor()
    try:
        con.execute(f"ATTACH ':memory:' AS {name}")
        con.execute(f"USE {name}")
    except BaseException:
        con.close()
        raise
    weakref.finalize(con, _detach, os.getpid(), name).atexit = False  # at exit the instance goes whole
    return con
