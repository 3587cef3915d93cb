"""The metric-query workers on real processes: a query stuck past its deadline is killed
and its worker replaced, queue time counts in the deadline, and a full queue answers at once.

``time.sleep`` stands for a query that DuckDB's interrupt cannot stop: it runs in a real
spawned worker process, which must really be killed (its pid is gone afterwards).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest

from pantry.api.query_pool import PastDeadline, QueryWorkers, QueueFull


def _pool() -> ProcessPoolExecutor:
    pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
    pool.submit(int).result()  # started, as the server's are
    return pool


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:  # a killed child not yet reaped is a zombie: dead
        return stat.read().split(")")[-1].split()[0] != "Z"


def test_a_worker_stuck_past_its_deadline_is_killed_and_replaced() -> None:
    workers = QueryWorkers(_pool, workers=1, queue=4, grace=0.3)

    async def scenario() -> tuple[int, int, float, int]:
        stuck_pid = await workers.run(os.getpid, deadline=time.time() + 30)
        started = time.perf_counter()
        with pytest.raises(PastDeadline) as late:
            await workers.run(time.sleep, 60, deadline=time.time() + 0.5)
        waited = time.perf_counter() - started
        assert late.value.waited is False
        fresh_pid = await workers.run(os.getpid, deadline=time.time() + 30)
        return stuck_pid, fresh_pid, waited, workers.killed

    try:
        stuck, fresh, waited, killed = asyncio.run(scenario())
    finally:
        workers.shutdown()
    assert killed == 1 and stuck != fresh
    assert 0.5 <= waited < 5, waited  # the deadline plus the grace, not the 60 s the query wanted
    for _ in range(50):
        if not _alive(stuck):
            break
        time.sleep(0.1)
    assert not _alive(stuck)


def test_queue_time_counts_and_a_full_queue_answers_at_once() -> None:
    workers = QueryWorkers(_pool, workers=1, queue=1, grace=5)

    async def scenario() -> list[object]:
        busy = asyncio.ensure_future(workers.run(time.sleep, 1.5, deadline=time.time() + 10))
        await asyncio.sleep(0.2)  # the worker is busy now
        waiting = asyncio.ensure_future(workers.run(os.getpid, deadline=time.time() + 0.5))  # waits, then too late
        await asyncio.sleep(0.05)
        started = time.perf_counter()
        with pytest.raises(QueueFull):  # one already waits: the queue is full
            await workers.run(os.getpid, deadline=time.time() + 10)
        assert time.perf_counter() - started < 0.1
        return list(await asyncio.gather(busy, waiting, return_exceptions=True))

    try:
        busy, waiting = asyncio.run(scenario())
    finally:
        workers.shutdown()
    assert busy is None  # time.sleep's answer: it finished in its own time
    assert isinstance(waiting, PastDeadline) and waiting.waited is True


def test_a_server_worker_takes_the_environment_at_its_start_and_leaves_with_its_server(
    shop: tuple, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server's own workers come from a fork server that imported Pantry once: each
    takes the server's environment as it is when the worker starts (a variable set or
    dropped since the fork server started is seen so), and a server killed takes its
    workers with it."""
    import signal
    import subprocess
    import sys

    from pantry.api.query_worker import worker_pool

    defs, _ = shop
    home = tmp_path / "home"
    seen = []
    for value in ("first", "second", None):
        if value is None:
            monkeypatch.delenv("PANTRY_PROBE")
        else:
            monkeypatch.setenv("PANTRY_PROBE", value)
        pool = worker_pool(defs, home, None)
        try:
            seen.append(pool.submit(os.getenv, "PANTRY_PROBE").result(timeout=120))
            parent = pool.submit(os.getppid).result(timeout=30)
        finally:
            pool.shutdown()
        assert parent != os.getpid()  # forked by the fork server, not by this process
        with open(f"/proc/{parent}/cmdline", "rb") as cmdline:
            assert b"forkserver" in cmdline.read()
    assert seen == ["first", "second", None]

    code = (
        "import os, sys, time\n"
        "from pantry.api.query_worker import worker_pool\n"
        "pool = worker_pool(sys.argv[1], sys.argv[2], None)\n"
        "print(pool.submit(os.getpid).result(timeout=120), flush=True)\n"
        "time.sleep(600)\n"
    )
    server = subprocess.Popen(
        [sys.executable, "-c", code, str(defs), str(home)], stdout=subprocess.PIPE, text=True, cwd=tmp_path
    )
    try:
        worker = int(server.stdout.readline())
        assert _alive(worker)
    finally:
        os.kill(server.pid, signal.SIGKILL)
        server.wait(timeout=30)
    for _ in range(100):
        if not _alive(worker):
            break
        time.sleep(0.1)
    assert not _alive(worker)
