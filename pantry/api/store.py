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

import duckdb
import pandas as pd
import pyarrow as pa

from pantry.compile.query import QueryRequest
from pantry.compile.render import compile_sql
from pantry.errors import PantryError, did_you_mean
from pantry.offline.metric_tables import run_frame
from pantry.offline.sources import connect
from pantry.spec.load import read_catalog
from pantry.spec.model import Catalog
from pantry.spec.validate import validate

if TYPE_CHECKING:  # facts pull in sqlglot's lineage module; only the catalog needs it
    from pantry.api.facts import MetricFacts
    from pantry.features.plan import ViewPlan


def _as_tuple(value: str | Iterable[str] | None) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return tuple(v.strip() for v in value.split(",") if v.strip())
    return tuple(value)


def _as_datetime(value: str | date | datetime | None, field: str) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        raise PantryError(
            f"{field} '{value}' is not a timestamp", field=field, hint="write it as YYYY-MM-DD or an ISO timestamp"
        ) from None


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
        """Every metric and feature: type, description, owner, tags, lineage, partitions, last run, stats."""
        from pantry.api.catalog import catalog_entries
        from pantry.features.facts import feature_facts

        return catalog_entries(self.facts, self.offline_db, search, feature_facts(self.definitions))

    # -- features -----------------------------------------------------------------
    def _plans(self, features: Sequence[str]) -> dict[str, tuple[ViewPlan, list[str]]]:
        """``["view:feature", ...]`` -> plans per view, features in request order."""
        from pantry.features.plan import plan_view

        views = self.definitions.views
        wanted: dict[str, list[str]] = {}
        for ref in features:
            view_name, sep, feature = str(ref).partition(":")
            if not sep or view_name not in views:
                known = [f"{v}:{f.name}" for v, spec in views.items() for f in spec.features]
                raise PantryError(
                    f"'{ref}' is not a feature",
                    field="features",
                    hint=did_you_mean(str(ref), known) or "name features as 'view:feature'",
                )
            wanted.setdefault(view_name, []).append(feature)
        plans = {}
        for view_name, names in wanted.items():
            plan = plan_view(self.definitions, views[view_name])
            for name in names:
                plan.feature(name)  # raises with the nearest name
            plans[view_name] = (plan, names)
        return plans

    def _offline_reader(self) -> tuple[duckdb.DuckDBPyConnection, bool]:
        """An in-memory connection with the offline store attached read-only, if it exists."""
        con = duckdb.connect()
        if not self.offline_db.exists():
            return con, False
        try:
            con.execute(f"ATTACH '{self.offline_db}' AS offline (READ_ONLY)")
        except duckdb.IOException as err:
            raise PantryError(
                f"the offline store {self.offline_db} cannot be opened: {err}",
                hint="a run may be writing to it; retry when it finishes",
            ) from None
        return con, True

    def get_historical_features(
        self,
        entity_df: pd.DataFrame | pa.Table | None = None,
        features: Sequence[str] = (),
        full_feature_names: bool = False,
        start_time: str | datetime | None = None,
        end_time: str | datetime | None = None,
    ) -> pd.DataFrame:
        """Point-in-time-correct feature values for each row of ``entity_df`` (DESIGN.md section 3).

        Without ``entity_df``, returns one row per entity present at every materialized stamp
        between ``start_time`` and ``end_time``.
        """
        from pantry.features.reads import TIMESTAMP, present_entities, read_view, stamps_in, warn_unmaterialized

        plans = self._plans(features)
        if not plans:
            raise PantryError("no features given", field="features", hint="pass features=['view:feature', ...]")
        con, attached = self._offline_reader()
        try:
            days = {name: self._days(con, name) if attached else [] for name in plans}
            if entity_df is None:
                entities = {plan.view.entity for plan, _ in plans.values()}
                if len(entities) != 1:
                    raise PantryError(
                        "without an entity_df, all features must share one entity",
                        field="features",
                        hint=f"these views have entities {sorted(entities)}",
                    )
                first_plan = next(iter(plans.values()))[0]
                start = _as_datetime(start_time, "start_time")
                end = _as_datetime(end_time, "end_time")
                spines = [
                    present_entities(con, plan, stamps_in(days[name], start, end))
                    for name, (plan, _) in plans.items()
                    if days[name]
                ]
                spine = (
                    pd.concat(spines).drop_duplicates().sort_values([TIMESTAMP, "__key"])
                    if spines
                    else pd.DataFrame({"__key": [], TIMESTAMP: []})
                )
                entity_df = spine.rename(columns={"__key": first_plan.key}).reset_index(drop=True)
                entity_df[TIMESTAMP] = pd.to_datetime(entity_df[TIMESTAMP]).dt.tz_localize("UTC")
            if isinstance(entity_df, pa.Table):
                entity_df = entity_df.to_pandas()
            if TIMESTAMP not in entity_df.columns:
                raise PantryError(
                    f"entity_df has no '{TIMESTAMP}' column",
                    field=TIMESTAMP,
                    hint=f"add the moment each row is scored as '{TIMESTAMP}'; its columns are {list(entity_df.columns)}",
                )
            from pantry.features.reads import _utc_naive

            timestamps = _utc_naive(entity_df[TIMESTAMP], TIMESTAMP)
            out = entity_df.reset_index(drop=True).copy()
            for name, (plan, names) in plans.items():
                if plan.key not in entity_df.columns:
                    raise PantryError(
                        f"entity_df has no column '{plan.key}', the key of entity '{plan.view.entity}' (feature view '{name}')",
                        field=plan.key,
                        hint=did_you_mean(plan.key, [str(c) for c in entity_df.columns])
                        or f"its columns are {list(entity_df.columns)}",
                    )
                if not days[name]:
                    warn_unmaterialized(name)
                values = read_view(
                    con,
                    plan,
                    entity_df[plan.key].reset_index(drop=True),
                    timestamps.reset_index(drop=True),
                    names,
                    bool(days[name]),
                )
                for feature in names:
                    out[f"{name}__{feature}" if full_feature_names else feature] = values[feature].values
            return out
        finally:
            con.close()

    @staticmethod
    def _days(con: duckdb.DuckDBPyConnection, view: str) -> list[date]:
        exists = con.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE database_name = 'offline' AND schema_name = 'features' AND table_name = 'pantry_partitions'"
        ).fetchall()[0][0]
        if not exists:
            return []
        rows = con.execute(
            "SELECT day FROM offline.features.pantry_partitions WHERE view = ? ORDER BY day", [view]
        ).fetchall()
        return [r[0] for r in rows]

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
