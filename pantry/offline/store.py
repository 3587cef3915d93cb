"""The offline store: where metric partitions, feature tiles and their bookkeeping live.

Why an interface: the Store, the Dagster assets and the monitors ask the offline store for
a few things (attach its tables to a DuckDB connection, replace a range of a metric's
days, write a view's tiles and statistics, say whether it answers), and each kind answers
them its own way: one DuckDB file (``local_store.py``) or Parquet objects on S3
(``s3_store.py``). An engine's offline store plugs in by implementing the same methods and
a scheme in ``location.py``; nothing above this layer asks which kind it has.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from datetime import date
from typing import TYPE_CHECKING, Protocol

import duckdb
import pandas as pd
import pyarrow as pa

if TYPE_CHECKING:
    from pantry.compile.view_plan import ViewPlan
    from pantry.spec.model import SemanticModel


class Warehouse(Protocol):
    """An engine that holds the sources and the metric partitions (``engines/warehouse.py``):
    a model's ``source: <schema>.<table>`` is its table, and a metric's days are stored there."""

    def register(self, con: duckdb.DuckDBPyConnection, model: SemanticModel, target: str, extra: str) -> None:
        """The table readable on ``con`` as ``target`` (its columns at least), ``extra`` added."""

    def replace_metric_days(self, name: str, frame: pd.DataFrame, start: date, end: date) -> int:
        """Replace a metric's days ``start..end`` in the engine, all or nothing."""


class OfflineStore(ABC):
    """What the rest of Pantry asks of offline storage."""

    kind: str  # "local", "s3": how Dagster runs it (one writing process for the DuckDB file)
    uri: str
    # None: table sources and metric days are the store's own; set when an engine holds them (issue 28)
    warehouse: Warehouse | None = None

    @abstractmethod
    def exists(self) -> bool:
        """Whether anything was ever written."""

    @abstractmethod
    def check(self) -> str:
        """ "ok", or what is missing; raises when the store does not answer (``/healthz``)."""

    @abstractmethod
    def attach(
        self,
        con: duckdb.DuckDBPyConnection,
        views: Iterable[str] | None = None,
        metrics: Iterable[str] | None = None,
        tables: Iterable[str] | None = None,
    ) -> bool:
        """The store's tables readable on ``con`` as database ``offline`` (only the named
        views, metrics and tables when given); False when nothing was ever written."""

    @abstractmethod
    def register_table(self, con: duckdb.DuckDBPyConnection, name: str, target: str, extra: str) -> bool:
        """A table of the store readable on ``con`` as ``target``; False when it does not exist."""

    @abstractmethod
    def replace_metric_days(self, name: str, frame: pd.DataFrame, start: date, end: date) -> int:
        """Replace a metric's days ``start..end`` with ``frame``, all or nothing; returns its rows."""

    @abstractmethod
    def write_tiles(
        self, plan: ViewPlan, tiles: pa.Table | pa.RecordBatchReader, lo: date, hi: date, start: date, end: date
    ) -> int:
        """Replace a view's tiles of days ``lo..hi`` (partitions ``start..end``), all or nothing."""

    @abstractmethod
    def write_stats(self, view: str, day: date, stats: dict[str, dict[str, float | int | None]]) -> None:
        """A partition's per-feature statistics (the catalog's figures)."""

    @staticmethod
    def materialized_days(con: duckdb.DuckDBPyConnection, view: str) -> list[date]:
        """The materialized partitions of ``view``, oldest first, on a connection the store
        is attached to (``attach``)."""
        exists = con.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE database_name = 'offline' AND schema_name = 'features' "
            "AND table_name = 'pantry_partitions'"
        ).fetchall()[0][0]
        if not exists:
            return []
        rows = con.execute(
            "SELECT day FROM offline.features.pantry_partitions WHERE view = ? ORDER BY day", [view]
        ).fetchall()
        return [r[0] for r in rows]
