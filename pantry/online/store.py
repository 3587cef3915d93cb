"""The online store: where served values live, behind one interface.

Why an interface: the Store (``api/store.py``) is the verbs (read features, push a
partition, serve a pushed batch); what it asks of serving storage is a short list, written
here as ``OnlineStore``. Redis, standalone or a cluster, is the one kind today
(``RedisOnline``); another kind of online store plugs in by implementing the same methods,
and nothing above this module holds a Redis client (the HTTP API's health check and
Prometheus stamps ask the store too).

What stays above: which rows to push (the training read at the partition's stamp, the
entities gone since the last push) and which events a batch makes (``features/``). What is
here: how they are written and read, with bounded retries and one clear error
(``client.guarded``) when the server is down.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from functools import cached_property
from pathlib import Path
from typing import Any, TypeVar

from pantry.online.client import guarded, is_cluster
from pantry.online.raw_read import read_raw
from pantry.online.read import read_many

T = TypeVar("T")

# a read request: (view, feature names, entity keys)
Request = tuple[str, list[str], list[Any]]


class OnlineStore(ABC):
    """What the Store asks of serving storage."""

    url: str

    @abstractmethod
    def ping(self) -> None:
        """Raise unless the store answers (``/healthz``)."""

    @abstractmethod
    def pushed_stamp(self, view: str) -> int | None:
        """The epoch seconds of the last partition pushed for ``view``, or None."""

    @abstractmethod
    def push(
        self,
        view: str,
        stamp: int,
        expire: int | None,
        names: Sequence[str],
        rows: Callable[[], Iterable[tuple[Any, Sequence[Any]]]],
        gone: Callable[[int], Iterable[Any]],
        progress: Callable[[int], None] | None = None,
        doing: str = "the push",
    ) -> int:
        """Write a partition's rows (``rows()``: entity key, encoded values; called again
        when a retry writes them again) at ``stamp``, newer wins;
        the keys ``gone(previous stamp)`` names are written as nulls; then record the stamp.
        A failure leaves the stamp unrecorded, so pushing again completes it. Returns the
        number of keys written."""

    @abstractmethod
    def read(self, requests: Sequence[Request], streams: dict[str, tuple[Any, int]] | None) -> list[list[list[Any]]]:
        """Each request's rows of values, typed; a streaming view's at its stamp (``streams``)."""

    @property
    @abstractmethod
    def reads_json(self) -> bool:
        """Whether ``read_json`` answers here (else the caller reads typed values and encodes them)."""

    @abstractmethod
    def read_json(self, requests: Sequence[Request]) -> list[list[Sequence[bytes | None]]]:
        """Each request's stored values as their own JSON bytes (where ``reads_json``)."""

    @abstractmethod
    def apply_events(self, scripts: Any, events: dict[str, list[list[str]]], doing: str, view: str) -> int:
        """Fold a streaming view's events into its tiles, each event once."""


class RedisOnline(OnlineStore):
    """Redis, standalone or a cluster: ``PANTRY_REDIS_URL``, else a development
    redis-server under ``PANTRY_HOME`` started on first use."""

    def __init__(self, url: str | None, home: Path) -> None:
        self._url = url
        self._home = home

    @cached_property
    def url(self) -> str:  # type: ignore[override]
        if self._url:
            return self._url
        from pantry.online.local import ensure_local_redis

        return ensure_local_redis(self._home)

    @cached_property
    def client(self) -> Any:
        """One client (and connection pool) per store: serving reuses its connections."""
        from pantry.online.client import connect

        return connect(self.url)

    @cached_property
    def bulk(self) -> Any:
        """The pushes' client: the same retries, a longer wait for each chunk's script."""
        from pantry.online.client import connect

        return connect(self.url, timeout=60.0)

    def guarded(self, action: Callable[[], T], doing: str, view: str | None = None) -> T:
        return guarded(self.url, action, doing=doing, view=view)

    def ping(self) -> None:
        self.client.ping()

    def pushed_stamp(self, view: str) -> int | None:
        from pantry.online.layout import meta_key

        stamp = self.client.hget(meta_key(view), "stamp")
        return None if stamp is None else int(stamp)

    def push(
        self,
        view: str,
        stamp: int,
        expire: int | None,
        names: Sequence[str],
        rows: Callable[[], Iterable[tuple[Any, Sequence[Any]]]],
        gone: Callable[[int], Iterable[Any]],
        progress: Callable[[int], None] | None = None,
        doing: str = "the push",
    ) -> int:
        from pantry.online.layout import meta_key
        from pantry.online.push import push_rows, record_push

        client = self.bulk

        def write() -> int:
            previous = client.hget(meta_key(view), "stamp")
            written = push_rows(client, view, stamp, expire, names, rows(), encoded=True, progress=progress)
            if previous is not None and int(previous) < stamp:
                nulls = [(k, [None] * len(names)) for k in gone(int(previous))]
                written += push_rows(client, view, stamp, expire, names, nulls)
            record_push(client, view, stamp)
            return written

        return self.guarded(write, doing=doing, view=view)

    def read(self, requests: Sequence[Request], streams: dict[str, tuple[Any, int]] | None) -> list[list[list[Any]]]:
        client = self.client
        return self.guarded(
            lambda: read_many(client, requests, streams),
            doing="the online read",
            view=requests[0][0] if len(requests) == 1 else None,
        )

    @cached_property
    def reads_json(self) -> bool:  # type: ignore[override]
        """A standalone Redis: a cluster spreads one request's keys over slots, so it reads typed values."""
        return not is_cluster(self.client)

    def read_json(self, requests: Sequence[Request]) -> list[list[Sequence[bytes | None]]]:
        """The stored values' own text (``online/raw_read.py``)."""
        client = self.client
        return self.guarded(
            lambda: read_raw(client, requests),
            doing="the online read",
            view=requests[0][0] if len(requests) == 1 else None,
        )

    def apply_events(self, scripts: Any, events: dict[str, list[list[str]]], doing: str, view: str) -> int:
        from pantry.online.stream_tiles import apply_events

        client = self.bulk
        return self.guarded(lambda: apply_events(client, scripts, events), doing=doing, view=view)


def online_store(url: str | None, home: Path) -> OnlineStore:
    """The online store a Store serves from (``PANTRY_REDIS_URL``, or a local redis-server)."""
    return RedisOnline(url, home)
