"""The catalog: every metric with its owner, lineage, partitions and freshness.

Why a list of plain dicts: the same entries feed ``pantry catalog``, ``GET /catalog`` and
tests, and JSON is the common ground. Search is a case-insensitive match over names,
descriptions, owners and tags, which is what people type.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import duckdb

from pantry.api.facts import MetricFacts
from pantry.errors import PantryError
from pantry.features.facts import FeatureFacts
from pantry.features.stats import latest_stats
from pantry.offline.metric_tables import last_materializations
from pantry.offline.store import OfflineStore
from pantry.spec.model import SavedQuery


def _materialized(offline: OfflineStore) -> tuple[dict[str, dict[str, Any]], str | None]:
    con = duckdb.connect()
    try:
        try:
            if not offline.attach(con):
                return {}, None
        except PantryError as err:
            return {}, f"the offline store cannot be read ({err.message}); materialization times are unknown"
        found = last_materializations(con, prefix="offline.")
        stats = latest_stats(con, prefix="offline.")
        for (view, feature), latest in stats.items():
            found[f"features/{view}/{feature}"] = {"materialized_at": latest["recorded_at"], "stats": latest}
        try:
            for view, first, last in con.execute(
                "SELECT view, min(day), max(day) FROM offline.features.pantry_partitions GROUP BY view"
            ).fetchall():
                found[f"views/{view}"] = {"first_day": first, "last_day": last}
        except duckdb.CatalogException:
            pass
        return found, None
    finally:
        con.close()


def feature_entries(
    facts: dict[tuple[str, str], FeatureFacts], materialized: dict[str, dict[str, Any]]
) -> list[dict[str, Any]]:
    entries = []
    for (view_name, name), f in sorted(facts.items()):
        view, feature = f.plan.view, f.planned.feature
        state = materialized.get(f"features/{view_name}/{name}", {})
        days = materialized.get(f"views/{view_name}")
        stats = {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in (state.get("stats") or {}).items()}
        entries.append(
            {
                "name": f"{view_name}:{name}",
                "kind": "feature",
                "asset_key": f"features/{view_name}/{name}",
                "type": f"{f.planned.agg} over {feature.window}" if feature.window else "latest value",
                "description": feature.description or view.description or "",
                "owner": view.owner,
                "tags": {**view.tags, **feature.tags},
                "entity": view.entity,
                "sources": f.sources,
                "source_columns": sorted({f"{m}.{c}" for deps in f.lineage.values() for m, c in deps}),
                "partitions": _partitions(f.partitions_start, f.partitions_end),
                "code_version": f.code_version,
                "file": f"{view.origin.shown_as}:{feature.line or view.origin.line}",
                "last_materialized_at": state["materialized_at"].isoformat() if state.get("materialized_at") else None,
                "materialized_days": f"{days['first_day']}..{days['last_day']}" if days else None,
                "latest_stats": stats or None,
            }
        )
    return entries


def catalog_entries(
    facts: dict[str, MetricFacts],
    offline: OfflineStore,
    search: str | None = None,
    features: dict[tuple[str, str], FeatureFacts] | None = None,
    saved_queries: dict[str, SavedQuery] | None = None,
) -> list[dict[str, Any]]:
    materialized, note = _materialized(offline)
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
            "partitions": _partitions(f.partitions_start, f.partitions_end),
            "code_version": f.code_version,
            "file": f"{metric.origin.shown_as}:{metric.origin.line}",
            "last_materialized_at": state.get("materialized_at").isoformat() if state.get("materialized_at") else None,
            "materialized_days": f"{state['first_day']}..{state['last_day']}" if state else None,
        }
        if note:
            entry["note"] = note
        entries.append(entry)
    entries += feature_entries(features or {}, materialized)
    entries += saved_query_entries(saved_queries or {})
    if search:
        needle = search.lower()
        entries = [e for e in entries if needle in _haystack(e)]
    return entries


def saved_query_entries(saved: dict[str, SavedQuery]) -> list[dict[str, Any]]:
    """Saved queries beside metrics and features: what they ask, and how to run them."""
    return [
        {
            "name": name,
            "kind": "saved_query",
            "type": "saved query",
            "description": q.description or q.label or f"saved query of {', '.join(q.metrics)}",
            "owner": None,
            "tags": {},
            "metrics": list(q.metrics),
            "group_by": list(q.group_by),
            "where": list(q.where),
            "run": f"pantry query --saved-query {name}",
            "file": f"{q.origin.shown_as}:{q.origin.line}",
        }
        for name, q in sorted(saved.items())
    ]


def _haystack(entry: dict[str, Any]) -> str:
    tags = " ".join(f"{k} {v}" for k, v in entry["tags"].items())
    return " ".join(
        [entry["name"], entry["description"], entry["owner"] or "", tags, entry["type"], entry["kind"]]
    ).lower()


def _partitions(start: date, end: date | None) -> dict[str, str | None]:
    return {"start": start.isoformat(), "end": end.isoformat() if end else None, "grain": "day"}
