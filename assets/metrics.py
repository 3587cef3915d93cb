"""``metrics/<name>``: one daily-partitioned asset per metric.

Why a factory: definitions live in YAML, so assets are generated from the catalog. Each
run computes its partition range in one query (``BackfillPolicy.single_run``), so a
year's backfill is one SQL statement, not 365 runs. The logic is ``pantry``'s; this
module only maps it onto Dagster.
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
    tags,
)
from pantry.api.facts import MetricFacts
from pantry.compile.query import DAY
from pantry.offline.metric_tables import compute_days, replace_days
from pantry.offline.sources import connect
from resources.offline import OfflineStore


def metric_key(name: str) -> dg.AssetKey:
    return dg.AssetKey(["metrics", name])


def partitions_for(facts: MetricFacts) -> dg.DailyPartitionsDefinition:
    return daily_partitions(facts.partitions_start, facts.partitions_end)


def _build_one(facts: MetricFacts) -> dg.AssetsDefinition:
    metric = facts.metric
    name = metric.name

    @dg.asset(
        key=metric_key(name),
        description=metric.description or metric.label or f"{metric.type} metric {name}",
        partitions_def=partitions_for(facts),
        backfill_policy=dg.BackfillPolicy.single_run(),
        freshness_policy=freshness_policy(facts.freshness),
        code_version=facts.code_version,
        owners=owners(metric.owner),
        tags={**tags(metric.meta), "metric_type": metric.type},
        kinds={"duckdb", "sql"},
        group_name="metrics",
        deps=[source_key(m) for m in facts.sources],
        metadata={
            "dagster/column_schema": table_schema(facts.columns),
            "dagster/column_lineage": column_lineage(facts.lineage),
            "dagster/code_references": code_reference(metric.origin, f"metric {name}"),
            "sql": dg.MetadataValue.md(f"```sql\n{facts.sql}\n```"),
            "dimensions": ", ".join(metric.dimensions) or "(none)",
        },
    )
    def _metric_asset(context: AssetExecutionContext, offline: OfflineStore) -> dg.MaterializeResult:
        window = context.partition_time_window
        start, end = window.start.date(), (window.end - timedelta(days=1)).date()
        store = offline.store()
        catalog = store.definitions
        context.log.info(f"computing {name} for {start}..{end}")
        source_con = connect(catalog, store.offline_db if store.offline_db.exists() else None)
        try:
            frame = compute_days(source_con, catalog, metric, start, end)
        finally:
            source_con.close()
        with offline.connection() as con:
            rows = replace_days(con, name, frame, start, end)
        last_day = frame[frame[DAY] == end] if len(frame) else frame
        if metric.dimensions:  # a ratio cannot be summed over dimensions: ask for the day itself
            day_value = store.query(name, group_by=[DAY], start_time=end, end_time=end)
            value = day_value[name].iloc[0] if len(day_value) else None
        else:
            value = last_day[name].iloc[0] if len(last_day) else None
        context.log.info(f"wrote {rows} rows of {name} for {start}..{end}")
        if rows == 0:
            context.log.warning(
                f"{name} has no rows for {start}..{end}: the sources hold no data for these days yet "
                "(a late or empty partition); re-materialize once the data lands"
            )
        metadata: dict[str, object] = {
            "rows": dg.MetadataValue.int(rows),
            "days": dg.MetadataValue.int((end - start).days + 1),
            "last_day_rows": dg.MetadataValue.int(len(last_day)),
            "null_count": dg.MetadataValue.int(int(frame[name].isna().sum())),
            "partition_range": f"{start}..{end}",
        }
        if value is not None and value == value:
            metadata["value"] = dg.MetadataValue.float(float(value))
        return dg.MaterializeResult(metadata=metadata)

    return _metric_asset


def build_metric_assets(facts: dict[str, MetricFacts]) -> list[dg.AssetsDefinition]:
    return [_build_one(f) for f in facts.values()]


def build_metric_schedules(facts: dict[str, MetricFacts]) -> tuple[list, list]:
    """A daily job per partition range, and a schedule unless its data set has ended: each run takes the newest day."""
    by_range: dict[tuple, list[MetricFacts]] = {}
    for f in facts.values():
        by_range.setdefault((f.partitions_start, f.partitions_end), []).append(f)
    jobs, schedules = [], []
    for (start, end), items in sorted(by_range.items(), key=lambda kv: (kv[0][0], kv[0][1] or kv[0][0])):
        name = f"metrics_daily_from_{start.isoformat().replace('-', '_')}"
        job = dg.define_asset_job(
            name=name + (f"_to_{end.isoformat().replace('-', '_')}" if end else ""),
            selection=dg.AssetSelection.assets(*[metric_key(f.metric.name) for f in items]),
            partitions_def=partitions_for(items[0]),
        )
        jobs.append(job)
        if still_running(end):
            schedules.append(dg.build_schedule_from_partitioned_job(job, hour_of_day=1, minute_of_hour=0))
    return jobs, schedules
