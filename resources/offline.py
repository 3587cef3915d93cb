"""The offline store as a Dagster resource, built on dagster-duckdb's DuckDBResource.

Why a thin wrapper: tests and deployments point Pantry at another folder or DuckDB file
by configuration (``EnvVar``), never by patching. All the logic stays in ``pantry``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import duckdb
from dagster_duckdb import DuckDBResource

from pantry import PantryError, Store


def default_defs() -> str:
    return os.environ.get("PANTRY_DEFS", "./metrics_defs")


def default_home() -> str:
    return os.environ.get("PANTRY_HOME", "./.pantry")


class OfflineStore(dg.ConfigurableResource):
    """Where definitions are read from and where metric partitions are written."""

    defs: str = default_defs()
    home: str = default_home()

    def store(self) -> Store:
        return Store(defs=self.defs, home=self.home)

    @contextmanager
    def connection(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A write connection to the offline DuckDB file, through DuckDBResource."""
        path = Path(self.home).resolve() / "pantry.duckdb"
        path.parent.mkdir(parents=True, exist_ok=True)
        yield from _locked_connection(path)


def _locked_connection(path: Path, attempts: int = 20, delay: float = 0.5) -> Iterator[duckdb.DuckDBPyConnection]:
    """DuckDB allows one writing process; wait a bounded time for it, then say so clearly."""
    last: Exception | None = None
    for attempt in range(attempts):
        manager = DuckDBResource(database=str(path)).get_connection()
        try:
            con = manager.__enter__()
            break
        except duckdb.IOException as err:
            if "lock" not in str(err).lower():
                raise
            last = err
            time.sleep(delay * min(attempt + 1, 4))
    else:
        raise PantryError(
            f"the offline store {path} is locked by another process: {last}",
            hint="another Dagster run or a 'pantry' command is writing; retry when it finishes",
        )
    try:
        yield con
    finally:
        manager.__exit__(None, None, None)
