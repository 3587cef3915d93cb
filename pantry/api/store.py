"""``Store``: the one class users touch, named for the verbs they say aloud.

Why one class: as in Feast's ``FeatureStore``, training code, the CLI and the HTTP
server all go through the same object, so a metric means the same thing everywhere.
The validated catalog is loaded once and cached on the Store; nothing else is global.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import pandas as pd
import pyarrow as pa

from pantry.compile.context import QueryRequest
from pantry.compile.render import compile_checked, compile_sql
from pantry.engines import Engine, engine_for
from pantry.engines.frames import arrow_frame
from pantry.engines.relations import engine_sql
from pantry.errors import PantryError, did_you_mean
from pantry.offline.bounded import run_bounded
from pantry.offline.location import offline_store
from pantry.offline.sources import connect
from pantry.offline.store import OfflineStore
from pantry.online.client import RedisUnavailable
from pantry.online.store import OnlineStore, online_store
from pantry.settings import collect_rows
from pantry.spec.load import read_catalog
from pantry.spec.model import Catalog
from pantry.verify.validate import validate

if TYPE_CHECKING:  # facts pull in sqlglot's lineage module; only the catalog needs it
    from pantry.api.facts import MetricFacts
    from pantry.compile.view_plan import ViewPlan


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


# A time range's bounds: wide enough for any business calendar, narrow enough that the daily
# spine a range needs stays small (0001-01-01..9999-12-31 took 35 s to build, then overflowed)
EARLIEST, LATEST = date(1800, 1, 1), date(2299, 12, 31)


def _as_date(value: str | date | datetime | None, field: str) -> date | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        day = value.date()
    elif isinstance(value, date):
        day = value
    else:
        try:
            day = datetime.fromisoformat(str(value)).date()
        except ValueError:
            raise PantryError(f"{field} '{value}' is not a date", field=field, hint="write it as YYYY-MM-DD") from None
    if not EARLIEST <= day <= LATEST:
        raise PantryError(
            f"{field} {day.isoformat()} is outside the dates Pantry answers for",
            field=field,
            hint=f"give a date between {EARLIEST.isoformat()} and {LATEST.isoformat()}",
        )
    return day


def _moment(value: str | date | datetime | None, field: str) -> datetime | None:
    """The moment, when the time carries a time of day (``2020-01-01 02:00:25``); else None."""
    if isinstance(value, datetime):
        return value.replace(tzinfo=None)
    if isinstance(value, str) and len(value.strip()) > 10:
        moment = _as_datetime(value, field)
        return moment.replace(tzinfo=None) if moment is not None else None
    return None


def _as_limit(value: int | str | None) -> int | None:
    if value is None or value == "":
        return None
    try:
        limit = int(value)
    except (TypeError, ValueError):
        limit = 0
    if limit < 1 or str(value).strip() != str(limit):
        raise PantryError(f"limit '{value}' is not a whole number of at least 1", field="limit", hint="e.g. --limit 10")
    return limit


def _missing_key(plan: ViewPlan, name: str, entity_df: pd.DataFrame) -> PantryError:
    """A training read's entity frame without a view's key column, with what it has."""
    return PantryError(
        f"entity_df has no column '{plan.key}', the key of entity '{plan.view.entity}' (feature view '{name}')",
        field=plan.key,
        hint=did_you_mean(plan.key, [str(c) for c in entity_df.columns])
        or f"its columns are {list(entity_df.columns)}",
    )


class BrokenDefinitions(UserWarning):
    """Some definitions are broken and left out; the rest of the store works."""


def _utc(at: datetime) -> datetime:
    """A moment in UTC; a naive datetime is UTC, as everywhere in Pantry (``reads.utc_naive``),
    never the machine's local time."""
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


class Store:
    """Pantry's user-facing API: query metrics, read features, browse the catalog."""

    def __init__(
        self,
        defs: str | Path | None = None,
        home: str | Path | None = None,
        redis_url: str | None = None,
        offline_uri: str | None = None,
        engine: str | None = None,
    ) -> None:
        self.defs = Path(defs or os.environ.get("PANTRY_DEFS", "./metrics_defs")).resolve()
        self.home = Path(home or os.environ.get("PANTRY_HOME", "./.pantry")).resolve()
        self.redis_url = redis_url or os.environ.get("PANTRY_REDIS_URL")
        self.offline_uri = offline_uri or os.environ.get("PANTRY_OFFLINE_URI") or None
        self.engine_url = engine or os.environ.get("PANTRY_ENGINE") or None

    @cached_property
    def engine(self) -> Engine | None:
        """Where the sources live and metric queries run (PANTRY_ENGINE); None: embedded DuckDB."""
        from pantry.engines.spark import location_for

        return engine_for(self.engine_url, location_for(self.offline_uri, str(self.home)))

    @cached_property
    def offline(self) -> OfflineStore:
        """Where metric partitions and feature tiles live: the DuckDB file, or S3 (PANTRY_OFFLINE_URI).
        With an engine, a table source is the engine's table."""
        store = offline_store(self.home, self.offline_uri)
        if self.engine is not None:
            from pantry.engines.warehouse import EngineWarehouse

            store.warehouse = EngineWarehouse(self.engine)
        return store

    @cached_property
    def definitions(self) -> Catalog:
        """The sound part of the catalog, validated (``verify/sound.py``): a broken definition is
        left out with a warning, and what does not touch it still answers."""
        from pantry.verify.sound import broken_summary, load_sound

        catalog = load_sound(self.defs, offline=self.offline)
        if catalog.broken:
            warnings.warn(broken_summary(catalog), BrokenDefinitions, stacklevel=2)
        return catalog

    @cached_property
    def as_written(self) -> Catalog:
        """The definitions as the files say, broken parts included (read once, not validated):
        what the source schema check compares a source against."""
        return read_catalog(self.defs, collect=True)

    def validate(self) -> Catalog:
        """Every check, strictly: any problem anywhere raises PantryErrors (``pantry validate``, CI)."""
        return validate(read_catalog(self.defs), offline=self.offline)

    def _refuse_broken(self, kind: str, names: Sequence[str]) -> None:
        """A query naming a left-out definition is told why it was left out."""
        from pantry.verify.sound import label as _label_of
        from pantry.verify.sound import why_broken

        known = {
            "metric": self.definitions.metrics,
            "feature view": self.definitions.views,
            "saved query": self.definitions.saved_queries,
        }[kind]
        for name in names:
            if name not in known and (found := why_broken(self.definitions, kind, name)) is not None:
                err, root = found
                cause = f"; that is because {_label_of(root)} is broken: {root.message}" if root else ""
                raise PantryError(
                    f"{kind} '{name}' is left out because its definition is broken: {err.message}{cause}",
                    file=err.file,
                    line=err.line,
                    definition=f"{kind} '{name}'",
                    field=err.field,
                    hint=(root.hint if root else err.hint) or "fix it; 'pantry validate' lists every problem",
                )

    @cached_property
    def facts(self) -> dict[str, MetricFacts]:
        """Compiled SQL, version, schema and lineage of every metric."""
        from pantry.api.facts import metric_facts

        return metric_facts(self.definitions, self.offline)

    @cached_property
    def feature_facts(self) -> dict[tuple[str, str], Any]:
        """Version, schema and lineage of every feature (DESCRIBE queries: computed once)."""
        from pantry.features.facts import feature_facts

        return feature_facts(self.definitions, self.offline)

    def catalog(self, search: str | None = None) -> list[dict[str, Any]]:
        """Every metric and feature: type, description, owner, tags, lineage, partitions, last run, stats."""
        from pantry.api.catalog import catalog_entries

        return catalog_entries(self.facts, self.offline, search, self.feature_facts, self.definitions.saved_queries)

    # -- features -----------------------------------------------------------------
    def _plans(self, features: Sequence[str]) -> dict[str, tuple[ViewPlan, list[str]]]:
        """``["view:feature", ...]`` -> plans per view, features in request order (cached)."""
        cache = self.__dict__.setdefault("_plan_cache", {})
        key = tuple(features)
        if key not in cache:
            if len(cache) > 1024:
                cache.clear()
            cache[key] = self._make_plans(features)
        return cache[key]

    def _make_plans(self, features: Sequence[str]) -> dict[str, tuple[ViewPlan, list[str]]]:
        from pantry.compile.view_plan import plan_view

        views = self.definitions.views
        wanted: dict[str, list[str]] = {}
        self._refuse_broken("feature view", [str(ref).partition(":")[0] for ref in features])
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

    def _offline_reader(self, views: Sequence[str] | None = None) -> tuple[duckdb.DuckDBPyConnection, bool]:
        """An in-memory connection with the offline store attached read-only as ``offline``,
        if it exists; ``views`` limits what an S3 store lists to the views read."""
        con = duckdb.connect()
        try:
            return con, self.offline.attach(con, views=views, metrics=[] if views is not None else None)
        except BaseException:
            con.close()
            raise

    def get_historical_features(
        self,
        entity_df: pd.DataFrame | pa.Table | None = None,
        features: Sequence[str] = (),
        full_feature_names: bool = False,
        start_time: str | datetime | None = None,
        end_time: str | datetime | None = None,
        to: str | None = None,
    ) -> pd.DataFrame | str:
        """Point-in-time-correct feature values for each row of ``entity_df`` (docs/features.md).

        Without ``entity_df``, returns one row per entity present at every materialized stamp
        between ``start_time`` and ``end_time``. With ``to`` (on Spark), the training set is
        joined on the cluster and written there as Parquet at that new path, which is
        returned: the answer never passes through this process (docs/spark.md). On Spark an
        ``entity_df`` of more than ``PANTRY_COLLECT_ROWS`` rows (1,000,000) is written so
        too, at a new path under the engine's location, which is returned with a warning.
        """
        return self._historical(entity_df, features, full_feature_names, start_time, end_time, to)

    def _historical(
        self,
        entity_df: pd.DataFrame | pa.Table | None,
        features: Sequence[str],
        full_feature_names: bool,
        start_time: str | datetime | None,
        end_time: str | datetime | None,
        to: str | None,
        known_days: dict[str, list[date]] | None = None,
    ) -> pd.DataFrame | str:
        """``get_historical_features``, given the views' materialized days when the caller has
        just read them (``known_days``: the push). Why: on an engine each read of its log is
        a statement of its own, a job on a cluster."""
        from pantry.features import in_engine
        from pantry.features.reads import (
            TIMESTAMP,
            present_entities,
            read_view,
            stamps_in,
            utc_naive,
            warn_unmaterialized,
        )
        from pantry.features.stream_reads import present_at, read_stream_view

        plans = self._plans(features)
        if not plans:
            raise PantryError("no features given", field="features", hint="pass features=['view:feature', ...]")
        given = entity_df is not None
        engine = self.engine
        # on an engine the partitions are its tables: no offline store to attach
        con, attached = (duckdb.connect(), False) if engine is not None else self._offline_reader(views=list(plans))
        sources: dict[str, duckdb.DuckDBPyConnection] = {}
        read: dict[str, pd.DataFrame] = {}  # a view's values read with the spine
        tables: dict[str, str] = {}  # a view's partitions pinned for a read on an engine (pinned_days)

        def source_for(plan: ViewPlan) -> duckdb.DuckDBPyConnection:
            """A streaming view reads its models' rows (``src.<model>``), durable once pushed."""
            if plan.view.name not in sources:
                sources[plan.view.name] = connect(self.definitions, self.offline, models=plan.models, for_sql="")
            return sources[plan.view.name]

        try:
            if known_days is not None:
                days = {name: known_days[name] for name in plans}
            elif engine is not None:
                # the days and the pinned partitions of each view in one read of the log
                pinned = {name: in_engine.pinned_days(engine, plan) for name, (plan, _) in plans.items()}
                days = {name: found for name, (found, _) in pinned.items()}
                tables = {name: table for name, (_, table) in pinned.items()}
            else:
                days = {name: self.offline.materialized_days(con, name) if attached else [] for name in plans}
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
                only = next(iter(plans))
                if engine is not None and len(plans) == 1 and not first_plan.streaming and days[only] and to is None:
                    # one view at its own stamps: the spine and its values in one statement
                    spine, read[only] = in_engine.read_stamps(
                        engine, first_plan, plans[only][1], stamps_in(days[only], start, end)
                    )
                else:
                    spines = [
                        in_engine.present_entities(engine, plan, stamps_in(days[name], start, end))
                        if engine is not None and not plan.streaming
                        else (present_at if plan.streaming else present_entities)(
                            source_for(plan) if plan.streaming else con, plan, stamps_in(days[name], start, end)
                        )
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
            column = entity_df[TIMESTAMP]
            # a naive datetime column is each row's UTC moment already: converted (a copy of
            # the column, 80 MB for 10M rows) only for a read answered here, not for a write
            naive = pd.api.types.is_datetime64_dtype(column.dtype)
            moments = None if naive else utc_naive(column, TIMESTAMP)
            if to is None and given:
                to = self._written_instead(entity_df, plans, days)
            if to is not None:
                self._write_training(entity_df, moments, plans, days, full_feature_names, to, tables)
                return to
            timestamps = utc_naive(column, TIMESTAMP) if moments is None else moments
            out = entity_df.reset_index(drop=True).copy()
            for name, (plan, names) in plans.items():
                if plan.key not in entity_df.columns:
                    raise _missing_key(plan, name, entity_df)
                keys, stamps = entity_df[plan.key].reset_index(drop=True), timestamps.reset_index(drop=True)
                if name in read:  # read with the spine (in_engine.read_stamps)
                    values = read[name]
                elif plan.streaming:  # every tile boundary is a stamp: read the rows, durable once pushed
                    values = read_stream_view(source_for(plan), plan, keys, stamps, names)
                else:
                    if not days[name]:
                        warn_unmaterialized(name)
                    if engine is not None:  # the view's partitions are the engine's tables: joined there
                        values = in_engine.read_view(engine, plan, keys, stamps, names, days[name], tables.get(name))
                    else:
                        values = read_view(con, plan, keys, stamps, names, bool(days[name]))
                for feature in names:
                    out[f"{name}__{feature}" if full_feature_names else feature] = values[feature].values
            return out
        finally:
            con.close()
            for source in sources.values():
                source.close()

    def _written_instead(
        self, entity_df: pd.DataFrame, plans: dict[str, tuple[ViewPlan, list[str]]], days: dict[str, list]
    ) -> str | None:
        """A new path in the engine where a training read too large to collect is written,
        with a warning that names it; None to collect. Written when the engine can write,
        the frame has more rows than ``PANTRY_COLLECT_ROWS``, and every view can be joined
        there (no streaming view, each with a partition: else the read answers as before)."""
        engine = self.engine
        if engine is None or not engine.writes_training_sets:
            return None
        limit = collect_rows()
        if len(entity_df) <= limit or not all(not p.streaming and days[n] for n, (p, _) in plans.items()):
            return None
        path = engine.training_path()
        warnings.warn(
            f"the training set of {len(entity_df):,} rows was written on the cluster as Parquet at {path} "
            f"(more than PANTRY_COLLECT_ROWS={limit:,} rows): read it with pyarrow.dataset or Spark, "
            "or pass to= to choose the path",
            stacklevel=4,
        )
        return path

    def _write_training(
        self,
        entity_df: pd.DataFrame,
        moments: pd.Series | None,
        plans: dict[str, tuple[ViewPlan, list[str]]],
        days: dict[str, list],
        full_feature_names: bool,
        to: str,
        tables: dict[str, str] | None = None,
    ) -> None:
        """``get_historical_features(..., to=...)``: every view's columns joined and written in the engine."""
        from pantry.features import in_engine

        if self.engine is None:
            raise PantryError(
                "to= writes the training set inside an engine, and none is set",
                field="to",
                hint="set PANTRY_ENGINE=sc://host:15002 (Spark), or leave out to= and write the frame yourself",
            )
        views = []
        for name, (plan, names) in plans.items():
            if plan.streaming:
                raise PantryError(
                    f"feature view '{name}' is a streaming view: its tiles live in Redis, not in the engine",
                    field="features",
                    hint="read streaming views without to=",
                )
            if plan.key not in entity_df.columns:
                raise _missing_key(plan, name, entity_df)
            if not days[name]:
                raise PantryError(
                    f"feature view '{name}' has no materialized partition in the engine",
                    field="features",
                    hint=f"materialize it first: dagster asset materialize, or Store.materialize_view('{name}', ...)",
                )
            views.append((plan, names, days[name]))
        in_engine.write_training(self.engine, entity_df, moments, views, full_feature_names, to, tables)

    # -- online -------------------------------------------------------------------
    @cached_property
    def online(self) -> OnlineStore:
        """Where served values live (``online/store.py``): Redis at PANTRY_REDIS_URL, or a
        local redis-server under PANTRY_HOME for development."""
        return online_store(self.redis_url, self.home)

    @property
    def online_url(self) -> str:
        return self.online.url

    def push(self, model: str, rows: Any, serve: bool = True) -> Any:
        """Rows into an ``ingest: push`` model (a DataFrame, a pyarrow table or a list of
        dicts). Returns once the good rows are durable in the offline store, with how many were
        kept and each refused row with its reason; an event id seen before counts once.

        ``serve=False`` returns before the streaming views' online tiles take the rows; the
        caller then owes ``serve_pushed(result)``. Why: a stream consumer applies one batch's
        tiles (mostly waiting on Redis) while it reads and writes the next."""
        from pantry.ingest.push import push_rows

        catalog = self.definitions
        schemas = self.__dict__.setdefault("_push_schemas", {})
        result = push_rows(catalog, self.home, self.offline, model, rows, schemas)
        if serve:
            self.serve_pushed(result)
        return result

    def serve_pushed(self, result: Any) -> None:
        """A push's durable rows (``push(..., serve=False)``) into the online tiles."""
        self.serve_events(result, self.pushed_events(result))

    def pushed_events(self, result: Any) -> list[tuple[str, Any, dict[str, list[list[str]]]]]:
        """A push's durable rows as each streaming view's tile events (nothing written yet):
        ``serve_events`` applies them. Why two steps: a stream consumer computes one batch's
        events (DuckDB) while Redis applies the batch before."""
        from pantry.features.stream_events import batch_events

        if result.batch is None:
            return []
        semantic = self.definitions.semantic_models[result.model]
        prepared = []
        for view in self._streaming_views(result.model):
            plan, scripts = self._stream(view)
            prepared.append((view, scripts, batch_events(plan, scripts.layout, semantic, result.rows, result.batch)))
        return prepared

    def serve_events(self, result: Any, prepared: list[tuple[str, Any, dict[str, list[list[str]]]]]) -> None:
        """Apply what ``pushed_events`` made of ``result``.

        Each event counts once (the tiles remember event ids), so a failure here is mended by
        pushing the same rows again, or by a stream redelivering them."""
        for view, scripts, events in prepared:
            try:
                self.online.apply_events(
                    scripts, events, doing=f"the online update of streaming view '{view}'", view=view
                )
            except PantryError as err:
                replay = (
                    "push the same rows again once Redis answers (each event counts once), "
                    f"or run 'pantry push-online {view} <today>' to replay the window"
                )
                raise PantryError(
                    f"{len(result.rows)} rows of '{result.model}' are stored, but streaming view '{view}' was not "
                    f"updated online: {err.message}",
                    field="online",
                    # a Redis that is down: replay later; one that refuses (a key in the way, a cluster): its own fix
                    hint=replay if isinstance(err, RedisUnavailable) or not err.hint else err.hint,
                ) from None

    def _streaming_views(self, model: str | None = None) -> list[str]:
        """Streaming views served online, those reading ``model`` when it is given."""
        from pantry.compile.view_plan import plan_view

        readers = self.__dict__.get("_stream_readers")
        if readers is None:  # planned once per Store, not on every push
            readers = {
                name: {m.name for m in plan_view(self.definitions, view).models}
                for name, view in self.definitions.views.items()
                if view.stream_tile is not None and view.online
            }
            self.__dict__["_stream_readers"] = readers
        return [name for name, models in readers.items() if model is None or model in models]

    def _stream(self, view: str) -> tuple[ViewPlan, Any]:
        """A streaming view's plan and Redis scripts, built once per Store: the feature types
        come from the declared sources' schemas, which a push never changes."""
        cache = self.__dict__.setdefault("_stream_cache", {})
        if view not in cache:
            from dataclasses import replace

            from pantry.compile.view_plan import plan_view
            from pantry.features.stream_events import feature_kinds
            from pantry.online.stream_tiles import StreamScripts, layout_for

            plan = plan_view(self.definitions, self.definitions.views[view])
            declared = [replace(m, ingest=None) for m in plan.models]
            con = connect(self.definitions, self.offline, models=declared, for_sql="")
            try:
                kinds = feature_kinds(con, plan)
            finally:
                con.close()
            cache[view] = (plan, StreamScripts(layout_for(plan, kinds)))
        return cache[view]

    def sync_stream(self, view: str, at: datetime | None = None) -> int:
        """Replay the rows of a streaming view's window (up to ``at``, default now) into its
        online tiles; events already there are skipped. Returns how many rows were replayed.

        Why: rows in the declared source, or pushed while Redis was away, reach serving this
        way; the daily online push of a streaming view runs it."""
        from pantry.features.stream_events import events_of, merged

        plan, scripts = self._stream(view)
        now = _utc(at or datetime.now(UTC)).replace(tzinfo=None)
        since = now - timedelta(seconds=plan.window_seconds + (plan.tile or 0))
        con = connect(self.definitions, self.offline, models=plan.models, for_sql="")
        try:
            events = merged(events_of(con, plan, scripts.layout, m, f'src."{m.name}"', since) for m in plan.models)
        finally:
            con.close()
        for rows in events.values():
            rows.sort(key=lambda e: e[2][20:])  # arrival order: the order a tile's sums add in
        return self.online.apply_events(scripts, events, doing=f"the online sync of streaming view '{view}'", view=view)

    def push_online(self, view: str, partition: str | date, progress: Callable[[int, int], None] | None = None) -> int:
        """Write partition ``partition``'s values into Redis; returns the count of keys written.

        Entities present at the previously pushed stamp but absent now are written as nulls,
        so they read as null. An older partition never overwrites a newer stamp.
        ``progress(entities_done, entities_total)`` follows the push batch by batch.
        """
        from pantry.compile.view_plan import stamp_of
        from pantry.online.layout import encoded_rows, expires_at

        day = _as_date(partition, "partition")
        assert day is not None
        self._refuse_broken("feature view", [view])
        if view not in self.definitions.views:
            raise PantryError(
                f"'{view}' is not a feature view", field="view", hint=did_you_mean(view, self.definitions.views)
            )
        spec = self.definitions.views[view]
        names = [f.name for f in spec.features]
        if spec.stream_tile is not None and spec.online:
            # a streaming view is served as rows arrive; its daily push replays the window up
            # to now, so rows that reached the store another way (its declared source) serve too
            return self.sync_stream(view)
        days = self.materialized_partitions(view)
        if day not in days:
            raise PantryError(
                f"partition {day} of feature view '{view}' is not materialized",
                field="partition",
                hint="materialize it first (Dagster, or 'dagster asset materialize --partition ...')",
            )
        self._refuse_failed_checks(view, day)
        stamp = stamp_of(day)
        known = {view: days}  # read once: each read of an engine's log is a statement
        values = self._historical(None, [f"{view}:{n}" for n in names], False, stamp, stamp, None, known)
        plan_key = values.columns[0]
        epoch = int(stamp.timestamp())
        expires = expires_at(spec.ttl, stamp)
        expire = int(expires.timestamp()) if expires is not None else None
        report = (lambda entities: progress(entities, len(values))) if progress is not None else None

        def gone(previous: int) -> set[Any]:
            """Entities served at the previous stamp and absent now: they read as null."""
            before = datetime.fromtimestamp(previous, tz=UTC)
            earlier = self._historical(None, [f"{view}:{names[0]}"], False, before, before, None, known)
            return set(earlier[plan_key].tolist()) - set(values[plan_key].tolist())

        return self.online.push(
            view,
            epoch,
            expire,
            names,
            lambda: encoded_rows(values, plan_key, names),
            gone,
            progress=report,
            doing=f"part of the push of feature view '{view}', partition {day}",
        )

    def _refuse_failed_checks(self, view: str, day: date) -> None:
        """Bad data never reaches serving: a failed blocking check (rows_and_nulls of the
        partition, schema of a source it reads) refuses the push, naming the check."""
        from pantry.compile.view_plan import plan_view
        from pantry.monitor.verdicts import blocking_failures

        spec = self.definitions.views[view]
        assets = [f"features/{view}/{f.name}" for f in spec.features]
        assets += [f"sources/{m.name}" for m in plan_view(self.definitions, spec).models]
        failed = blocking_failures(self.home, assets, day.isoformat())
        if failed:
            reasons = "; ".join(f"{v.check} of {v.asset}: {v.summary}" for v in failed[:3])
            raise PantryError(
                f"partition {day} of feature view '{view}' failed a blocking check, so it is not pushed: {reasons}",
                field="partition",
                hint="fix the data and re-materialize the partition; its checks run again and the push follows",
            )

    def materialized_partitions(self, view: str) -> list[date]:
        """The days of ``view`` that are materialized, oldest first (in the engine, when one is set)."""
        if self.engine is not None:
            from pantry.features.in_engine import materialized_days

            return materialized_days(self.engine, view)
        con, attached = self._offline_reader(views=[view])
        try:
            return self.offline.materialized_days(con, view) if attached else []
        finally:
            con.close()

    def latest_partition(self, view: str) -> date:
        """The newest materialized partition of a view."""
        if view not in self.definitions.views:
            raise PantryError(
                f"'{view}' is not a feature view", field="view", hint=did_you_mean(view, self.definitions.views)
            )
        days = self.materialized_partitions(view)
        if not days:
            raise PantryError(
                f"feature view '{view}' has no materialized partition", field="view", hint="materialize it first"
            )
        return days[-1]

    def get_online_features(
        self,
        features: Sequence[str],
        entity_rows: Sequence[dict[str, Any]],
        full_feature_names: bool = False,
        at: datetime | None = None,
    ) -> dict[str, list]:
        """Served values, exactly what training read at the pushed stamp; one Redis round trip.

        A streaming view serves the value at ``floor(at, tile)``; ``at`` defaults to now (a
        later ``at`` shows how windows empty; an earlier one reaches back only as far as the
        tiles Redis still keeps, the view's largest window).

        Kept lean on purpose: a one-entity read costs about 0.1 ms, and every list this
        builds twice shows in the benchmark's ratio to a raw pipelined HMGET.
        """
        result: dict[str, list] = {}
        plans = self._plans(features)
        requests = self._online_requests(plans, entity_rows)
        for view, _, keys in requests:
            result.setdefault(plans[view][0].key, keys)
        streams = self._stream_stamps([r[0] for r in requests], at) if self._has_streams else None
        replies = self.online.read(requests, streams)
        for (view, names, _), rows in zip(requests, replies):
            columns = zip(*rows) if rows else ((),) * len(names)
            for name, column in zip(names, columns):
                result[f"{view}__{name}" if full_feature_names else name] = list(column)
        return result

    @staticmethod
    def _online_requests(
        plans: dict[str, tuple[ViewPlan, list[str]]], entity_rows: Sequence[dict[str, Any]]
    ) -> list[tuple[str, list[str], list[Any]]]:
        """Each view's ``(view, feature names, entity keys)``; a row without the view's key
        is refused by its number."""
        requests = []
        for view, (plan, names) in plans.items():
            try:
                keys = [row[plan.key] for row in entity_rows]
            except KeyError:
                missing = next(i for i, row in enumerate(entity_rows) if plan.key not in row)
                raise PantryError(
                    f"entity row {missing} has no '{plan.key}', the key of entity '{plan.view.entity}' (feature view '{view}')",
                    field="entity_rows",
                    hint=f"pass entity_rows=[{{'{plan.key}': ...}}, ...]",
                ) from None
            requests.append((view, names, keys))
        return requests

    def get_online_json(self, features: Sequence[str], entity_rows: Sequence[dict[str, Any]]) -> bytes:
        """``get_online_features`` as the HTTP API answers it, JSON bytes: from a standalone
        Redis and daily views, the stored values' own text, joined (``online/raw_read.py``)."""
        from pantry.online.raw_read import columns_of, response_json

        plans = self._plans(features)
        if not self.online.reads_json or any(plan.streaming for plan, _ in plans.values()):
            # typed values, encoded here: a streaming view, or a store without raw reads
            values = self.get_online_features(features, entity_rows)
            return json.dumps(values, separators=(",", ":")).encode()
        requests = self._online_requests(plans, entity_rows)
        replies = self.online.read_json(requests)
        columns: list[tuple[str, Any, bool]] = []
        seen: set[str] = set()
        for (view, names, keys), view_replies in zip(requests, replies):
            key = plans[view][0].key
            if key not in seen:
                seen.add(key)
                columns.append((key, keys, False))
            columns += [(name, column, True) for name, column in zip(names, columns_of(view_replies, len(names)))]
        return response_json(columns)

    @cached_property
    def _has_streams(self) -> bool:
        return any(v.stream_tile is not None for v in self.definitions.views.values())

    def _stream_stamps(self, views: Sequence[str], at: datetime | None) -> dict[str, tuple[Any, int]]:
        """For each streaming view read: its scripts and the stamp ``floor(at, tile)``."""
        import time

        from pantry.features.stream_reads import serving_stamp

        now = _utc(at).timestamp() if at is not None else time.time()
        stamps = {}
        for view in views:
            spec = self.definitions.views[view]
            if spec.stream_tile is not None:
                plan, scripts = self._stream(view)
                stamps[view] = (scripts, serving_stamp(plan.tile or 1, spec.ttl, now))
        return stamps

    @property
    def offline_db(self) -> Path:
        """The local DuckDB file (the store when PANTRY_OFFLINE_URI is unset)."""
        return self.home / "pantry.duckdb"

    # -- metrics ------------------------------------------------------------------
    def _request(  # noqa: ANN001
        self, metrics, group_by, where, start_time, end_time, order, limit, min_max_only=False, apply_group_by=True
    ) -> QueryRequest:
        return QueryRequest(
            metrics=_as_tuple(metrics),
            group_by=_as_tuple(group_by),
            where=(where,) if isinstance(where, str) else tuple(where or ()),
            start_time=_as_date(start_time, "start_time"),
            end_time=_as_date(end_time, "end_time"),
            order=_as_tuple(order),
            limit=_as_limit(limit),
            start_at=_moment(start_time, "start_time"),
            end_at=_moment(end_time, "end_time"),
            min_max_only=bool(min_max_only),
            apply_group_by=bool(apply_group_by),
        )

    def query(
        self,
        metrics: str | Sequence[str] | None = None,
        group_by: str | Sequence[str] = (),
        where: str | Sequence[str] | None = None,
        start_time: str | date | None = None,
        end_time: str | date | None = None,
        order: str | Sequence[str] | None = None,
        limit: int | None = None,
        *,
        saved_query: str | None = None,
        timeout: float | None = None,
        threads: int | None = None,
        memory_limit: str | None = None,
        min_max_only: bool = False,
        apply_group_by: bool = True,
    ) -> pd.DataFrame:
        """Metrics by name, as ``mf query`` returns them: one column per group-by and metric.

        ``saved_query`` runs a ``saved_queries:`` definition; ``where`` is added to its filters,
        and the time range, ``order`` and ``limit`` given here replace its own.
        ``min_max_only`` (no metrics) answers each group-by's smallest and largest value, as
        MetricFlow does for a BI tool's filter ranges; ``apply_group_by=False`` (no metrics)
        keeps every row instead of the distinct ones.
        The query runs on a connection sealed to the store's own sources (``lock_down``);
        ``timeout`` (seconds) interrupts it with ``QueryTimeout``; ``threads`` caps DuckDB's
        threads and ``memory_limit`` (DuckDB's syntax, ``2GB``) its memory.
        """
        if saved_query:
            metrics, group_by, where, order, limit = self._saved(saved_query, metrics, group_by, where, order, limit)
        elif not metrics and not group_by:
            raise PantryError(
                "no metrics given",
                field="metrics",
                hint="pass --metrics a,b, --saved-query NAME, or --group-by alone for distinct values",
            )
        request = self._request(
            metrics, group_by, where, start_time, end_time, order, limit, min_max_only, apply_group_by
        )
        self._refuse_broken("metric", request.metrics)
        if self.engine is not None:
            return arrow_frame(self.engine.run(engine_sql(self.definitions, request, self.engine.dialect), timeout))
        sql = compile_checked(self.definitions, request)
        con = connect(
            self.definitions, self.offline, for_sql=sql, locked=True, threads=threads, memory_limit=memory_limit
        )
        try:
            return run_bounded(con, sql, timeout)
        finally:
            con.close()

    def compute_metric_days(self, metric: str, start: date, end: date) -> pd.DataFrame:
        """A metric's rows for days ``start..end`` (its partitions' content): in the engine when
        one is set, else over the embedded sources."""
        from pantry.compile.sql import DAY
        from pantry.offline.metric_tables import compute_days, day_request

        found = self.definitions.metrics[metric]
        if self.engine is None:
            con = connect(self.definitions, self.offline)
            try:
                return compute_days(con, self.definitions, found, start, end)
            finally:
                con.close()
        request = day_request(found, start, end)
        frame = arrow_frame(self.engine.run(engine_sql(self.definitions, request, self.engine.dialect)))
        frame[DAY] = pd.to_datetime(frame[DAY]).dt.date
        return frame

    def compute_view_day(self, view: str, day: date) -> pd.DataFrame:
        """A feature view's values at partition ``day``'s stamp, one row per present entity,
        computed from the sources: in the engine when one is set (the portable form,
        ``features/portable.py``), else in DuckDB over the embedded sources."""
        from pantry.compile.render import checked_text
        from pantry.compile.view_plan import plan_view
        from pantry.engines.relations import for_engine
        from pantry.features.portable import dialect_tree, partition_sql

        plan = plan_view(self.definitions, self.definitions.views[view])
        if self.engine is None:
            con = connect(self.definitions, self.offline, models=plan.models)
            try:
                return con.sql(partition_sql(plan, day, "duckdb")).df()
            finally:
                con.close()
        dialect = self.engine.dialect
        tree = for_engine(dialect_tree(plan, day, dialect), self.definitions, dialect)
        return arrow_frame(self.engine.run(checked_text(tree, dialect)))

    def materialize_view(self, view: str, start: date, end: date) -> int:
        """Partitions ``start..end`` of a feature view computed and kept in the engine (one
        transaction), as training reads then find them. Returns the rows written."""
        from pantry.compile.view_plan import plan_view
        from pantry.features.in_engine import materialize_view

        if self.engine is None:
            raise PantryError(
                "materialize_view computes partitions in an engine, and none is set",
                field="engine",
                hint="set PANTRY_ENGINE, or materialize through Dagster's feature assets",
            )
        plan = plan_view(self.definitions, self.definitions.views[view])
        return materialize_view(self.engine, self.definitions, plan, start, end)

    def metric_days(self, metric: str, start: date | None = None, end: date | None = None) -> pd.DataFrame:
        """A metric's stored partitions (all, or days ``start..end``), as materialized."""
        from pantry.compile.sql import DAY
        from pantry.offline.metric_tables import read_days

        if self.engine is not None:
            from pantry.engines.warehouse import METRICS_SCHEMA

            frame = arrow_frame(self.engine.read(METRICS_SCHEMA, metric, DAY, start, end))
            frame[DAY] = pd.to_datetime(frame[DAY]).dt.date
            return frame
        con = duckdb.connect()
        try:
            if not self.offline.attach(con, views=[], metrics=[metric]):
                raise PantryError(f"metric '{metric}' has no stored partitions", field="metric")
            return read_days(con, metric, start, end, prefix="offline.")
        finally:
            con.close()

    def _saved(self, name: str, metrics, group_by, where, order, limit):  # noqa: ANN001, ANN202
        """A saved query's parameters, with the caller's extra filters and overrides."""
        saved = self.definitions.saved_queries.get(name)
        if saved is None:
            self._refuse_broken("saved query", [name])
            raise PantryError(
                f"'{name}' is not a saved query",
                field="saved_query",
                hint=did_you_mean(name, self.definitions.saved_queries) or "pantry catalog lists them",
            )
        if metrics or group_by:
            raise PantryError(
                f"saved query '{name}' names its own metrics and group-bys",
                field="saved_query",
                hint="drop --metrics and --group-by, or run the query without --saved-query",
            )
        extra = (where,) if isinstance(where, str) else tuple(where or ())
        return saved.metrics, saved.group_by, saved.where + extra, order or saved.order, limit or saved.limit

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
        """The SQL ``query`` would run, rendered in ``dialect``; with an engine, the engine's
        SQL over its own tables (``dialect`` left as ``duckdb``)."""
        request = self._request(metrics, group_by, where, start_time, end_time, order, limit)
        if self.engine is not None and dialect == "duckdb":
            return engine_sql(self.definitions, request, self.engine.dialect)
        return compile_sql(self.definitions, request, dialect)

    def compile_partition(
        self, partition: str | date, metric: str | None = None, view: str | None = None, dialect: str = "duckdb"
    ) -> str:
        """The SQL that computes one partition of a metric (its day-grain rows) or of a feature
        view (its values at the partition's stamp, in the portable form), in ``dialect``."""
        from pantry.compile.view_plan import plan_view
        from pantry.features.portable import partition_sql
        from pantry.offline.metric_tables import day_request

        day = _as_date(partition, "partition")
        if day is None or (metric is None) == (view is None):
            raise PantryError(
                "give one partition and one of a metric or a feature view",
                field="partition" if day is None else "metric",
                hint="pantry compile --dialect spark --metric flights --partition 2013-06-01",
            )
        if metric is not None:
            found = self.definitions.metrics.get(metric)
            if found is None:
                raise PantryError(
                    f"'{metric}' is not a metric",
                    field="metric",
                    hint=did_you_mean(metric, self.definitions.metrics) or "pantry catalog lists them",
                )
            return compile_sql(self.definitions, day_request(found, day, day), dialect)
        assert view is not None
        if view not in self.definitions.views:
            raise PantryError(
                f"'{view}' is not a feature view", field="view", hint=did_you_mean(view, self.definitions.views)
            )
        return partition_sql(plan_view(self.definitions, self.definitions.views[view]), day, dialect)
