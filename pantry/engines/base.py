"""The engine interface: what Pantry asks of a warehouse, and nothing about how.

Why this shape (Feast's offline stores, MetricFlow's SQL client): the compiler already
renders any dialect, so an engine only runs text and answers Arrow, the one format every
ADBC driver, DuckDB and pandas share without a copy per value. Writes (a day of a
partition, an entity frame for a training read) are the next steps of issue 28 and join
this class when they are built, not before.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import pyarrow as pa


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
    def close(self) -> None:
        """Give the connection back."""
