"""``pantry ingest``: Redis Streams ``pantry:ingest:<model>`` into the offline store.

Why this order of steps, for every batch: read (XREADGROUP, consumer group ``pantry``),
write the good rows durably (``store.push``), move the bad ones to
``pantry:ingest:<model>:dead`` with their reason, and only then XACK. A consumer killed at
any point leaves its entries pending; the next consumer (or the same one restarted) takes
them back (its own pending list first, then XAUTOCLAIM of entries idle too long), and
writing them again is harmless because a model's rows are read first-row-per-event-id.
So nothing is lost and nothing counts twice.

Why a batch is written, turned into tile events and applied while the next batch is read:
reading is Redis and parsing, writing is mostly waiting on the disk (two fsyncs), the
events are DuckDB, and applying them is mostly waiting on Redis to run the tile script.
One thread per stage (write, events, serve) takes batch ``k`` while the consumer reads
batch ``k+1``; each stage takes batches in the order they were read, and batch ``k`` is
acknowledged only once its tiles are in, so the order above holds for every entry
(durable, served, acknowledged), and a failure leaves the batch pending, to be written or
applied again (a model's rows count first-row-per-event-id, tiles each event once).

Why poison entries go to the dead letters and never stop the stream: an entry that cannot
be read (invalid UTF-8, a field past ``PANTRY_MAX_FIELD_BYTES``) or that made the push
itself fail would stay pending, crash every restart and every consumer that claims it, and
block the good entries behind it. Such an entry is dead-lettered with its reason; a batch
whose push fails is retried entry by entry so that only the culprit goes; and an entry
delivered ``max_deliveries`` times (``PANTRY_INGEST_MAX_DELIVERIES``) without being
acknowledged, which means it crashed or stalled a consumer each time, is dead-lettered
before it is tried again. A server that is down (Redis, S3) is not the entry's fault: that
error stops the consumer with its reason, and the entries stay pending.

Kafka or Kinesis feed the same path: a connector (Kafka Connect's Redis sink, or a Lambda
on the Kinesis stream) XADDs each record's fields to ``pantry:ingest:<model>``; or a small
consumer calls ``store.push`` per batch and commits its offset after it returns.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from pantry.ingest.rows import max_field_bytes

GROUP = "pantry"
DEFAULT_MAX_DELIVERIES = 5
IN_FLIGHT = 3  # batches being written, turned into tile events or applied, not yet acknowledged
CLAIM_EVERY_S = 1.0  # while batches are being served, how often a consumer claims stopped ones' entries
PREVIEW_CHARS = 1_000  # a dead letter keeps this much of each value, not a 100 MB field


def stream_key(model: str) -> str:
    return f"pantry:ingest:{model}"


def dead_key(model: str) -> str:
    return f"pantry:ingest:{model}:dead"


@dataclass
class Counts:
    accepted: int = 0
    refused: int = 0
    acked: int = 0
    claimed: int = 0


def _decode(fields: dict[Any, Any]) -> dict[str, str]:
    """An entry's fields as text; UnicodeDecodeError names the field that is not UTF-8."""
    try:  # the common case, every name and value UTF-8 bytes: one comprehension (a drain's hot loop)
        return {k.decode(): v.decode() for k, v in fields.items()}
    except (UnicodeDecodeError, AttributeError):
        pass  # find the field at fault, or text given as str, the slow way
    decoded: dict[str, str] = {}
    for k, v in fields.items():
        name = k.decode("utf-8", "replace") if isinstance(k, bytes) else str(k)
        try:
            if isinstance(k, bytes):
                k.decode()
            decoded[name] = v.decode() if isinstance(v, bytes) else str(v)
        except UnicodeDecodeError as err:
            raise UnicodeDecodeError(err.encoding, err.object, err.start, err.end, f"field '{name}'") from None
    return decoded


def _as_table(entries: list[tuple[Any, dict[Any, Any]]]) -> pa.Table | None:
    """A batch of entries as one table of text columns, or None unless every entry has the
    same field names, all UTF-8 and within ``PANTRY_MAX_FIELD_BYTES`` (the usual batch).

    Why: a drain reads thousands of entries a second, and turning each into a dict of
    ``str`` for a pandas frame cost more than checking and storing them. pyarrow checks the
    UTF-8 and the sizes of whole columns at once; any batch that is not plain goes entry by
    entry instead (``_decode``, and the push's row checks), which say which entry is wrong."""
    if not entries:
        return None
    names = tuple(entries[0][1])
    if not names or not all(type(n) is bytes for n in names) or any(tuple(f) != names for _, f in entries):
        return None
    try:
        columns = [n.decode() for n in names]
        if len({c.lower() for c in columns}) != len(columns):
            return None
        limit = max_field_bytes()
        arrays = []
        for values in zip(*(f.values() for _, f in entries)):
            array = pa.array(values, pa.binary())
            if pc.max(pc.binary_length(array)).as_py() > limit:
                return None
            arrays.append(array.cast(pa.string()))  # raises on bytes that are not UTF-8
    except (UnicodeDecodeError, pa.ArrowInvalid, pa.ArrowTypeError):
        return None
    return pa.Table.from_arrays(arrays, names=columns)


def _preview(fields: dict[Any, Any]) -> dict[Any, Any]:
    """A dead letter's copy of an entry: each value cut to ``PREVIEW_CHARS``, bytes kept as bytes."""
    return {k: (v[:PREVIEW_CHARS] if isinstance(v, bytes | str) else str(v)[:PREVIEW_CHARS]) for k, v in fields.items()}


def _row(rows: pa.Table | list[dict[str, str]], i: int) -> pa.Table | list[dict[str, str]]:
    return rows.slice(i, 1) if isinstance(rows, pa.Table) else [rows[i]]


def _id(entry_id: Any) -> str:
    return entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)


def _transient(err: Exception) -> bool:
    """A server that is down or refusing (Redis, S3: PantryError with bounded retries done,
    or a connection error), not an entry that cannot be stored."""
    from pantry.errors import PantryError

    return isinstance(err, PantryError | ConnectionError | TimeoutError)


class StreamConsumer:
    """One consumer of the ``pantry`` group over the streams of some push models."""

    def __init__(
        self,
        store: Any,
        models: list[str],
        client: Any,
        name: str | None = None,
        batch: int = 500,
        block_ms: int = 1000,
        claim_idle_ms: int = 30_000,
        max_deliveries: int | None = None,
    ) -> None:
        from pantry.ingest.push import push_model
        from pantry.settings import env_number

        catalog = store.definitions
        for model in models:
            push_model(catalog, model)  # every model named takes pushes, or a clear error now
        self.store = store
        self.models = models
        self.client = client
        self.name = name or f"{socket.gethostname()}-{os.getpid()}"
        self.batch = batch
        self.block_ms = block_ms
        self.claim_idle_ms = claim_idle_ms
        self.max_deliveries = max_deliveries or int(
            env_number("PANTRY_INGEST_MAX_DELIVERIES", DEFAULT_MAX_DELIVERIES, int)
        )
        self.counts = Counts()
        self._resumed: set[str] = set()  # models whose own pending entries are handled
        self._writing: ThreadPoolExecutor | None = None  # a batch's checks and durable write
        self._preparing: ThreadPoolExecutor | None = None  # a durable batch's tile events (DuckDB)
        self._serving: ThreadPoolExecutor | None = None  # applies them in Redis, batch after batch
        self._inflight: deque[Future] = deque()  # batches being written, served and acknowledged, in order
        self._claimed_at = 0.0  # time.monotonic() of the last claim round
        self._counting = threading.Lock()  # counts change on the reading and the writing thread
        for model in models:
            try:  # from the start of the stream: entries added before the first consumer count
                self.client.xgroup_create(stream_key(model), GROUP, id="0", mkstream=True)
            except Exception as err:  # noqa: BLE001 - BUSYGROUP: the group exists, as it should
                if "BUSYGROUP" not in str(err):
                    raise

    def _dead(self, model: str, entry_id: Any, fields: dict[Any, Any], reason: str) -> None:
        self.client.xadd(dead_key(model), {**_preview(fields), "__reason": reason, "__entry": _id(entry_id)})
        with self._counting:
            self.counts.refused += 1

    def _delivered_too_often(self, model: str, entries: list[tuple[Any, dict[Any, Any]]]) -> set[str]:
        """Ids among ``entries`` (pending ones) delivered ``max_deliveries`` times or more."""
        if not entries:
            return set()
        ids = sorted((_id(e[0]) for e in entries), key=lambda i: tuple(int(p) for p in i.split("-")))
        pending = self.client.xpending_range(
            stream_key(model), GROUP, ids[0], ids[-1], len(entries) + self.batch, consumername=self.name
        )
        return {_id(p["message_id"]) for p in pending if p["times_delivered"] > self.max_deliveries}

    def _handle(self, model: str, entries: list[tuple[Any, dict[Any, Any]]], redelivered: bool = False) -> None:
        """Durable rows, dead letters, then the acknowledgement: in that order."""
        if not entries:
            return
        worn = self._delivered_too_often(model, entries) if redelivered else set()
        fresh = []
        for entry_id, fields in entries:
            if _id(entry_id) in worn:
                self._dead(
                    model,
                    entry_id,
                    fields,
                    f"delivered more than {self.max_deliveries} times without being stored: it crashed or stalled "
                    "a consumer each time (PANTRY_INGEST_MAX_DELIVERIES)",
                )
            else:
                fresh.append((entry_id, fields))
        table = _as_table(fresh)
        if table is not None:
            ids, rows = [entry_id for entry_id, _ in fresh], table
        else:
            ids, rows = [], []
            for entry_id, fields in fresh:
                try:
                    rows.append(_decode(fields))
                    ids.append(entry_id)
                except UnicodeDecodeError as err:
                    self._dead(model, entry_id, fields, f"{err.reason} is not UTF-8 text (byte {err.start})")
        while len(self._inflight) >= IN_FLIGHT:  # the oldest batch: served and acknowledged first
            self._settle()
        if self._writing is None or self._serving is None or self._preparing is None:
            self._writing = ThreadPoolExecutor(1, thread_name_prefix="pantry-stream-write")
            self._preparing = ThreadPoolExecutor(1, thread_name_prefix="pantry-stream-events")
            self._serving = ThreadPoolExecutor(1, thread_name_prefix="pantry-stream-serve")
        store, raw = self.store, dict(entries)
        # one thread per stage: batches are written, prepared and reach Redis in the order they were read
        read = [e[0] for e in entries]
        before = self._inflight[-1] if self._inflight else None

        def serve() -> None:  # the serving thread acknowledges too: the reading thread never waits for it
            if before is not None:
                before.result()  # a batch before this one failed: this one stays pending as well
            for result, events in prepared.result():
                store.serve_events(result, events)
            self._ack(model, read)

        stored = self._writing.submit(self._store, model, ids, rows, raw)
        prepared = self._preparing.submit(lambda: [(r, store.pushed_events(r)) for r in stored.result()])
        self._inflight.append(self._serving.submit(serve))

    def _settle(self) -> None:
        """Wait for the oldest batch in flight to be served and acknowledged; an error serving
        it is raised here and the batch stays pending."""
        self._inflight[0].result()
        self._inflight.popleft()

    def _ack(self, model: str, ids: list[Any]) -> None:
        self.client.xack(stream_key(model), GROUP, *ids)
        with self._counting:
            self.counts.acked += len(ids)

    def flush(self) -> None:
        """Wait for every batch whose tiles are being applied, acknowledging each in turn. An
        error applying them is raised here, and that batch stays pending (each event counts
        once, so a redelivery applies it again)."""
        while self._inflight:
            self._settle()

    def close(self) -> None:
        """Acknowledge what is served, and stop the serving thread."""
        try:
            self.flush()
        finally:
            self._stop_threads(cancel=False)

    def _stop_threads(self, cancel: bool) -> None:
        """Stop the event and serving threads (``cancel``: batches not yet started are dropped)."""
        for pool in (self._writing, self._preparing, self._serving):
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=cancel)
        self._writing = self._preparing = self._serving = None

    def _store(
        self, model: str, ids: list[Any], rows: pa.Table | list[dict[str, str]], raw: dict[Any, dict[Any, Any]]
    ) -> list[Any]:
        """Push the rows (row ``i`` is entry ``ids[i]``, ``raw`` its fields as read) as one
        batch, durable but not yet served; if the push itself fails, entry by entry, so that
        only the entry at fault is dead-lettered. Returns the pushes whose rows the online
        tiles still owe."""
        if not ids:
            return []
        try:
            result = self.store.push(model, rows, serve=False)
        except Exception as err:  # noqa: BLE001 - any failure of a bad entry must not stop the stream
            if _transient(err):
                raise
            if len(ids) == 1:
                self._dead(model, ids[0], raw[ids[0]], f"the push failed on it: {type(err).__name__}: {str(err)[:300]}")
                return []
            return [r for i in range(len(ids)) for r in self._store(model, [ids[i]], _row(rows, i), raw)]
        for index, reason in result.refused:
            self._dead(model, ids[index], raw[ids[index]], reason)
        with self._counting:
            self.counts.accepted += result.accepted
        return [result]

    def _own_pending(self, model: str) -> list[tuple[Any, dict[Any, Any]]]:
        """Entries this consumer read before it stopped and never acknowledged."""
        reply = self.client.xreadgroup(GROUP, self.name, {stream_key(model): "0"}, count=self.batch)
        return reply[0][1] if reply else []

    def _claim(self, model: str) -> list[tuple[Any, dict[Any, Any]]]:
        """Entries a dead consumer left pending for longer than ``claim_idle_ms``."""
        reply = self.client.xautoclaim(
            stream_key(model), GROUP, self.name, self.claim_idle_ms, start_id="0-0", count=self.batch
        )
        entries = [e for e in reply[1] if e[1] is not None]  # deleted entries come back as None
        self.counts.claimed += len(entries)
        return entries

    def step(self) -> int:
        """One round over every model: this consumer's own pending entries until none are left
        (a restart resumes there; afterwards every entry it reads is handled before the next
        read), entries a stopped consumer left, then new entries. Returns how many were handled."""
        handled = 0
        # a batch being served is still pending, this consumer's own: reading the pending list
        # or claiming idle entries would take it again, so either first waits for it. Claims
        # then run once a second while the stream is busy, not every round.
        claims = not self._inflight or time.monotonic() - self._claimed_at >= CLAIM_EVERY_S
        for model in self.models:
            if model not in self._resumed:
                self.flush()
                pending = self._own_pending(model)
                self._handle(model, pending, redelivered=True)
                handled += len(pending)
                if len(pending) < self.batch:
                    self._resumed.add(model)
            if claims:
                self.flush()
                claimed = self._claim(model)
                self._handle(model, claimed, redelivered=True)
                handled += len(claimed)
        if claims:
            self._claimed_at = time.monotonic()
        # with a batch's tiles still being applied, do not block: an idle stream acknowledges it now
        block = None if self._inflight else self.block_ms
        reply = self.client.xreadgroup(
            GROUP, self.name, {stream_key(m): ">" for m in self.models}, count=self.batch, block=block
        )
        for key, entries in reply or []:
            model = (key.decode() if isinstance(key, bytes) else key).removeprefix("pantry:ingest:")
            self._handle(model, entries)
            handled += len(entries)
        if not reply:
            self.flush()
        return handled

    def run(self, until: Callable[[], bool] | None = None, idle_rounds: int | None = None) -> Counts:
        """Consume until ``until()`` is true, or after ``idle_rounds`` rounds with nothing new."""
        idle = 0
        try:
            while until is None or not until():
                if self.step():
                    idle = 0
                else:
                    idle += 1
                    if idle_rounds is not None and idle >= idle_rounds:
                        break
                    time.sleep(0.01)
        except BaseException:  # failing or stopped: what is not acknowledged stays pending
            self._stop_threads(cancel=True)
            self._inflight.clear()
            raise
        self.close()
        return self.counts
