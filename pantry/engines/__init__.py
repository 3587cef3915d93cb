"""Engines: where the source tables live and where Pantry's SQL runs (issue 28).

DuckDB in one process is the embedded default and needs no engine object (the offline store
and ``offline/sources.connect`` are that path). A warehouse is an ``Engine``: named by one
setting (``PANTRY_ENGINE``), reached through ADBC, given SQL the compiler rendered in its
dialect (``relations.py``), answering Arrow.
"""

from __future__ import annotations

from pantry.engines.base import Engine
from pantry.engines.url import masked, scheme
from pantry.errors import PantryError


def engine_for(url: str | None) -> Engine | None:
    """The engine a URL names; None (or ``duckdb``) is the embedded DuckDB path."""
    if not url or url.strip().lower() == "duckdb":
        return None
    if scheme(url) in ("postgresql", "postgres"):
        from pantry.engines.postgres import PostgresEngine

        return PostgresEngine(url)
    raise PantryError(
        f"engine '{masked(url)}' is not one Pantry runs in",
        field="engine",
        hint="leave PANTRY_ENGINE unset for DuckDB, or write postgresql://user@host:port/database",
    )


__all__ = ["Engine", "engine_for"]
