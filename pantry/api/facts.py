"""What is known about each metric without running it: SQL, version, schema, lineage.

Why in ``pantry`` and not in ``pantry_dagster/assets/``: the Dagster assets and ``pantry catalog`` must
show the same version, lineage and schema. Computing them once here keeps the two views
of the catalog from disagreeing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlglot.expressions import Expression

from pantry.compile.lineage import column_lineage
from pantry.compile.query import Compiler
from pantry.engines.relations import for_engine
from pantry.errors import PantryError
from pantry.offline.metric_tables import code_version, day_request, metric_sql
from pantry.offline.sources import connect
from pantry.offline.store import OfflineStore
from pantry.spec.model import DEFAULT_FRESHNESS, Catalog, Freshness, Metric


@dataclass(frozen=True)
class MetricFacts:
    metric: Metric
    sql: str
    code_version: str
    columns: tuple[tuple[str, str], ...]
    lineage: dict[str, list[tuple[str, str]]]
    partitions_start: date
    partitions_end: date | None  # inclusive; None: open-ended
    freshness: Freshness

    @property
    def sources(self) -> list[str]:
        return sorted({model for deps in self.lineage.values() for model, _ in deps})

    @property
    def source_columns(self) -> list[str]:
        return sorted({f"{model}.{column}" for deps in self.lineage.values() for model, column in deps})


def metric_facts(
    catalog: Catalog, offline: OfflineStore | None = None, dialect: str = "duckdb"
) -> dict[str, MetricFacts]:
    """Facts for every public metric, computed with one DuckDB connection (``offline``: where
    a table source is, the store's own or an engine's). ``dialect``: an engine's, whose SQL
    the facts then show (the version, schema and lineage stay the definition's)."""
    con = connect(catalog, offline)
    facts: dict[str, MetricFacts] = {}
    try:
        for metric in catalog.public_metrics():
            sql = metric_sql(catalog, metric)
            columns = tuple((str(r[0]), str(r[1])) for r in con.execute(f"DESCRIBE {sql}").fetchall())
            tree = Compiler(catalog).compile(day_request(metric))
            facts[metric.name] = MetricFacts(
                metric=metric,
                sql=sql if dialect == "duckdb" else _engine_sql(tree, catalog, metric, dialect),
                code_version=code_version(catalog, metric),
                columns=columns,
                lineage=column_lineage(tree),
                partitions_start=metric.partitions_start or catalog.project.partitions_start,
                partitions_end=metric.partitions_end or catalog.project.partitions_end,
                freshness=metric.freshness or DEFAULT_FRESHNESS,
            )
    finally:
        con.close()
    return facts


def _engine_sql(tree: Expression, catalog: Catalog, metric: Metric, dialect: str) -> str:
    """A day of the metric as the engine runs it (its tables, its dialect), for the asset's
    page: a Spark user reading DuckDB's SQL there would be reading what never runs."""
    try:
        return for_engine(tree, catalog, dialect).sql(dialect, pretty=True)  # a copy: the tree stays DuckDB's
    except PantryError as err:
        return f"-- '{metric.name}' is not computed on this engine: {err.message}"
