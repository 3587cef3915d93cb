"""One way to replace stored rows all or nothing, for metric partitions and feature tiles.

Why shared: both stores register a frame, open a transaction, replace a range of days and
log what was written; a failure anywhere must roll back and unregister the frame. Doing
that in one context manager keeps the two writers from drifting apart.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import duckdb


@contextmanager
def atomically(con: duckdb.DuckDBPyConnection, name: str, rows: Any) -> Iterator[duckdb.DuckDBPyConnection]:
    """``rows`` visible as table ``name`` inside one transaction; commit on success, else roll back."""
    con.register(name, rows)
    try:
        con.execute("BEGIN TRANSACTION")
        try:
            yield con
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
    finally:
        con.unregister(name)
