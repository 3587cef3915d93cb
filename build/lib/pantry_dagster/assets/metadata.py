"""Pantry facts -> Dagster metadata: schema, column lineage, code references, owners, tags.

Why one module: metric assets now and feature assets later must render the same facts
the same way, so the UI reads alike for both.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, timedelta
from typing import Any

import dagster as dg

from pantry.spec.model import Freshness, Origin
from pantry.spec.windows import Window

_TAG_KEY = re.compile(r"^[A-Za-z0-9_.-]{1,63}$")
_TAG_VALUE = re.compile(r"^[A-Za-z0-9_.-]{0,63}$")


def source_key(model: str) -> dg.AssetKey:
    return dg.AssetKey(["sources", model])


def table_schema(columns: tuple[tuple[str, str], ...]) -> dg.TableSchema:
    return dg.TableSchema(columns=[dg.TableColumn(name=name, type=kind) for name, kind in columns])


def column_lineage(lineage: Mapping[str, list[tuple[str, str]]]) -> dg.TableColumnLineage:
    return dg.TableColumnLineage(
        deps_by_column={
            column: [dg.TableColumnDep(asset_key=source_key(model), column_name=src) for model, src in deps]
            for column, deps in lineage.items()
            if deps
        }
    )


def code_reference(origin: Origin, label: str) -> dg.CodeReferencesMetadataValue:
    return dg.CodeReferencesMetadataValue(
        code_references=[
            dg.LocalFileCodeReference(file_path=str(origin.path.resolve()), line_number=origin.line, label=label)
        ]
    )


def owners(owner: str | None) -> list[str]:
    """Dagster wants an email or ``team:<name>``; a bare name becomes a team."""
    if not owner:
        return []
    return [owner if "@" in owner or owner.startswith("team:") else f"team:{re.sub(r'[^A-Za-z0-9_-]', '_', owner)}"]


def tags(meta: Mapping[str, Any]) -> dict[str, str]:
    """Meta entries that are valid Dagster tags; the rest stay in metadata."""
    result = {}
    for key, value in meta.items():
        if key in ("owner", "create_metric") or isinstance(value, (dict, list)):
            continue
        text = str(value).lower() if isinstance(value, bool) else str(value)
        if _TAG_KEY.match(str(key)) and _TAG_VALUE.match(text):
            result[str(key)] = text
    return result


def _delta(window: Window) -> timedelta:
    if window.unit in ("month", "quarter", "year"):
        return timedelta(days=window.count * {"month": 31, "quarter": 92, "year": 366}[window.unit])
    return window.as_timedelta()


def freshness_policy(freshness: Freshness) -> dg.FreshnessPolicy:
    warn = _delta(freshness.warn_after) if freshness.warn_after else None
    return dg.FreshnessPolicy.time_window(fail_window=_delta(freshness.fail_after), warn_window=warn)


def daily_partitions(start: date, end: date | None) -> dg.DailyPartitionsDefinition:
    """Daily partitions from ``start``; with ``end`` (inclusive, a finished data set) they stop there.

    Dagster's ``end_date`` is exclusive, so it is the day after ``end``."""
    return dg.DailyPartitionsDefinition(
        start_date=start.isoformat(), end_date=(end + timedelta(days=1)).isoformat() if end else None
    )


def still_running(end: date | None) -> bool:
    """Whether a daily schedule has days ahead: never after a finished data set's last day."""
    return end is None or end >= date.today()
