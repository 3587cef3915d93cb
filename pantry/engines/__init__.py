"""Engines: where the source tables live and where Pantry's SQL runs (issue 28).

DuckDB in one process is the embedded default and needs no engine object (the offline store
and ``offline/sources.connect`` are that path). A warehouse is an ``Engine``: named by one
setting (``PANTRY_ENGINE``), reached through ADBC, given SQL the compiler rendered in its
dialect (``relations.py``), answering Arrow.
"""

from __future__ import annotations

from pantry.engines.base import Engine
from pantry.engines.spark import masked as spark_masked
from pantry.engines.url import masked as url_masked
from pantry.engines.url import scheme
from pantry.errors import PantryError


def engine_kind(url: str | None) -> str:
    """What computes and keeps the tables, as Dagster's asset kinds name it (``duckdb``,
    ``postgres``, ``spark``), from the URL alone: building a code location connects to nothing."""
    if not url or url.strip().lower() == "duckdb":
        return "duckdb"
    return {"postgresql": "postgres", "postgres": "postgres", "sc": "spark"}.get(scheme(url), "sql")


def engine_for(url: str | None, location: str | None = None) -> Engine | None:
    """The engine a URL names; None (or ``duckdb``) is the embedded DuckDB path. ``location``:
    where an engine without schemas of its own (Spark) keeps Pantry's tables."""
    if not url or url.strip().lower() == "duckdb":
        return None
    if scheme(url) in ("postgresql", "postgres"):
        from pantry.engines.postgres import PostgresEngine

        return PostgresEngine(url)
    if scheme(url) == "sc":
        from pantry.engines.spark import SparkEngine

        if not location:
            raise PantryError(
                f"the Spark engine '{masked(url)}' needs a location for Pantry's tables",
                field="engine",
                hint="set PANTRY_OFFLINE_URI (s3://...) or PANTRY_HOME to a directory every worker reaches",
            )
        return SparkEngine(url, location)
    raise PantryError(
        f"engine '{masked(url)}' is not one Pantry runs in",
        field="engine",
        hint="leave PANTRY_ENGINE unset for DuckDB, or write postgresql://user@host:port/database or "
        "sc://host:15002 (Spark Connect)",
    )


def masked(url: str) -> str:
    """An engine URL with its password or token masked."""
    return spark_masked(url) if scheme(url) == "sc" else url_masked(url)


__all__ = ["Engine", "engine_for", "masked"]
