"""``Store``: the one class users touch, named for the verbs they say aloud.

Why one class: as in Feast's ``FeatureStore``, training code, the CLI and the HTTP
server all go through the same object, so a metric means the same thing everywhere.
The validated catalog is loaded once and cached on the Store; nothing else is global.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from pantry.compile.query import QueryRequest
from pantry.compile.render import compile_sql
from pantry.errors import PantryError
from pantry.offline.metric_tables import run_frame
from pantry.offline.sources import connect
from pantry.spec.load import read_catalog
from pantry.spec.model import Catalog
from pantry.spec.validate import validate

if TYPE_CHECKING:  # facts pull in sqlglot's lineage module; only the catalog needs it
    from pantry.api.facts import MetricFacts


def _as_tuple(value: str | Iterable[str] | None) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return tuple(v.strip() for v in value.split(",") if v.strip())
    return tuple(value)


def _as_date(value: str | date | datetime | None, field: str) -> date | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return datetime.fromisoformat(str(value)).date()
    except ValueError:
        raise PantryError(f"{field} '{value}' is not a date", field=field, hint="write it as YYYY-MM-DD") from None


class Store:
    """Pantry's user-facing API: query metrics, read features, browse the catalog."""

    def __init__(
        self, defs: str | Path | None = None, home: str | Path | None = None, redis_url: str | None = None
    ) -> None:
        self.defs = Path(defs or os.environ.get("PANTRY_DEFS", "./metrics_defs")).resolve()
        self.home = Path(home or os.environ.get("PANTRY_HOME", "./.pantry")).resolve()
        self.redis_url = redis_url or os.environ.get("PANTRY_REDIS_URL")

    @cached_property
    def definitions(self) -> Catalog:
        """The validated catalog; loading it runs every check of ``pantry validate``."""
        return validate(read_catalog(self.defs), offline_db=self.offline_db)

    @cached_property
    def facts(self) -> dict[str, MetricFacts]:
        """Compiled SQL, version, schema and lineage of every metric."""
        from pantry.api.facts import metric_facts

        return metric_facts(self.definitions)

    def catalog(self, search: str | None = None) -> list[dict[str, Any]]:
        """Every metric with type, description, owner, tags, lineage, partitions and last run."""
        from pantry.api.catalog import catalog_entries

        return catalog_entries(self.facts, self.offline_db, search)

    @property
    def offline_db(self) -> Path:
        return self.home / "pantry.duckdb"

    # -- metrics ------------------------------------------------------------------
    def _request(self, metrics, group_by, where, start_time, end_time, order, limit) -> QueryRequest:  # noqa: ANN001
        return QueryRequest(
            metrics=_as_tuple(metrics),
            group_by=_as_tuple(group_by),
            where=(where,) if isinstance(where, str) else tuple(where or ()),
            start_time=_as_date(start_time, "start_time"),
            end_time=_as_date(end_time, "end_time"),
            order=_as_tuple(order),
            limit=int(limit) if limit is not None else None,
        )

    def query(
        self,
        metrics: str | Sequence[str],
        group_by: str | Sequence[str] = (),
        where: str | Sequence[str] | None = None,
        start_time: str | date | None = None,
        end_time: str | date | None = None,
        order: str | Sequence[str] | None = None,
        limit: int | None = None,
    ) -> pd.DataFrame:
        """Metrics by name, as ``mf query`` returns them: one column per group-by and metric."""
        request = self._request(metrics, group_by, where, start_time, end_time, order, limit)
        sql = compile_sql(self.definitions, request, "duckdb", pretty=False)
        con = connect(self.definitions, self.offline_db, for_sql=sql)
        try:
            return run_frame(con, sql)
        finally:
            con.close()

    def explain(
        self,
        metrics: str | Sequence[str],
        group_by: str | Sequence[str] = (),
        where: str | Sequence[str] | None = None,
        start_time: str | date | None = None,
        end_time: str | date | None = None,
        order: str | Sequence[str] | None = None,
        limit: int | None = None,
        dialect: str = "duckdb",
    ) -> str:
        """The SQL ``query`` would run, rendered in ``dialect``."""
        request = self._request(metrics, group_by, where, start_time, end_time, order, limit)
        return compile_sql(self.definitions, request, dialect)
