"""``features/<view>/<feature>``: one multi_asset per feature view, one spec per feature.

Why one multi_asset per view: the view's features share their tiles, so one run writes
them in one transaction; ``can_subset`` still lets a user select single features (the
tiles of the whole view are refreshed, and only the selected features are reported).
"""

from datetime import timedelta

import dagster as dg
from dagster import AssetExecutionContext

from assets.metadata import (
    code_reference,
    column_lineage,
    daily_partitions,
    freshness_policy,
    owners,
    source_key,
    still_running,
    table_schema,
)
from pantry.features.facts import FeatureFacts
from pantry.features.plan import stamp_of
from pantry.features.stats import feature_stats, write_stats
from pantry.features.tiles import materialize
from pantry.offline.sources import connect
from resources.offline import OfflineStore

IO_MANAGER = "pantry_features_io"


def feature_key(view: str, feature: str) -> dg.AssetKey:
    return dg.AssetKey(["features", view, feature])


def _spec(f: FeatureFacts, partitions: dg.PartitionsDefinition) -> dg.AssetSpec:
    view, feature = f.plan.view, f.planned.feature
    tags = {k: v for k, v in {**view.tags, **feature.tags}.items() if k.replace("_", "").isalnum()}
    tags.setdefault("pii", "false")
    what = (
        f"{f.planned.agg} of {f.planned.feature.measure} over {feature.window}"
        if feature.measure
        else f"latest {feature.dimension}"
    )
    return dg.AssetSpec(
        key=feature_key(view.name, feature.name),
        description=feature.description or f"{what}, per {view.entity}. {view.description or ''}".strip(),
        deps=[source_key(m) for m in f.sources],
        owners=owners(view.owner),
        tags={**tags, "feature_view": view.name},
        kinds={"duckdb", "feature"},
        group_name="features",
        partitions_def=partitions,
        code_version=f.code_version,
        freshness_policy=freshness_policy(f.freshness),
        metadata={
            "dagster/column_schema": table_schema(f.columns),
            "dagster/column_lineage": column_lineage(f.lineage),
            "dagster/code_references": code_reference(
                view.origin
                if feature.line is None
                else type(view.origin)(view.origin.path, view.origin.shown_as, feature.line),
                f"feature {view.name}:{feature.name}",
            ),
            "window": str(feature.window) if feature.window else "latest value",
            "ttl": str(view.ttl) if view.ttl else "none",
            "online": view.online,
        },
    ).with_io_manager_key(IO_MANAGER)


def _build_view(view_name: str, facts: list[FeatureFacts]) -> dg.AssetsDefinition:
    plan = facts[0].plan
    partitions = daily_partitions(facts[0].partitions_start, facts[0].partitions_end)
    by_key = {feature_key(view_name, f.planned.feature.name): f for f in facts}

    @dg.multi_asset(
        name=f"feature_view__{view_name}",
        specs=[_spec(f, partitions) for f in facts],
        can_subset=True,
        partitions_def=partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        description=plan.view.description,
    )
    def _view(context: AssetExecutionContext, offline: OfflineStore):
        window = context.partition_time_window
        start, end = window.start.date(), (window.end - timedelta(days=1)).date()
        store = offline.store()
        catalog = store.definitions
        context.log.info(
            f"tiles of {view_name} for partitions {start}..{end} (days from {start - timedelta(days=plan.window - 1)})"
        )
        source = connect(catalog, models=plan.models)
        try:
            with offline.connection() as con:
                rows = materialize(source, con, plan, start, end)
        finally:
            source.close()
        context.log.info(f"wrote {rows} tile rows for {view_name}")
        selected = [k for k in context.selected_asset_keys if k in by_key]
        names = [by_key[k].planned.feature.name for k in selected]
        values = store.get_historical_features(
            None, [f"{view_name}:{n}" for n in names], start_time=stamp_of(end), end_time=stamp_of(end)
        )
        stats = {n: feature_stats(values, n) for n in names}
        if values.empty:
            context.log.warning(
                f"no {plan.view.entity} is present at {stamp_of(end)}: the sources have no rows in the window (late or empty partition?)"
            )
        with offline.connection() as con:
            write_stats(con, view_name, end, stats)
        for key in selected:
            name = by_key[key].planned.feature.name
            yield dg.MaterializeResult(
                asset_key=key,
                metadata={
                    **{
                        k: dg.MetadataValue.float(float(v)) if isinstance(v, float) else dg.MetadataValue.int(int(v))
                        for k, v in stats[name].items()
                        if v is not None
                    },
                    "tile_rows": dg.MetadataValue.int(rows),
                    "stamp": stamp_of(end).isoformat(),
                    "partition_range": f"{start}..{end}",
                },
            )

    return _view


def build_feature_schedules(facts: dict[tuple[str, str], FeatureFacts]) -> tuple[list, list]:
    """A daily job per view, and a schedule unless its data set has ended: each run materializes the newest partition."""
    jobs, schedules = [], []
    views: dict[str, list[FeatureFacts]] = {}
    for (view, _), f in facts.items():
        views.setdefault(view, []).append(f)
    for view, items in sorted(views.items()):
        job = dg.define_asset_job(
            name=f"features_daily_{view}",
            selection=dg.AssetSelection.assets(*[feature_key(view, f.planned.feature.name) for f in items]),
            partitions_def=daily_partitions(items[0].partitions_start, items[0].partitions_end),
        )
        jobs.append(job)
        if not still_running(items[0].partitions_end):
            continue  # a finished data set: no new day will ever come
        # running by default: under `dagster dev` the loop schedule -> materialize -> push sensor -> Redis runs unattended
        schedules.append(
            dg.build_schedule_from_partitioned_job(
                job, hour_of_day=0, minute_of_hour=30, default_status=dg.DefaultScheduleStatus.RUNNING
            )
        )
    return jobs, schedules


def build_feature_assets(facts: dict[tuple[str, str], FeatureFacts]) -> list[dg.AssetsDefinition]:
    views: dict[str, list[FeatureFacts]] = {}
    for (view, _), f in facts.items():
        views.setdefault(view, []).append(f)
    return [_build_view(name, items) for name, items in views.items()]
