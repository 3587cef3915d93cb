"""``features/<view>/<feature>``: one multi_asset per feature view, one spec per feature.

Why one multi_asset per view: the view's features share their tiles, so one run writes
them in one transaction; ``can_subset`` still lets a user select single features (the
tiles of the whole view are refreshed, and only the selected features are reported).
"""

from datetime import date, timedelta

import dagster as dg
from dagster import AssetExecutionContext

from pantry.compile.view_plan import stamp_of
from pantry.features.facts import FeatureFacts
from pantry.features.tiles import materialize
from pantry.monitor.checks import consistency_pairs
from pantry.monitor.verdicts import record
from pantry.offline.sources import connect
from pantry.spec.model import Catalog
from pantry_dagster.assets.checks import (
    check_result,
    check_spec,
    partition_evaluations,
    partition_figures,
    source_schema_evaluations,
)
from pantry_dagster.assets.metadata import (
    code_reference,
    column_lineage,
    daily_partitions,
    freshness_policy,
    owners,
    source_key,
    still_running,
    table_schema,
)
from pantry_dagster.keys import feature_key
from pantry_dagster.resources.alerts import SlackAlerts, send_alerts
from pantry_dagster.resources.offline import OfflineStore

IO_MANAGER = "pantry_features_io"
TILE_MEMORY = "1GB"  # DuckDB's memory for computing a run's tiles; past it, the aggregate spills


def _spec(f: FeatureFacts, partitions: dg.PartitionsDefinition, engine: str) -> dg.AssetSpec:
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
        kinds={engine, "feature"},
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


def _check_specs(key: dg.AssetKey, metrics: list[str], partitions: dg.PartitionsDefinition) -> list[dg.AssetCheckSpec]:
    """Partitioned checks: each partition's verdict shows on that partition in the UI."""
    return [
        *[
            check_spec(
                key,
                f"consistent_with_{metric}",
                f"Summed over every entity, this feature equals metric '{metric}' summed over its window",
                partitions=partitions,
            )
            for metric in metrics
        ],
        check_spec(
            key,
            "drift",
            "Evidently: this partition's values against the previous reference_partitions",
            partitions=partitions,
        ),
        check_spec(
            key,
            "rows_and_nulls",
            "Rows and null rate against the reference; a failure blocks the online push",
            partitions=partitions,
        ),
    ]


def judge_partitions(store, view: str, days: list[date], source_models: list, log):  # noqa: ANN001, ANN201
    """Schema of the view's sources, then drift, rows_and_nulls and consistency of every partition; recorded.
    Returns the verdicts and each partition's figures at its stamp (``feature_stats``)."""
    from pantry.monitor.checks import schema_check, view_range_checks
    from pantry.offline.sources import source_schema

    con = connect(store.definitions, store.offline, models=source_models)
    try:
        verdicts = [schema_check(store, m, source_schema(con, m)) for m in source_models]
    finally:
        con.close()
    day_verdicts, drifts, figures = view_range_checks(store, view, days)
    verdicts += day_verdicts
    for day, drift in sorted(drifts.items()):
        if drift.drifted:
            log.warning(f"{view} {day}: drifted: {', '.join(f.feature for f in drift.drifted)} (report {drift.report})")
    record(store.home, verdicts)
    return verdicts, figures


def _build_view(
    view_name: str, facts: list[FeatureFacts], pairs: list[tuple[str, str]], engine: str
) -> dg.AssetsDefinition:
    plan = facts[0].plan
    partitions = daily_partitions(facts[0].partitions_start, facts[0].partitions_end)
    by_key = {feature_key(view_name, f.planned.feature.name): f for f in facts}

    @dg.multi_asset(
        name=f"feature_view__{view_name}",
        specs=[_spec(f, partitions, engine) for f in facts],
        check_specs=[
            spec
            for key, f in by_key.items()
            for spec in _check_specs(key, [m for feature, m in pairs if feature == f.planned.feature.name], partitions)
        ],
        can_subset=True,
        partitions_def=partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        description=plan.view.description,
    )
    def _view(context: AssetExecutionContext, offline: OfflineStore, alerts: SlackAlerts):
        window = context.partition_time_window
        start, end = window.start.date(), (window.end - timedelta(days=1)).date()
        store = offline.store()
        catalog = store.definitions
        context.log.info(
            f"tiles of {view_name} for partitions {start}..{end} (days from {start - timedelta(days=plan.window - 1)})"
        )
        if store.engine is not None:  # each partition computed and kept in the engine, one transaction
            rows = store.materialize_view(view_name, start, end)
        else:
            # capped: a month of 2M customers' tiles held 8.8 GB under DuckDB's default (80% of RAM)
            source = connect(
                catalog, store.offline, models=plan.models, memory_limit=TILE_MEMORY, spill_to=store.home / "tmp"
            )
            try:
                rows = materialize(source, store.offline, plan, start, end)
            finally:
                source.close()
        context.log.info(f"wrote {rows} tile rows for {view_name}")
        selected = [k for k in context.selected_asset_keys if k in by_key]
        names = [by_key[k].planned.feature.name for k in selected]
        days = [start + timedelta(days=i) for i in range((end - start).days + 1)]
        # each partition's own figures, from the values the checks read at its stamp
        verdicts, every = judge_partitions(store, view_name, days, source_models=plan.models, log=context.log)
        source_schema_evaluations(context, verdicts)
        send_alerts(context, alerts)
        figures: dict[date, dict[str, dict]] = {day: {n: every[day][n] for n in names} for day in days}
        for day in days:  # each partition's own figures, on its own materialization
            for key in selected:
                figure = figures[day][by_key[key].planned.feature.name]
                context.add_asset_metadata(
                    partition_figures({**figure, "stamp": stamp_of(day).isoformat()}),
                    asset_key=key,
                    partition_key=day.isoformat(),
                )
        if not figures[end] or not any(s["rows"] for s in figures[end].values()):
            context.log.warning(
                f"no {plan.view.entity} is present at {stamp_of(end)}: the sources have no rows in the window (late or empty partition?)"
            )
        store.offline.write_stats(view_name, end, figures[end])
        for key in selected:
            yield dg.MaterializeResult(
                asset_key=key,
                metadata={
                    "tile_rows": dg.MetadataValue.int(rows),
                    "partitions": dg.MetadataValue.int(len(days)),
                    "partition_range": f"{start}..{end}",
                },
            )
        for check_key in context.selected_asset_check_keys:
            judged = [
                v for v in verdicts if v.asset == "/".join(check_key.asset_key.path) and v.check == check_key.name
            ]
            if judged:
                partition_evaluations(context, check_key.asset_key, check_key.name, judged, len(days))
                yield check_result(check_key.asset_key, check_key.name, judged, len(days))

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


def build_feature_assets(
    facts: dict[tuple[str, str], FeatureFacts], catalog: Catalog | None = None, engine: str = "duckdb"
) -> list[dg.AssetsDefinition]:
    """One multi_asset per view; with the catalog, each feature that shares a measure with a
    metric also gets its ``consistent_with_<metric>`` check. ``engine``: the kind the UI
    shows for what computes the tiles (``engines.engine_kind``)."""
    views: dict[str, list[FeatureFacts]] = {}
    for (view, _), f in facts.items():
        views.setdefault(view, []).append(f)
    return [
        _build_view(name, items, consistency_pairs(catalog, name) if catalog else [], engine)
        for name, items in views.items()
    ]
