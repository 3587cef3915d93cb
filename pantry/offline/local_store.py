"""The offline store in one DuckDB file: the default, for one machine.

Why DuckDB transactions: a re-materialized range must replace the old rows completely
or not at all, and DuckDB gives exactly that (``atomic.atomically``). The file allows one
writing process, so a writer waits a bounded time for the lock and then says so.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
import pandas as pd
import pyarrow as pa

from pantry.errors import PantryError
from pantry.offline.store import OfflineStore

if TYPE_CHECKING:
    from pantry.compile.view_plan import ViewPlan

LOCK_ATTEMPTS = 20
LOCK_DELAY_S = 0.5


class LocalOffline(OfflineStore):
    """Metric partitions, feature tiles and their bookkeeping in ``<home>/pantry.duckdb``."""

    kind = "local"

    def __init__(self, path: Path) -> None:
        self.path = path
        self.cache = path.parent / "cache" / "s3"  # S3 sources' objects, downloaded when changed

    @property
    def uri(self) -> str:
        return str(self.path)

    def exists(self) -> bool:
        return self.path.exists()

    def attach(
        self,
        con: duckdb.DuckDBPyConnection,
        views: Iterable[str] | None = None,
        metrics: Iterable[str] | None = None,
        tables: Iterable[str] | None = None,
    ) -> bool:
        """The file attached read-only as ``offline``; False when nothing was ever written."""
        if not self.path.exists():
            return False
        try:
            quoted = str(self.path).replace("'", "''")
            con.execute(f"ATTACH '{quoted}' AS offline (READ_ONLY)")
        except duckdb.IOException as err:
            raise PantryError(
                f"the offline store {self.path} cannot be opened: {err}",
                hint="a run may be writing to it; retry when it finishes",
            ) from None
        return True

    def register_table(self, con: duckdb.DuckDBPyConnection, name: str, target: str, extra: str) -> bool:
        """View ``target`` over the store's plain table ``name`` (a model's ``source: <table>``);
        False when there is no such table. ``extra`` adds the source-order columns."""
        if not self.path.exists():
            return False
        databases = {row[0] for row in con.execute("SELECT database_name FROM duckdb_databases()").fetchall()}
        if "offline" not in databases:
            self.attach(con)
        found = con.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE database_name = 'offline' AND table_name = ?", [name]
        ).fetchall()[0][0]
        if not found:
            return False
        con.execute(f'CREATE OR REPLACE VIEW {target} AS SELECT *, {extra} FROM offline."{name}"')
        return True

    def check(self) -> str:
        con = duckdb.connect()
        try:
            return "ok" if self.attach(con) else "empty (nothing materialized yet)"
        finally:
            con.close()

    @contextmanager
    def connection(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A write connection; DuckDB allows one writing process, so wait a bounded time for it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        last: Exception | None = None
        for attempt in range(LOCK_ATTEMPTS):
            try:
                con = duckdb.connect(str(self.path))
                break
            except duckdb.IOException as err:
                if "lock" not in str(err).lower():
                    raise
                last = err
                time.sleep(LOCK_DELAY_S * min(attempt + 1, 4))
        else:
            raise PantryError(
                f"the offline store {self.path} is locked by another process: {last}",
                hint="another Dagster run or a 'pantry' command is writing; retry when it finishes",
            )
        try:
            yield con
        finally:
            con.close()

    def replace_metric_days(self, name: str, frame: pd.DataFrame, start: date, end: date) -> int:
        from pantry.offline.metric_tables import replace_days

        if self.warehouse is not None:  # an engine keeps the metric's days (issue 28)
            return self.warehouse.replace_metric_days(name, frame, start, end)

        with self.connection() as con:
            return replace_days(con, name, frame, start, end)

    def write_tiles(
        self, plan: ViewPlan, tiles: pa.Table | pa.RecordBatchReader, lo: date, hi: date, start: date, end: date
    ) -> int:
        from pantry.offline.feature_tables import write_tiles

        with self.connection() as con:
            return write_tiles(con, plan, tiles, lo, hi, start, end)

    def write_stats(self, view: str, day: date, stats: dict[str, dict[str, float | int | None]]) -> None:
        from pantry.offline.feature_tables import write_stats

        with self.connection() as con:
            write_stats(con, view, day, stats)
