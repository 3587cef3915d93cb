"""Which offline store a Store writes and reads: the local DuckDB file, or Parquet on S3.

Why one switch: every reader (training reads, the push, the catalog, drift checks) and
every writer (the Dagster assets) asks this function, so ``PANTRY_OFFLINE_URI`` moves
all of them at once and nothing can read one store while writing the other.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from pantry.errors import PantryError
from pantry.offline.local_store import LocalOffline
from pantry.offline.s3_store import S3Offline
from pantry.offline.store import OfflineStore

# each kind of offline store by its URI's scheme: (uri, PANTRY_HOME) -> the store
SCHEMES: dict[str, Callable[[str, Path], OfflineStore]] = {
    "s3": lambda uri, home: S3Offline(uri, home / "cache" / "s3"),
}


def offline_store(home: Path, uri: str | None) -> OfflineStore:
    """``uri`` (PANTRY_OFFLINE_URI) ``s3://bucket/prefix``, or None for ``<home>/pantry.duckdb``."""
    if not uri:
        return LocalOffline(home / "pantry.duckdb")
    scheme, _, rest = uri.partition("://")
    if rest and scheme in SCHEMES:
        return SCHEMES[scheme](uri, home)
    raise PantryError(
        f"PANTRY_OFFLINE_URI '{uri}' is not supported",
        field="PANTRY_OFFLINE_URI",
        hint="give s3://bucket/prefix, or unset it for the local DuckDB file under PANTRY_HOME",
    )
