"""Metric queries for ``pantry serve``, run in a separate worker process.

Why a process and not a thread: the online read path is an async handler that answers in
about a millisecond. A heavy metric query spends seconds in DuckDB and then in Python,
turning up to ``PANTRY_MAX_ROWS`` rows into JSON, with the GIL held. Run in the server's
own thread pool, it pushed the online p99 from 2.5 ms to 600 ms (bench/http_tail.py
busy). In a worker process it shares nothing with the online path but the CPU, and the
worker's DuckDB is held to fewer threads than the machine has cores, so a core stays free
for online reads, and the worker runs at a lower priority (nice 10).

How many workers, how long a query may wait and run, and how much memory its DuckDB may
take are ``query_pool.py``'s and ``PANTRY_QUERY_*``'s business; a worker only counts down
to the deadline it is given.

The worker answers ``(status, JSON bytes)`` rather than raising, so that no exception has
to survive pickling, and the server turns it into a response as it is.
"""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from pantry.processes import alive, started

_store: Any = None  # the worker's own Store, built once by ``_start``
_memory_limit: str | None = None  # DuckDB's memory_limit for each query (PANTRY_QUERY_MEMORY)


def query_threads() -> int:
    """DuckDB threads for a served query: all cores but one, so online reads keep one."""
    return max(1, (os.cpu_count() or 2) - 1)


def _exit_with_server(server: int) -> None:
    """A worker whose server was killed would wait for work for ever: leave with it. Why the
    server's pid and not the worker's parent: the parent is the fork server, which lives
    while any worker holds its pipe, so each would wait for the other."""
    started_at = started(server)
    while alive(server, started_at):
        time.sleep(1.0)
    os._exit(0)


def _start(
    defs: str,
    home: str,
    redis_url: str | None,
    offline_uri: str | None = None,
    memory_limit: str | None = None,
    engine: str | None = None,
    environ: dict[str, str] | None = None,
    server: int | None = None,
) -> None:
    global _store, _memory_limit
    import resource

    if environ is not None:  # the server's environment now, not the fork server's when it started
        os.environ.clear()
        os.environ.update(environ)

    from pantry.api.limits import worker_data_cap
    from pantry.api.store import Store

    _memory_limit = memory_limit
    if memory_limit:  # a hard ceiling under DuckDB's own accounting (limits.worker_data_cap)
        cap = worker_data_cap(memory_limit)
        resource.setrlimit(resource.RLIMIT_DATA, (cap, cap))
    os.nice(10)  # when the cores are short, the scheduler serves the online path first
    threading.Thread(target=_exit_with_server, args=(server or os.getppid(),), daemon=True).start()
    _store = Store(defs=defs, home=home, redis_url=redis_url, offline_uri=offline_uri, engine=engine)
    _ = _store.definitions  # validate once, at start-up, not on the first request


def json_value(value: Any) -> Any:
    """A cell of a pandas frame as a JSON value: NA and NaN are null, dates ISO text."""
    import pandas as pd

    if value is None or value is pd.NA:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "item"):
        return value.item()
    return value


def _detail(text: str) -> bytes:
    return json.dumps({"detail": text}).encode()


def run_query(params: dict[str, Any], timeout: float, deadline: float, max_rows: int) -> tuple[int, bytes]:
    """One ``GET /metrics/query``: ``(200, rows)``, or the status and detail of its failure.
    ``deadline`` (``time.time()``) counts from the request's arrival; ``timeout`` is the
    setting it came from, for the message."""
    from pantry.errors import PantryError, QueryFailed, QueryTimeout

    late = f"the query ran longer than {timeout:g} s (waiting for a worker included) and was stopped"
    remaining = deadline - time.time()
    if remaining <= 0:
        return 504, _detail(late)
    limit = params.pop("limit", None)
    capped = limit is None or limit > max_rows
    try:
        frame = _store.query(
            **params,
            limit=max_rows + 1 if capped else limit,
            timeout=remaining,
            threads=query_threads(),
            memory_limit=_memory_limit,
        )
    except QueryTimeout as err:
        return 504, _detail(f"{late} ({err.hint})" if err.hint else late)
    except QueryFailed as err:
        return 500, _detail(err.public())
    except PantryError as err:
        return 422, _detail(err.public())
    body = {
        "columns": [str(c) for c in frame.columns],
        "rows": [[json_value(v) for v in row] for row in frame.head(max_rows).itertuples(index=False)],
        "truncated": bool(capped and len(frame) > max_rows),
    }
    return 200, json.dumps(body, separators=(",", ":")).encode()


def read_online(features: list[str], rows: list[dict[str, Any]]) -> tuple[int, bytes]:
    """One large ``POST /features/online``, in a worker: the answer's JSON, or the status and
    detail of its failure. Why here: decoding and encoding tens of thousands of values holds
    the GIL; in the server, even in a thread, it made every small read wait behind it."""
    from pantry.errors import PantryError
    from pantry.online.client import RedisRefused, RedisUnavailable

    try:
        values = _store.get_online_features(features, rows)
    except RedisUnavailable as err:
        return 503, _detail(err.public())
    except RedisRefused as err:
        return 500, _detail(err.public())
    except PantryError as err:
        return 422, _detail(err.public())
    return 200, json.dumps(values, separators=(",", ":")).encode()


def _context() -> Any:
    """Workers forked from a fork server that imported Pantry once.

    Why not a fork of the server: it runs threads, and a fork copies their locks held. Why
    not spawn, as before: each spawned worker imported Pantry afresh, 1.3 CPU s, for each of
    the three workers a server starts and again for each worker replaced after a timeout
    (62 spawns, 84 CPU s, in one run of the test suite). The fork server is a new process
    with one thread that imports Pantry, then forks a worker in milliseconds; each worker
    takes the server's environment as it is at the worker's start (``_start``), as a spawned
    one did. Spawn where there is no fork server (Windows)."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["pantry.api.query_worker", "pantry.api.store"])
    return context


def worker_pool(
    defs: Path,
    home: Path,
    redis_url: str | None,
    offline_uri: str | None = None,
    memory_limit: str | None = None,
    engine: str | None = None,
) -> ProcessPoolExecutor:
    """One worker process, warmed at start."""
    pool = ProcessPoolExecutor(
        max_workers=1,
        mp_context=_context(),
        initializer=_start,
        initargs=(str(defs), str(home), redis_url, offline_uri, memory_limit, engine, dict(os.environ), os.getpid()),
    )
    pool.submit(int)  # start the worker now, so the first query does not wait for its imports
    return pool
