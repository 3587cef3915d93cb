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

from pantry.compile.sql import VALUE, aggregate, col, date_add, ident, qualified, truncate
from pantry.spec.aggregations import aggregation, counts
from pantry.spec.model import Measure, Metric, SemanticModel
from pantry.spec.windows import Window

LEAF = "pantry_leaf"  # the key of a simple metric's Leaf in its select's ``meta``


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
    offset: Window | None = None  # the metric time shift of its rows (an offset input)
    present: str | None = None  # a column saying whether the leaf has rows in the group (on_top.py)
    # an offset of whole periods of the one queried time name (``metric_time__month`` moved by
    # ``1 month``): (that name, its grain). Such a leaf is its unshifted aggregate, moved.
    shift: tuple[str, str] | None = None

    @property
    def columns(self) -> list[str]:
        """The columns the leaf answers: its value, and its presence where asked."""
        return [self.column] + ([self.present] if self.present is not None else [])

    @property
    def key(self) -> tuple:
        """Leaves with one key can share a scan: one model, time dimension and group-by, and
        one offset (a period offset shares the unshifted scan and moves its groups)."""
        time = self.model.time_dimension_for(self.measure)
        offset = None if self.shift is not None else self.offset
        return (self.model.name, time.name if time is not None else None, self.names, str(offset))


@dataclass
class SharedRows:
    """One row-level subquery for several metrics of one model: the rows every metric reads
    (each measure's value a column of its own), and how the metrics' conditions split into
    those all of them have (``shared``, a WHERE) and each one's own (``owns``, a FILTER)."""

    select: exp.Select
    columns: dict[str, str]  # a measure's SQL -> its value column in the rows
    shared: dict[str, exp.Expression]  # by SQL text
    owns: list[list[exp.Expression]]


def shared_rows(
    conditions: list[list[exp.Expression]], measures: list[Measure], rows: Callable[[list[exp.Expression]], exp.Select]
) -> SharedRows:
    """The rows for metrics with these conditions and measures (the first measure's value is
    ``VALUE``); ``rows(every condition)`` builds the subquery naming what they all read."""
    texts = [{c.sql(): c for c in own} for own in conditions]
    shared = {text: c for text, c in texts[0].items() if all(text in t for t in texts[1:])}
    every = list({text: c for t in texts for text, c in t.items()}.values())
    select = rows(every)
    columns = {measures[0].expr: VALUE}
    for measure in measures[1:]:
        if measure.expr not in columns:
            columns[measure.expr] = f"{VALUE}_{len(columns)}"
            alias = exp.alias_(qualified(measure.expr, "m0"), ident(columns[measure.expr]), copy=False)
            select = select.select(alias, copy=False)
    owns = [[c for text, c in own.items() if text not in shared] for own in texts]
    return SharedRows(select, columns, shared, owns)


Part = tuple[exp.Select, list[str]]  # a subquery of the query's join, and its value columns
Rows = Callable[[SemanticModel, Measure, list[str], list[exp.Expression], Window | None, Metric], exp.Select]


def fused_parts(leaves: list[Leaf], rows: Rows, scan: str) -> tuple[exp.Select | None, list[Part]]:
    """The leaves of one key as parts of the query's join. Without period offsets, one part:
    the shared scan. With them, the scan is a named subquery (``WITH <scan>``, returned
    first, for the caller to attach): one part reads the unshifted leaves from it, and one
    part per offset reads the shifted ones with their period moved, as the join at the
    query's grain moves each row's period (a period that does not land on a period start
    has no value).

    Each part keeps only the groups where one of its leaves has rows: a flag per leaf,
    unless the part's leaves have rows wherever the scan has (for each leaf of the scan, one
    of the part's with the same conditions, or one with none of its own). A leaf with the
    measure and conditions of another (this month's revenue and last month's) is computed
    once."""
    twins = [leaf for leaf in leaves if leaf.shift is not None]
    if not twins:
        return None, [(fused(leaves, rows), [c for leaf in leaves for c in leaf.columns])]
    names = list(leaves[0].names)
    moving, grain = twins[0].shift  # type: ignore[misc]  # one key: one moving name and grain
    signs = [frozenset(c.sql() for c in leaf.conditions) for leaf in leaves]
    least = frozenset.intersection(*signs)  # the conditions every leaf has: a leaf with no more has every group
    canon: dict[tuple, int] = {}
    same = [canon.setdefault((signs[i], leaf.measure.agg, leaf.measure.expr), i) for i, leaf in enumerate(leaves)]
    groups: dict[str, list[int]] = {}
    for i, leaf in enumerate(leaves):
        groups.setdefault(str(leaf.offset) if leaf.shift is not None else "", []).append(i)

    def covers(members: list[int]) -> bool:
        mine = {signs[i] for i in members}
        return least in mine or all(sign in mine for sign in signs)

    flagged = {same[i] for members in groups.values() if not covers(members) for i in members}
    flags = [f"__any{i}" if i in flagged else None for i in range(len(leaves))]
    select = fused(leaves, rows, flags, same)
    parts: list[Part] = []
    for offset, members in groups.items():
        keys: list[exp.Expression] = [col(n) for n in names]
        where: list[exp.Expression] = []
        if not covers(members):
            where.append(exp.or_(*[col(f"__any{same[i]}") for i in members], copy=False))
        if offset:
            window = leaves[members[0]].offset
            assert window is not None
            moved = date_add(col(moving), window)
            keys = [exp.alias_(moved, ident(moving), copy=False) if n == moving else col(n) for n in names]
            where.append(exp.EQ(this=truncate(moved.copy(), grain), expression=moved.copy()))
        values: list[exp.Expression] = []
        for i in members:
            leaf = leaves[i]
            source = leaves[same[i]].column
            values.append(col(source) if source == leaf.column else exp.alias_(col(source), ident(leaf.column)))
            if leaf.present is not None:
                values.append(col(leaf.present))
        part = exp.select(*keys, *values, copy=False).from_(scan, copy=False)
        if where:
            part = part.where(exp.and_(*where, copy=False), copy=False)
        parts.append((part, [c for i in members for c in leaves[i].columns]))
    return select, parts


def fused(
    leaves: list[Leaf], rows: Rows, flags: list[str | None] | None = None, same: list[int] | None = None
) -> exp.Select:
    """One scan of the leaves' model: every leaf's aggregate, filtered by its own conditions.
    ``rows`` builds the row-level subquery (``Compiler._rows``). With ``flags``, a leaf
    also answers whether it has rows in the group, in the column so named; a leaf whose
    ``same`` is another's is not computed again (its reader takes the other's column)."""
    first = leaves[0]
    names = list(first.names)
    offset = None if any(leaf.shift is not None for leaf in leaves) else first.offset  # twins read unshifted rows
    found = shared_rows(
        [leaf.conditions for leaf in leaves],
        [leaf.measure for leaf in leaves],
        lambda every: rows(first.model, first.measure, names, every, offset, first.metric),
    )
    columns, shared = found.columns, found.shared
    outer = exp.select(*[col(n) for n in names], copy=False).from_(
        found.select.subquery("measure_rows", copy=False), copy=False
    )
    present = []
    every_group = False  # a leaf with no conditions of its own has a row in every group
    for i, leaf in enumerate(leaves):
        mine = [c.copy() for c in found.owns[i]]
        if same is not None and same[i] != i:  # computed once, under the other leaf's column
            every_group = every_group or not mine
            if leaf.present is not None:
                here = _rows_in(mine) if mine else exp.true()
                outer = outer.select(exp.alias_(here, col(leaf.present).this, copy=False), copy=False)
            continue
        agg = aggregate(leaf.measure, col(columns[leaf.measure.expr]))
        rows_in: exp.Expression = exp.Count(this=exp.Star())
        every_group = every_group or not mine
        if mine:
            where = exp.and_(*mine, copy=False)
            agg = exp.Filter(this=agg, expression=exp.Where(this=where))
            rows_in = exp.Filter(this=rows_in, expression=exp.Where(this=where.copy()))
        present.append(exp.GT(this=rows_in, expression=exp.Literal.number(0)))
        if counts(leaf.measure.agg) and mine and names:  # no row in a group: null, as the join gives
            agg = exp.Case(ifs=[exp.If(this=present[-1].copy(), true=agg)])
        outer = outer.select(exp.alias_(agg, col(leaf.column).this, copy=False), copy=False)
        if leaf.present is not None:
            here = present[-1].copy() if mine else exp.true()
            outer = outer.select(exp.alias_(here, col(leaf.present).this, copy=False), copy=False)
        if flags is not None and flags[i] is not None:
            flag = present[-1].copy() if mine else exp.true()
            outer = outer.select(exp.alias_(flag, ident(flags[i]), copy=False), copy=False)
    for condition in shared.values():
        outer = outer.where(condition.copy(), copy=False)
    if names:
        outer = outer.group_by(*[col(n) for n in names], copy=False)
        if not every_group:
            outer = outer.having(exp.or_(*present, copy=False), copy=False)
    return outer


def _rows_in(mine: list[exp.Expression]) -> exp.Expression:
    """Whether the group has rows passing a leaf's own conditions."""
    where = exp.Where(this=exp.and_(*[c.copy() for c in mine], copy=False))
    return exp.GT(this=exp.Filter(this=exp.Count(this=exp.Star()), expression=where), expression=exp.Literal.number(0))


def fusable(measure: Measure, metric: Metric) -> bool:
    """A plain simple metric: no semi-additive pick, no spine join, an aggregate FILTER takes
    (an offset is fine: leaves share a scan only with leaves of the same offset)."""
    ref = metric.measure  # the metric's use of its measure: filter, offset, spine join
    return (
        metric.type == "simple"
        and ref is not None
        and not ref.join_to_timespine
        and measure.non_additive is None
        and (found := aggregation(measure.agg)) is not None
        and found.shares_scan
    )
