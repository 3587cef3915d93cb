"""The metric-query workers of ``pantry serve``: a fixed number of processes, a bounded
queue, and a deadline that kills.

Why processes that can be killed: DuckDB's ``interrupt()`` stops most queries within
milliseconds, but not one stuck inside a function building a gigabyte string; such a query
once held the only worker for six minutes while everything behind it waited. A worker still
busy ``grace`` seconds past its query's deadline is killed and replaced, and its query
answers 504.

Why the deadline starts when the request arrives: a query that waited in the queue has used
its time as surely as one that ran, and a caller cares about the answer's total wait. A
queue that is full answers 429 at once instead of making every caller wait behind it.

Why one single-process pool per worker: killing a process breaks the pool it belongs to and
every query running in it; with one pool per worker, a kill touches only its own query.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any


class QueueFull(Exception):
    """Every worker is busy and ``queue`` queries already wait (HTTP 429)."""


class PastDeadline(Exception):
    """The query waited or ran past its deadline (HTTP 504); ``waited`` says which."""

    def __init__(self, waited: bool) -> None:
        super().__init__("waited" if waited else "ran")
        self.waited = waited


class WorkerStopped(Exception):
    """The worker died under the query (HTTP 503); a new one takes the next query."""


class QueryWorkers:
    """``workers`` processes made by ``start``; at most ``queue`` queries wait for one."""

    def __init__(self, start: Callable[[], ProcessPoolExecutor], workers: int, queue: int, grace: float = 2.0) -> None:
        self._start = start
        self.queue = queue
        self.grace = grace
        self._pools: list[ProcessPoolExecutor | None] = [None] * workers
        self._idle: asyncio.Queue[int] | None = None
        self._waiting = 0
        self.killed = 0  # workers killed past their deadline, for the logs and the tests

    def warm(self) -> None:
        """Start every worker now, so the first queries do not wait for their imports."""
        for slot in range(len(self._pools)):
            self._pool(slot)

    def _pool(self, slot: int) -> ProcessPoolExecutor:
        pool = self._pools[slot]
        if pool is None:
            pool = self._pools[slot] = self._start()
        return pool

    def _idle_slots(self) -> asyncio.Queue[int]:
        if self._idle is None:  # made on first use, inside the server's event loop
            self._idle = asyncio.Queue()
            for slot in range(len(self._pools)):
                self._idle.put_nowait(slot)
        return self._idle

    def _replace(self, slot: int, kill: bool) -> None:
        pool, self._pools[slot] = self._pools[slot], None
        if pool is None:
            return
        if kill:
            for process in list(getattr(pool, "_processes", {}).values()):
                process.kill()
            self.killed += 1
        pool.shutdown(wait=False, cancel_futures=True)
        self._pool(slot)  # its successor starts warming now, not on the next query

    async def run(self, fn: Callable[..., Any], *args: Any, deadline: float) -> Any:
        """``fn(*args)`` in a free worker, before ``deadline`` (``time.time()`` seconds)."""
        idle = self._idle_slots()
        if idle.empty() and self._waiting >= self.queue:
            raise QueueFull
        self._waiting += 1
        try:
            slot = await asyncio.wait_for(idle.get(), max(0.0, deadline - time.time()))
        except TimeoutError:
            raise PastDeadline(waited=True) from None
        finally:
            self._waiting -= 1
        try:
            try:  # a worker that died between queries breaks its pool: found here, at submit
                future = asyncio.get_running_loop().run_in_executor(self._pool(slot), fn, *args)
                return await asyncio.wait_for(future, max(0.0, deadline - time.time()) + self.grace)
            except TimeoutError:
                self._replace(slot, kill=True)
                raise PastDeadline(waited=False) from None
            except BrokenProcessPool:
                self._replace(slot, kill=False)
                raise WorkerStopped from None
        finally:
            idle.put_nowait(slot)

    def shutdown(self) -> None:
        for slot, pool in enumerate(self._pools):
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)
                self._pools[slot] = None
