"""Verdicts (pantry/monitor) as Dagster asset check results and per-partition observations.

Why the checks run inside the materializing run (``check_specs``): the verdict is then on
the asset page next to the materialization it judges, a blocking check stops what comes
after it in the same run, and there is no window in which a partition is materialized but
not yet judged. The verdicts are also recorded by the engine, so the push, ``pantry drift``
and the alert sensor read the same answer.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import dagster as dg

from pantry.monitor.verdicts import Verdict


def check_spec(key: dg.AssetKey, name: str, description: str, blocking: bool = False) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(name, asset=key, description=description, blocking=blocking)


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


def observation(key: dg.AssetKey, partition: str, figures: Mapping[str, Any]) -> dg.AssetObservation:
    """A partition's own figures, recorded as its own event (a range run writes one per day)."""
    return dg.AssetObservation(
        asset_key=key,
        partition=partition,
        metadata={k: _value(v) for k, v in figures.items() if v is not None and not (isinstance(v, float) and v != v)},
    )
