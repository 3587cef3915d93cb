"""Where pushed rows are kept: one Parquet file per accepted batch, under
``PANTRY_HOME/ingest/<model>/``.

Why files, written once and renamed into place: a push must be durable before it returns,
and a reader must never see half a batch. A batch is written to a temporary name, flushed
to disk, then renamed; a crash leaves either the whole batch or nothing. The model's
source view reads its declared source and these files together, keeping the first row of
each event id, so a batch pushed twice (or redelivered) counts once.
"""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

BATCH_GLOB = "*.parquet"


def ingest_dir(home: Path, model: str) -> Path:
    return home / "ingest" / model


def _name() -> str:
    return f"{time.time_ns():020d}-{uuid.uuid4().hex[:8]}.parquet"


def append_batch(home: Path, model: str, table: pa.Table, offline: object = None) -> str:
    """Write one batch durably; the name sorts by arrival time, so "first wins" holds. With
    the offline store on S3, the batch is one PUT under ``<prefix>/ingest/<model>/``: S3
    stores an object whole or not at all, and answers only once it is stored."""
    if getattr(offline, "kind", None) == "s3":
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink)
        key = offline.key("ingest", model, _name())  # type: ignore[attr-defined]
        offline._call("push rows", offline._put(key, sink.getvalue().to_pybytes()))  # type: ignore[attr-defined]
        return key
    folder = ingest_dir(home, model)
    folder.mkdir(parents=True, exist_ok=True)
    name = _name()
    tmp = folder / f".{name}.tmp"
    with open(tmp, "wb") as handle:
        pq.write_table(table, handle)
        handle.flush()
        os.fsync(handle.fileno())
    final = folder / name
    os.replace(tmp, final)
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)  # the rename itself survives a crash
    finally:
        os.close(fd)
    return str(final)


def batches(home: Path, model: str, offline: object = None) -> list[str]:
    """Local paths of every batch, in arrival order (S3 objects through the ETag cache)."""
    if getattr(offline, "kind", None) == "s3":
        objects = sorted(offline.list(f"ingest/{model}/"), key=lambda o: o.key)  # type: ignore[attr-defined]
        return offline.cached(objects)  # type: ignore[attr-defined]
    folder = ingest_dir(home, model)
    return [str(p) for p in sorted(folder.glob(BATCH_GLOB))] if folder.is_dir() else []
