"""The engine interface: what Pantry asks of a warehouse, and nothing about how.

Why this shape (Feast's offline stores, MetricFlow's SQL client): the compiler already
renders any dialect, so an engine only runs text and answers Arrow, the one format every
ADBC driver, DuckDB and pandas share without a copy per value. Beside that: upload an
entity frame for one statement (``run_with``), replace days of a partition atomically
(``replace_days``, ``replace_days_from``), read them back, list what is materialized.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from datetime import date

import pyarrow as pa

from pantry.engines.names import quoted


class Engine(ABC):
    """A warehouse Pantry runs in: sources are its tables, queries its SQL."""

    #: sqlglot's name for the SQL this engine runs
    dialect: str

    @property
    @abstractmethod
    def shown(self) -> str:
        """The engine's URL as errors and logs show it: the password masked."""

    @abstractmethod
    def run(self, sql: str, timeout: float | None = None) -> pa.Table:
        """Run one read-only statement; ``timeout`` seconds, then ``QueryTimeout``."""

    @abstractmethod
    def replace_days(
        self, schema: str, table: str, rows: pa.Table, day: str, start: date, end: date, asset: str
    ) -> int:
        """Replace days ``start..end`` (column ``day``) of ``schema.table`` with ``rows``, in one
        transaction: a rerun is idempotent and a failed one leaves the old days. The table is
        made from ``rows``' columns the first time; ``asset``'s write is logged beside it."""

    @abstractmethod
    def replace_days_from(
        self, schema: str, table: str, day: str, selects: dict[date, str], asset: str, index: tuple[str, ...] = ()
    ) -> int:
        """Replace each day of ``selects`` in ``schema.table`` with what its SELECT answers,
        computed and written inside the engine (no row passes through Pantry), in one
        transaction; column ``day`` holds the day, ``index`` the columns reads look up by.
        Returns the rows written."""

    @abstractmethod
    def run_with(self, name: str, rows: pa.Table, sql: str) -> pa.Table:
        """Run ``sql`` with ``rows`` uploaded as the temporary table ``name`` (a training
        read's entity frame), on one session that drops it afterwards."""

    @abstractmethod
    def read(self, schema: str, table: str, day: str, start: date | None = None, end: date | None = None) -> pa.Table:
        """Stored days of ``schema.table`` (all, or ``start..end``)."""

    @abstractmethod
    def materialized(self, schema: str, asset: str) -> list[date]:
        """The days of ``asset`` written to ``schema`` (its log of writes), oldest first."""

    #: whether ``write_with`` writes a training set inside the engine (else the client collects it)
    writes_training_sets: bool = False
    #: whether a training read's join names a view's stamp column beside its partition day,
    #: which implies it (each day's rows are the values at its stamp): PostgreSQL's index is on
    #: (key, stamp), so it joins on both
    joins_on_stamp: bool = True

    def training_path(self) -> str:
        """A new path inside the engine for a training set too large to bring back."""
        raise NotImplementedError

    def write_with(self, name: str, rows: pa.Table, sql: str, to: str) -> None:
        """Run ``sql`` with ``rows`` uploaded as ``name`` and write its answer as Parquet at
        ``to`` inside the engine (a training set too large to bring back)."""
        from pantry.errors import PantryError

        raise PantryError(
            f"the {self.dialect} engine answers training reads into the client; it does not write them as Parquet",
            field="to",
            hint="leave out to=, or run the read on Spark",
        )

    #: the engine's name for a double in a CAST
    double_type: str = "DOUBLE PRECISION"

    def table(self, schema: str, table: str, day: str) -> str:
        """``schema.table`` as a reader's SQL names it (a warehouse: the table; Spark: each
        day's published run of it). ``day`` is its column of days."""
        return f"{quoted(schema)}.{quoted(table)}"

    def pinned_table(self, schema: str, table: str, day: str) -> str:
        """``table`` for one large read: the stored rows as of now, named so the engine can skip
        the rest (Spark: the published runs as literals). A warehouse's table is already that."""
        return self.table(schema, table, day)

    def pinned_days(self, schema: str, asset: str, table: str, day: str) -> tuple[list[date], str]:
        """``materialized`` and ``pinned_table`` as of one moment, for a read that needs both
        (a training read): Spark reads its log once for the two. A warehouse's table needs no
        pin, so this is the log read alone."""
        return self.materialized(schema, asset), self.pinned_table(schema, table, day)

    def view_join_hint(self, schema: str, views: dict[str, str], rows: int) -> str:
        """A planner hint put after the SELECT of a training read that joins ``rows`` entity
        rows to views' partitions (``views``: alias to table in ``schema``); none unless an
        engine needs one."""
        return ""

    def key_hash(self, column: str) -> str:
        """A non-negative 31-bit hash of ``column``'s text: the drift panel's draw."""
        return f"(hashtext(CAST({column} AS TEXT)) & 2147483647)"

    @abstractmethod
    def close(self) -> None:
        """Give the connection back."""
