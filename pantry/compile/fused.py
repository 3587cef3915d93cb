"""Simple metrics over one semantic model, aggregated in one scan with ``FILTER (WHERE ...)``.

Why: each simple metric compiles to its own subquery (aggregate the measure's rows at the
requested names), and a query's metrics are FULL OUTER JOINed on those names, as MetricFlow
does. Eighty filtered metrics of one model then scan its source eighty times and join
eighty results. Metrics that read the same model, at the same time dimension and the same
names, can share one scan: each keeps its own aggregate, restricted by its own filters.

The answer stays the joined one: a metric's value in a group is null where none of its rows
are (a count too, not 0: ``CASE WHEN COUNT(*) FILTER (...) > 0``), and a group appears only
where some metric has a row (``HAVING``), as the FULL OUTER JOIN of per-metric groups gives.
sqlglot renders ``FILTER`` as ``CASE`` inside the aggregate where a dialect lacks it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlglot import exp

from pantry.compile.sql import VALUE, aggregate, col, qualified
from pantry.spec.model import Measure, Metric, SemanticModel

FUSABLE = ("sum", "count", "count_distinct", "average", "min", "max", "sum_boolean")
LEAF = "pantry_leaf"  # the key of a simple metric's Leaf in its select's ``meta``
COUNTS = ("count", "count_distinct")  # aggregates that give 0, not null, over no rows


@dataclass
class Leaf:
    """A simple metric's aggregate, as ``Compiler._simple`` built it: enough to rebuild it
    as one column of a shared scan."""

    model: SemanticModel
    measure: Measure
    metric: Metric
    names: tuple[str, ...]
    conditions: list[exp.Expression]  # over the rows' name columns: the query's, metric's, measure's, range
    column: str

    @property
    def key(self) -> tuple:
        """Leaves with one key can share a scan: one model, time dimension and group-by."""
        time = self.model.time_dimension_for(self.measure)
        return (self.model.name, time.name if time is not None else None, self.names)


Rows = Callable[[SemanticModel, Measure, list[str], list[exp.Expression], Metric], exp.Select]


def fused(leaves: list[Leaf], rows: Rows) -> exp.Select:
    """One scan of the leaves' model: every leaf's aggregate, filtered by its own conditions.
    ``rows`` builds the row-level subquery (``Compiler._rows``)."""
    value = VALUE
    first = leaves[0]
    names = list(first.names)
    texts = [{c.sql(): c for c in leaf.conditions} for leaf in leaves]
    shared = {text: c for text, c in texts[0].items() if all(text in t for t in texts[1:])}
    every = list({text: c for t in texts for text, c in t.items()}.values())
    select = rows(first.model, first.measure, names, every, first.metric)
    columns = {first.measure.expr: value}  # a measure's SQL -> its value column in the rows
    for leaf in leaves[1:]:
        if leaf.measure.expr not in columns:
            columns[leaf.measure.expr] = f"{value}_{len(columns)}"
            alias = exp.alias_(qualified(leaf.measure.expr, "m0"), col(columns[leaf.measure.expr]).this, copy=False)
            select = select.select(alias, copy=False)
    outer = exp.select(*[col(n) for n in names], copy=False).from_(
        select.subquery("measure_rows", copy=False), copy=False
    )
    present = []
    every_group = False  # a leaf with no conditions of its own has a row in every group
    for leaf, own in zip(leaves, texts):
        mine = [c.copy() for text, c in own.items() if text not in shared]
        agg = aggregate(leaf.measure, col(columns[leaf.measure.expr]))
        rows_in: exp.Expression = exp.Count(this=exp.Star())
        every_group = every_group or not mine
        if mine:
            where = exp.and_(*mine, copy=False)
            agg = exp.Filter(this=agg, expression=exp.Where(this=where))
            rows_in = exp.Filter(this=rows_in, expression=exp.Where(this=where.copy()))
        present.append(exp.GT(this=rows_in, expression=exp.Literal.number(0)))
        if leaf.measure.agg in COUNTS and mine and names:  # no row in a group: null, as the join gives
            agg = exp.Case(ifs=[exp.If(this=present[-1].copy(), true=agg)])
        outer = outer.select(exp.alias_(agg, col(leaf.column).this, copy=False), copy=False)
    for condition in shared.values():
        outer = outer.where(condition.copy(), copy=False)
    if names:
        outer = outer.group_by(*[col(n) for n in names], copy=False)
        if not every_group:
            outer = outer.having(exp.or_(*present, copy=False), copy=False)
    return outer


def fusable(measure: Measure, metric: Metric) -> bool:
    """A plain simple metric: no semi-additive pick, no spine join, an aggregate FILTER takes."""
    ref = metric.measure  # the metric's use of its measure: filter, offset, spine join
    return (
        metric.type == "simple"
        and ref is not None
        and not ref.join_to_timespine
        and ref.offset_window is None
        and measure.non_additive is None
        and measure.agg in FUSABLE
    )
