"""``metrics/<name>``: one daily-partitioned asset per metric.

Why a factory: definitions live in YAML, so assets are generated from the catalog. Each
run computes its partition range in one query (``BackfillPolicy.single_run``), so a
year's backfill is one SQL statement, not 365 runs. The logic is ``pantry``'s; this
module only maps it onto Dagster.
"""

from datetime import timedelta

import dagster as dg
import pandas as pd
from dagster import AssetExecutionContext

from pantry.api.facts import MetricFacts
from pantry.compile.sql import DAY
from pantry.monitor.checks import metric_range_checks, schema_check
from pantry.monitor.verdicts import record
from pantry.offline.sources import connect, source_schema
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
    tags,
)
from pantry_dagster.keys import metric_key
from pantry_dagster.resources.alerts import SlackAlerts, send_alerts
from pantry_dagster.resources.offline import OfflineStore


def partitions_for(facts: MetricFacts) -> dg.DailyPartitionsDefinition:
    return daily_partitions(facts.partitions_start, facts.partitions_end)


def _day_values(store, metric, frame: pd.DataFrame, start, end) -> dict:  # noqa: ANN001
    """Each day's value: the stored row, or for a metric with dimensions the day itself
    (a ratio cannot be summed over dimensions)."""
    if metric.dimensions:
        frame = store.query(metric.name, group_by=[DAY], start_time=start, end_time=end)
        frame[DAY] = pd.to_datetime(frame[DAY]).dt.date
    values = frame.set_index(DAY)[metric.name]
    return {d: float(v) for d, v in values.items() if pd.notna(v)}


def _build_one(facts: MetricFacts, engine: str) -> dg.AssetsDefinition:
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
        kinds={engine, "sql"},
        group_name="metrics",
        deps=[source_key(m) for m in facts.sources],
        check_specs=[
            check_spec(
                metric_key(name),
                "value",
                "The day's value against the previous 7 days",
                partitions=partitions_for(facts),
            ),
            check_spec(
                metric_key(name),
                "rows_and_nulls",
                "Rows and null rate against the previous 7 days",
                partitions=partitions_for(facts),
            ),
        ],
        metadata={
            "dagster/column_schema": table_schema(facts.columns),
            "dagster/column_lineage": column_lineage(facts.lineage),
            "dagster/code_references": code_reference(metric.origin, f"metric {name}"),
            "sql": dg.MetadataValue.md(f"```sql\n{facts.sql}\n```"),
            "dimensions": ", ".join(metric.dimensions) or "(none)",
        },
    )
    def _metric_asset(context: AssetExecutionContext, offline: OfflineStore, alerts: SlackAlerts):  # noqa: ANN202 - yields results
        window = context.partition_time_window
        start, end = window.start.date(), (window.end - timedelta(days=1)).date()
        store = offline.store()
        catalog = store.definitions
        context.log.info(f"computing {name} for {start}..{end}")
        frame = store.compute_metric_days(name, start, end)  # in the engine when one is set
        source_con = connect(catalog, store.offline)
        try:
            # the sources' schemas, judged with the metric that reads them (a backfill of '*'
            # does not select the sources' own checks)
            schemas = [
                schema_check(store, catalog.semantic_models[m], source_schema(source_con, catalog.semantic_models[m]))
                for m in facts.sources
            ]
        finally:
            source_con.close()
        record(store.home, schemas)
        source_schema_evaluations(context, schemas)
        rows = store.offline.replace_metric_days(name, frame, start, end)
        context.log.info(f"wrote {rows} rows of {name} for {start}..{end}")
        if rows == 0:
            context.log.warning(
                f"{name} has no rows for {start}..{end}: the sources hold no data for these days yet "
                "(a late or empty partition); re-materialize once the data lands"
            )
        days = [start + timedelta(days=i) for i in range((end - start).days + 1)]
        totals = _day_values(store, metric, frame, start, end)
        for day in days:  # each partition's own figures, on its own materialization
            today = frame[frame[DAY] == day]
            context.add_asset_metadata(
                partition_figures(
                    {"value": totals.get(day), "rows": len(today), "null_count": int(today[name].isna().sum())}
                ),
                asset_key=context.asset_key,
                partition_key=day.isoformat(),
            )
        metadata: dict[str, object] = {  # the run's own facts; a partition's figures override its rows and nulls
            "rows_written": dg.MetadataValue.int(rows),
            "days": dg.MetadataValue.int(len(days)),
            "partition_range": f"{start}..{end}",
        }
        verdicts = metric_range_checks(store, name, days)
        record(store.home, verdicts)
        send_alerts(context, alerts)
        yield dg.MaterializeResult(metadata=metadata)
        for check in ("value", "rows_and_nulls"):
            judged = [v for v in verdicts if v.check == check]
            partition_evaluations(context, context.asset_key, check, judged, len(days))
            yield check_result(context.asset_key, check, judged, len(days))

    return _metric_asset


def build_metric_assets(facts: dict[str, MetricFacts], engine: str = "duckdb") -> list[dg.AssetsDefinition]:
    """``engine``: the kind the UI shows for what computes the partitions (``engines.engine_kind``)."""
    return [_build_one(f, engine) for f in facts.values()]


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
            # running by default, as the feature views' schedules: a live metric's newest day
            # is materialized (and judged, and alerted on) without a click in the UI
            schedules.append(
                dg.build_schedule_from_partitioned_job(
                    job, hour_of_day=1, minute_of_hour=0, default_status=dg.DefaultScheduleStatus.RUNNING
                )
            )
    return jobs, schedules
