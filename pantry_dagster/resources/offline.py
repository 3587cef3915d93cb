"""The offline store as a Dagster resource: where definitions are read and partitions written.

Why a thin wrapper: tests and deployments point Pantry at another folder, home or S3 URI
by configuration (``EnvVar``), never by patching. All the logic stays in ``pantry``:
``offline_uri`` picks the local DuckDB file or Parquet on S3 (``pantry.offline.location``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg
import duckdb

from pantry import Store
from pantry.offline.local_store import LocalOffline


def default_defs() -> str:
    return os.environ.get("PANTRY_DEFS", "./metrics_defs")


def default_home() -> str:
    return os.environ.get("PANTRY_HOME", "./.pantry")


class OfflineStore(dg.ConfigurableResource):
    """Where definitions are read from and where metric partitions and tiles are written."""

    defs: str = default_defs()
    home: str = default_home()
    # empty: PANTRY_OFFLINE_URI when the run starts, else the DuckDB file under ``home``
    offline_uri: str = ""
    # empty: PANTRY_ENGINE when the run starts, else the embedded DuckDB (docs/engines.md)
    engine: str = ""

    def store(self) -> Store:
        return Store(defs=self.defs, home=self.home, offline_uri=self.offline_uri or None, engine=self.engine or None)

    @contextmanager
    def connection(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A write connection to the local DuckDB file (waits a bounded time for its lock)."""
        offline = self.store().offline
        if not isinstance(offline, LocalOffline):
            raise dg.DagsterInvariantViolationError(f"the offline store is {offline.uri}, not a DuckDB file")
        with offline.connection() as con:
            yield con
