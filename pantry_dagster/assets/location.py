"""Build the code location's Definitions from a definitions folder.

Why not in definitions.py: tests and tools build Definitions for other folders without
importing the module that loads PANTRY_DEFS at import time.
"""

import os

import dagster as dg

from pantry import Store
from pantry.api.facts import metric_facts
from pantry.engines import engine_kind
from pantry.features.facts import feature_facts
from pantry_dagster.assets.broken import build_broken_assets
from pantry_dagster.assets.features import IO_MANAGER, build_feature_assets, build_feature_schedules
from pantry_dagster.assets.metrics import build_metric_assets, build_metric_schedules
from pantry_dagster.assets.sources import build_source_assets, build_source_checks
from pantry_dagster.resources.alerts import SlackAlerts
from pantry_dagster.resources.features_io import FeatureValuesIOManager
from pantry_dagster.resources.offline import OfflineStore, default_defs, default_home
from pantry_dagster.resources.online import OnlineStore
from pantry_dagster.sensors.alerts import build_alert_sensors, build_freshness_checks
from pantry_dagster.sensors.online_push import build_online_push_sensor, online_push_job

FORKED = {"forkserver": {"preload_modules": ["pantry_dagster.assets.location"]}}


def _forked(config: dict) -> dict:
    return {**config, "start_method": FORKED}


# Step processes forked from a fork server that imported Dagster and Pantry once. Why: a
# spawned step (Dagster's default) imports both afresh, about 3 CPU s before it does any work.
# The rest of the multiprocess executor's run config (max_concurrent, tag_concurrency_limits,
# retries) is still the user's to set.
PARALLEL_STEPS = dg.multiprocess_executor.configured(
    _forked,
    name="multiprocess_forkserver",
    config_schema={
        name: field
        for name, field in dg.multiprocess_executor.config_schema.as_field().config_type.fields.items()
        if name != "start_method"
    },
)


def build_definitions(
    defs: str | None = None, home: str | None = None, redis_url: str | None = None, offline_uri: str | None = None
) -> dg.Definitions:
    store = Store(defs=defs or default_defs(), home=home or default_home(), offline_uri=offline_uri)
    uri = store.offline_uri or ""
    catalog = store.definitions
    engine = engine_kind(store.engine_url)  # the kind the UI shows: what computes the partitions
    facts = metric_facts(catalog, store.offline, dialect=engine if engine in ("postgres", "spark") else "duckdb")
    jobs, schedules = build_metric_schedules(facts)
    source_keys = [dg.AssetKey(["sources", name]) for name in catalog.semantic_models]
    observe_sources = dg.define_asset_job("observe_sources", selection=dg.AssetSelection.assets(*source_keys))
    features = feature_facts(catalog, store.offline)
    feature_jobs, feature_schedules = build_feature_schedules(features)
    online_views: dict[str, str] = {}
    for view, feature in features:
        if catalog.views[view].online:
            online_views.setdefault(view, feature)
    partitioned = [*build_metric_assets(facts, engine), *build_feature_assets(features, catalog, engine)]
    freshness_checks, freshness_sensor = build_freshness_checks(partitioned)
    return dg.Definitions(
        assets=[*build_source_assets(catalog), *partitioned, *build_broken_assets(catalog)],
        asset_checks=[*freshness_checks, *build_source_checks(catalog)],
        jobs=[
            *jobs,
            *feature_jobs,
            observe_sources,
            online_push_job,
            dg.define_asset_job("freshness_checks", selection=dg.AssetSelection.checks(*freshness_checks)),
        ],
        schedules=[*schedules, *feature_schedules],
        sensors=[
            *([build_online_push_sensor(online_views)] if online_views else []),
            freshness_sensor,
            *build_alert_sensors(freshness_checks),
        ],
        # DuckDB has one writing process per file, so steps run in one process on a local
        # store; on S3 each partition is its own object and steps run in parallel processes
        executor=dg.in_process_executor if store.offline.kind == "local" else PARALLEL_STEPS,
        resources={
            "offline": OfflineStore(defs=str(store.defs), home=str(store.home), offline_uri=uri),
            IO_MANAGER: FeatureValuesIOManager(defs=str(store.defs), home=str(store.home), offline_uri=uri),
            "alerts": SlackAlerts.from_env(str(store.home)),
            "online": OnlineStore(
                defs=str(store.defs),
                home=str(store.home),
                redis_url=redis_url or os.environ.get("PANTRY_REDIS_URL"),
                offline_uri=uri,
            ),
        },
    )
