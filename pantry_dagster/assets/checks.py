"""Verdicts (pantry/monitor) as Dagster asset check results, and per-partition figures.

Why the checks run inside the materializing run (``check_specs``): the verdict is then on
the asset page next to the materialization it judges, a blocking check stops what comes
after it in the same run, and there is no window in which a partition is materialized but
not yet judged. The verdicts are also recorded by the engine, so the push, ``pantry drift``
and the alert sensor read the same answer.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import dagster as dg
from dagster._core.definitions.asset_checks.asset_check_evaluation import (  # not re-exported in 1.13
    AssetCheckEvaluationTargetMaterializationData as TargetMaterialization,
)

from pantry.monitor.verdicts import Verdict


def check_spec(
    key: dg.AssetKey,
    name: str,
    description: str,
    blocking: bool = False,
    partitions: dg.PartitionsDefinition | None = None,
) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(name, asset=key, description=description, blocking=blocking, partitions_def=partitions)


def _value(value: Any) -> Any:
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, int):
        return dg.MetadataValue.int(value)
    if isinstance(value, float):
        return dg.MetadataValue.float(value)
    if isinstance(value, Mapping):
        return dg.MetadataValue.json({str(k): v for k, v in value.items()})
    if isinstance(value, (list, tuple)):
        return dg.MetadataValue.json(list(value))
    return str(value)


def check_result(key: dg.AssetKey, check: str, verdicts: list[Verdict], partitions: int) -> dg.AssetCheckResult:
    """One result for a run: passed when every judged partition passed; the failures listed."""
    verdicts = sorted(verdicts, key=lambda v: v.partition)
    failed = [v for v in verdicts if not v.passed]
    last = verdicts[-1]
    shown = failed[-1] if failed else last
    metadata: dict[str, Any] = {
        "partitions_judged": f"{verdicts[0].partition}..{last.partition} ({len(verdicts)} of {partitions})"
        if verdicts[0].partition
        else "-",
        "failed_partitions": dg.MetadataValue.json([v.partition for v in failed]),
        "summary": shown.summary,
    }
    for name, value in shown.details.items():
        if name == "report" and value:
            metadata["report"] = dg.MetadataValue.url(Path(value).resolve().as_uri())
            metadata["report_path"] = dg.MetadataValue.path(str(value))
        elif value is not None:
            metadata[name] = _value(value)
    warn = not failed and any(v.severity == "WARN" for v in verdicts)
    return dg.AssetCheckResult(
        asset_key=key,
        check_name=check,
        passed=not failed,
        severity=dg.AssetCheckSeverity.WARN if warn else dg.AssetCheckSeverity.ERROR,
        metadata=metadata,
    )


def partition_figures(figures: Mapping[str, Any]) -> dict[str, Any]:
    """A partition's own figures as metadata of that partition's materialization.

    Why on the materialization, not an ``AssetObservation`` per partition: a range run writes a
    materialization per partition anyway (``add_asset_metadata(..., partition_key=)`` fills
    each with its own day's figures), so the figures cost no event of their own. Each event
    is a SQLite write of about 15 ms: the churn lab's 775 observations were 11 s of its run.
    Each partition's page in the UI shows that day's figures
    (docs/screens/partition_figures_feature.png)."""
    return {k: _value(v) for k, v in figures.items() if v is not None and not (isinstance(v, float) and v != v)}


# a range run records each judged partition's own evaluation up to this many partitions per
# check; beyond, only the failed ones (each is an event-log write)
PER_PARTITION_EVENTS = 400


def partition_evaluations(
    context: dg.OpExecutionContext, key: dg.AssetKey, check: str, verdicts: list[Verdict], partitions: int
) -> int:
    """Each partition's own verdict as an evaluation of that partition, for a range run.

    Why: the run's one result of a range has no partition (Dagster tags only single-partition
    runs), so the UI's check showed "Partition: -" and the failed days hid in a JSON list.
    The checks are partitioned (``partitions_def`` on their specs), so these evaluations put
    each day's pass or failure on that day. Returns how many were recorded."""
    if partitions <= 1:
        return 0  # Dagster records the run's own partition with its result
    dated = [v for v in verdicts if v.partition]
    chosen = dated if len(dated) <= PER_PARTITION_EVENTS else [v for v in dated if not v.passed]
    # each evaluation names the partition's materialization it judged (this run's, written
    # when the run yielded its MaterializeResult): the UI counts only a check that is current
    materialized = context.instance.event_log_storage.get_latest_storage_id_by_partition(
        key, dg.DagsterEventType.ASSET_MATERIALIZATION, partitions={v.partition for v in chosen}
    )
    now = time.time()
    for verdict in chosen:
        warn = verdict.passed and verdict.severity == "WARN"
        storage_id = materialized.get(verdict.partition)
        context.log_event(  # in the run: one evaluation per (check, run, partition), rerunnable
            dg.AssetCheckEvaluation(
                asset_key=key,
                check_name=check,
                passed=verdict.passed,
                partition=verdict.partition,
                target_materialization_data=TargetMaterialization(
                    storage_id=storage_id, run_id=context.run_id, timestamp=now
                )
                if storage_id is not None
                else None,
                severity=dg.AssetCheckSeverity.WARN if warn else dg.AssetCheckSeverity.ERROR,
                description=verdict.summary[:1000],
                metadata={"summary": verdict.summary[:2000]},
            )
        )
    return len(chosen)


def source_schema_evaluations(context: dg.OpExecutionContext, verdicts: list[Verdict]) -> None:
    """The ``schema`` verdicts of the sources a run read, on the sources' own ``schema`` checks.

    Why: a backfill of ``--select '*'`` selects the metrics and views, not the observable
    sources, so the sources' checks never ran ("Never observed") while the run judged the
    very same schemas. A run that did not execute a source's check records its verdict
    there, once: by the first of the run's assets that reads the source (Dagster keeps one
    evaluation per check, run and partition, and steps may run in separate processes)."""
    graph = context.job_def.asset_layer.asset_graph  # the run's own assets, also in an ad-hoc materialize
    run_keys = set(context.dagster_run.asset_selection or ()) or set(context.selected_asset_keys)
    mine = set(context.selected_asset_keys)
    selected_checks = set(context.dagster_run.asset_check_selection or ()) | set(context.selected_asset_check_keys)
    seen: set[str] = set()
    for verdict in verdicts:
        if verdict.check != "schema" or verdict.asset in seen:
            continue
        seen.add(verdict.asset)
        key = dg.AssetKey(verdict.asset.split("/"))
        if dg.AssetCheckKey(key, "schema") in selected_checks:
            continue  # the source's own check runs in this run
        readers = sorted(
            (k for k in run_keys if graph.has(k) and key in graph.get(k).parent_keys), key=lambda k: k.to_string()
        )
        if not readers or readers[0] not in mine:
            continue  # another step of this run records it
        warn = verdict.passed and verdict.severity == "WARN"
        context.log_event(
            dg.AssetCheckEvaluation(
                asset_key=key,
                check_name="schema",
                passed=verdict.passed,
                severity=dg.AssetCheckSeverity.WARN if warn else dg.AssetCheckSeverity.ERROR,
                description=verdict.summary[:1000],
                metadata={"summary": verdict.summary[:2000]},
            )
        )
