"""``pantry ingest``: Redis Streams ``pantry:ingest:<model>`` into the offline store.

Why this order of steps, for every batch: read (XREADGROUP, consumer group ``pantry``),
write the good rows durably (``store.push``), move the bad ones to
``pantry:ingest:<model>:dead`` with their reason, and only then XACK. A consumer killed at
any point leaves its entries pending; the next consumer (or the same one restarted) takes
them back (its own pending list first, then XAUTOCLAIM of entries idle too long), and
writing them again is harmless because a model's rows are read first-row-per-event-id.
So nothing is lost and nothing counts twice.

Kafka or Kinesis feed the same path: a connector (Kafka Connect's Redis sink, or a Lambda
on the Kinesis stream) XADDs each record's fields to ``pantry:ingest:<model>``; or a small
consumer calls ``store.push`` per batch and commits its offset after it returns.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

GROUP = "pantry"


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
    return {
        (k.decode() if isinstance(k, bytes) else str(k)): (v.decode() if isinstance(v, bytes) else str(v))
        for k, v in fields.items()
    }


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
    ) -> None:
        from pantry.ingest.push import push_model

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
        self.counts = Counts()
        self._resumed: set[str] = set()  # models whose own pending entries are handled
        for model in models:
            try:  # from the start of the stream: entries added before the first consumer count
                self.client.xgroup_create(stream_key(model), GROUP, id="0", mkstream=True)
            except Exception as err:  # noqa: BLE001 - BUSYGROUP: the group exists, as it should
                if "BUSYGROUP" not in str(err):
                    raise

    def _handle(self, model: str, entries: list[tuple[Any, dict[Any, Any]]]) -> None:
        """Durable rows, dead letters, then the acknowledgement: in that order."""
        if not entries:
            return
        ids = [e[0] for e in entries]
        rows = [_decode(fields) for _, fields in entries]
        result = self.store.push(model, rows)
        for index, reason in result.refused:
            entry_id = ids[index].decode() if isinstance(ids[index], bytes) else str(ids[index])
            self.client.xadd(dead_key(model), {**rows[index], "__reason": reason, "__entry": entry_id})
        self.client.xack(stream_key(model), GROUP, *ids)
        self.counts.accepted += result.accepted
        self.counts.refused += len(result.refused)
        self.counts.acked += len(ids)

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
        for model in self.models:
            if model not in self._resumed:
                pending = self._own_pending(model)
                self._handle(model, pending)
                handled += len(pending)
                if len(pending) < self.batch:
                    self._resumed.add(model)
            claimed = self._claim(model)
            self._handle(model, claimed)
            handled += len(claimed)
        reply = self.client.xreadgroup(
            GROUP, self.name, {stream_key(m): ">" for m in self.models}, count=self.batch, block=self.block_ms
        )
        for key, entries in reply or []:
            model = (key.decode() if isinstance(key, bytes) else key).removeprefix("pantry:ingest:")
            self._handle(model, entries)
            handled += len(entries)
        return handled

    def run(self, until: Callable[[], bool] | None = None, idle_rounds: int | None = None) -> Counts:
        """Consume until ``until()`` is true, or after ``idle_rounds`` rounds with nothing new."""
        idle = 0
        while until is None or not until():
            if self.step():
                idle = 0
            else:
                idle += 1
                if idle_rounds is not None and idle >= idle_rounds:
                    break
                time.sleep(0.01)
        return self.counts
