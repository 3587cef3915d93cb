"""Which offline store a Store writes and reads: the local DuckDB file, or Parquet on S3.

Why one switch: every reader (training reads, the push, the catalog, drift checks) and
every writer (the Dagster assets) asks this function, so ``PANTRY_OFFLINE_URI`` moves
all of them at once and nothing can read one store while writing the other.
"""

from __future__ import annotations

from pathlib import Path

from pantry.errors import PantryError
from pantry.offline.local_store import LocalOffline
from pantry.offline.s3_store import S3Offline

OfflineTables = LocalOffline | S3Offline


def offline_store(home: Path, uri: str | None) -> OfflineTables:
    """``uri`` (PANTRY_OFFLINE_URI) ``s3://bucket/prefix``, or None for ``<home>/pantry.duckdb``."""
    if not uri:
        return LocalOffline(home / "pantry.duckdb")
    if uri.startswith("s3://"):
        return S3Offline(uri, home / "cache" / "s3")
    raise PantryError(
        f"PANTRY_OFFLINE_URI '{uri}' is not supported",
        field="PANTRY_OFFLINE_URI",
        hint="give s3://bucket/prefix, or unset it for the local DuckDB file under PANTRY_HOME",
    )
