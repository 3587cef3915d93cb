"""What is known about each feature without materializing it: version, schema, lineage.

Why here: the Dagster specs and ``pantry catalog`` show the same facts, so they are
computed once, next to the plan they describe.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date

import sqlglot
from sqlglot import exp

from pantry.compile.view_plan import PlannedFeature, ViewPlan, plan_view
from pantry.features.reads import TIMESTAMP
from pantry.offline.sources import connect
from pantry.offline.store import OfflineStore
from pantry.spec.aggregations import aggregation
from pantry.spec.model import DEFAULT_FRESHNESS, Catalog, Freshness


@dataclass(frozen=True)
class FeatureFacts:
    plan: ViewPlan
    planned: PlannedFeature
    code_version: str
    columns: tuple[tuple[str, str], ...]
    lineage: dict[str, list[tuple[str, str]]]
    partitions_start: date
    partitions_end: date | None  # inclusive; None: open-ended
    freshness: Freshness

    @property
    def sources(self) -> list[str]:
        return sorted({m for deps in self.lineage.values() for m, _ in deps})


def _columns(sql: str) -> list[str]:
    return sorted({c.name for c in sqlglot.parse_one(sql, read="duckdb").find_all(exp.Column)})


def feature_facts(catalog: Catalog, offline: OfflineStore | None = None) -> dict[tuple[str, str], FeatureFacts]:
    """Every feature's facts (``offline``: where a table source is, the store's own or an engine's)."""
    facts: dict[tuple[str, str], FeatureFacts] = {}
    plans = {name: plan_view(catalog, view) for name, view in catalog.views.items()}
    models = {p.model.name: p.model for plan in plans.values() for p in plan.features}
    con = connect(catalog, offline, models=list(models.values())) if models else None
    try:
        for name, plan in plans.items():
            view = plan.view
            for planned in plan.features:
                model = planned.model
                entity = model.entity(view.entity)
                assert entity is not None
                time_dim = (
                    model.time_dimension_for(planned.measure)
                    if planned.measure
                    else model.dimension(model.agg_time_dimension or "")
                )
                assert time_dim is not None
                fingerprint = "|".join(
                    map(
                        str,
                        [
                            planned.feature,
                            planned.value_expr,
                            planned.agg,
                            planned.days,
                            plan.window,
                            view.ttl,
                            model.source,
                            entity.expr,
                            time_dim.expr,
                            planned.measure,
                        ],
                    )
                )
                found = aggregation(planned.agg)
                value_type = "BIGINT" if found is not None and found.integer else "DOUBLE"
                if planned.agg in ("sum", "min", "max", "last") and con is not None:
                    value_type = str(
                        con.execute(f'DESCRIBE SELECT {planned.value_expr} AS v FROM src."{model.name}"').fetchall()[0][
                            1
                        ]
                    )
                key_type = (
                    str(con.execute(f'DESCRIBE SELECT {entity.expr} AS k FROM src."{model.name}"').fetchall()[0][1])
                    if con
                    else "BIGINT"
                )
                facts[(name, planned.feature.name)] = FeatureFacts(
                    plan=plan,
                    planned=planned,
                    code_version=hashlib.sha256(fingerprint.encode()).hexdigest()[:16],
                    columns=(
                        (plan.key, key_type),
                        (TIMESTAMP, "TIMESTAMP WITH TIME ZONE"),
                        (planned.feature.name, value_type),
                    ),
                    lineage={
                        plan.key: [(model.name, c) for c in _columns(entity.expr)],
                        TIMESTAMP: [(model.name, c) for c in _columns(time_dim.expr)],
                        # a count of rows ("1") reads no column: it is bucketed by the time
                        planned.feature.name: [
                            (model.name, c) for c in _columns(planned.value_expr) or _columns(time_dim.expr)
                        ],
                    },
                    partitions_start=view.partitions_start or catalog.project.partitions_start,
                    partitions_end=view.partitions_end or catalog.project.partitions_end,
                    freshness=view.freshness or DEFAULT_FRESHNESS,
                )
    finally:
        if con is not None:
            con.close()
    return facts
