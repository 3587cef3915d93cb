"""The catalog: every metric with its owner, lineage, partitions and freshness.

Why a list of plain dicts: the same entries feed ``pantry catalog``, ``GET /catalog`` and
tests, and JSON is the common ground. Search is a case-insensitive match over names,
descriptions, owners and tags, which is what people type.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb

from pantry.api.facts import MetricFacts
from pantry.offline.metric_tables import last_materializations


def _materialized(offline_db: Path) -> tuple[dict[str, dict[str, Any]], str | None]:
    if not offline_db.exists():
        return {}, None
    try:
        con = duckdb.connect(str(offline_db), read_only=True)
    except duckdb.IOException:
        return {}, "the offline store is busy (a run is writing); materialization times are unknown"
    try:
        return last_materializations(con), None
    finally:
        con.close()


def catalog_entries(facts: dict[str, MetricFacts], offline_db: Path, search: str | None = None) -> list[dict[str, Any]]:
    materialized, note = _materialized(offline_db)
    entries = []
    for name, f in sorted(facts.items()):
        metric = f.metric
        state = materialized.get(f"metrics/{name}", {})
        entry = {
            "name": name,
            "kind": "metric",
            "asset_key": f"metrics/{name}",
            "type": metric.type,
            "description": metric.description or "",
            "owner": metric.owner,
            "tags": {k: v for k, v in metric.meta.items() if k != "owner"},
            "dimensions": list(metric.dimensions),
            "sources": f.sources,
            "source_columns": f.source_columns,
            "partitions": {"start": f.partitions_start.isoformat(), "grain": "day"},
            "code_version": f.code_version,
            "file": f"{metric.origin.shown_as}:{metric.origin.line}",
            "last_materialized_at": state.get("materialized_at").isoformat() if state.get("materialized_at") else None,
            "materialized_days": f"{state['first_day']}..{state['last_day']}" if state else None,
        }
        if note:
            entry["note"] = note
        entries.append(entry)
    if search:
        needle = search.lower()
        entries = [e for e in entries if needle in _haystack(e)]
    return entries


def _haystack(entry: dict[str, Any]) -> str:
    tags = " ".join(f"{k} {v}" for k, v in entry["tags"].items())
    return " ".join([entry["name"], entry["description"], entry["owner"] or "", tags, entry["type"]]).lower()
