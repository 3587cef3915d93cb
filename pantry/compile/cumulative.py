"""Cumulative metrics: a time spine joined to each day's partial aggregates in the window,
then days reduced to the queried grain by ``period_agg``.

Why partials: the window join pairs every spine day with every row it reaches, so a
90-day window reads each row 90 times. Sums, counts and extremes combine exactly from
each day's partial (``sql.combined``), so the join reads one partial per day and group
instead (2.8 s to 0.43 s for one 3-month window over TPC-H SF1's lineitem). Distinct
counts, averages and percentiles do not combine: they keep the row-level join.

Why several metrics in one join: cumulative metrics over one model with the same window,
grain, names and time filters differ only in their measure and their own filters, so they
share the rows, the partials (each its aggregate ``FILTER (WHERE ...)``) and the spine
join. The answer stays each metric's own: a metric has a day (and a period) only where its
own rows reach (``__n<i>``, the rows counted in its window), else its value is null.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlglot import exp

from pantry.compile.context import Context, Range
from pantry.compile.fused import shared_rows
from pantry.compile.periods import _date_literal
from pantry.compile.sql import METRIC_TIME, VALUE, aggregate, col, combined, date_add, ident, spine_period, truncate
from pantry.errors import PantryError
from pantry.spec.aggregations import counts
from pantry.spec.model import Measure, Metric, SemanticModel
from pantry.spec.windows import SUB_DAILY, Window

CUMULATIVE = "pantry_cumulative"  # the key of a cumulative metric's leaf in its select's ``meta``


@dataclass
class Frame:
    """What a cumulative metric's query is apart from its measure and its own filters."""

    model: SemanticModel
    names: tuple[str, ...]
    base: str  # the grain the spine steps in
    base_name: str  # metric time at that grain: the rows' time column
    spine_table: str
    customs: dict[str, str]  # a custom granularity's name -> the spine's column for it
    others: list[str]  # names that are not metric time
    periods: dict[str, str]  # metric time names -> their grain
    on: exp.Expression  # which rows (``r``) a spine day (``s``) reaches
    where: list[exp.Expression]  # on the spine: the days' bounds and filters on metric time alone
    period_agg: str
    offset: str  # the offset its parents shift it by (it moves the rows), as text
    time: str | None  # the measure's agg-time dimension: what metric time is in its rows
    rows: Callable[[list[exp.Expression]], exp.Select]  # the row-level subquery, naming what filters read

    @property
    def key(self) -> tuple:
        """Cumulative metrics with one key can share a spine join."""
        return (
            self.model.name,
            self.names,
            self.base_name,
            self.spine_table,
            self.on.sql(),
            tuple(w.sql() for w in self.where),
            self.period_agg,
            self.offset,
            self.time,
            tuple(self.customs.items()),
        )


@dataclass
class CumulativeLeaf:
    """One cumulative metric's part of a shared spine join."""

    frame: Frame
    metric: Metric
    measure: Measure
    conditions: list[exp.Expression]  # over the rows' names: the query's, the metric's, the measure's
    column: str
    present: str | None = None  # a column saying whether it has a row in the group (on_top.py)

    @property
    def columns(self) -> list[str]:
        return [self.column] + ([self.present] if self.present is not None else [])


def shareable(measure: Measure) -> bool:
    """Partials of this measure combine exactly, so its window reads days, not rows."""
    return combined(measure, col(VALUE)) is not None


def cumulative_select(leaves: list[CumulativeLeaf]) -> exp.Select:
    """The leaves (one frame) as one spine join: the names, then each leaf's column."""
    first = leaves[0]
    frame = first.frame
    found = shared_rows([leaf.conditions for leaf in leaves], [leaf.measure for leaf in leaves], frame.rows)
    rows, columns, shared, owns = found.select, found.columns, found.shared, found.owns
    day_s = col("ds", "s")
    keys = [col(frame.base_name), *[col(n) for n in frame.others]]
    if len(leaves) == 1 and not shareable(first.measure):  # each row joins every spine day it reaches
        source, days = "cumulative_rows", [aggregate(first.measure, col(VALUE, "r"))]
        counted: list[exp.Expression | None] = [None]
        where = [*frame.where, *[_bound(c, "r") for c in first.conditions]]
    else:
        partials = exp.select(*keys, copy=False).from_("cumulative_rows", copy=False)
        days, counted = [], []
        for i, (leaf, own) in enumerate(zip(leaves, owns)):
            value = aggregate(leaf.measure, col(columns[leaf.measure.expr]))
            rows_in = None
            if own:
                where_own = exp.Where(this=exp.and_(*[c.copy() for c in own], copy=False))
                value = exp.Filter(this=value, expression=where_own)
                rows_in = exp.Filter(this=exp.Count(this=exp.Star()), expression=where_own.copy())
                partials = partials.select(exp.alias_(rows_in, ident(f"__n{i}"), copy=False), copy=False)
            partials = partials.select(exp.alias_(value, ident(f"__p{i}"), copy=False), copy=False)
            day = combined(leaf.measure, col(f"__p{i}", "r"))
            assert day is not None
            n = exp.Sum(this=col(f"__n{i}", "r")) if own else None
            if n is not None and counts(leaf.measure.agg):  # no row of its own in the window: null
                day = exp.Case(ifs=[exp.If(this=exp.GT(this=n.copy(), expression=exp.Literal.number(0)), true=day)])
            days.append(day)
            counted.append(n)
        if shared:
            partials = partials.where(exp.and_(*[c.copy() for c in shared.values()], copy=False), copy=False)
        partials = partials.group_by(*[k.copy() for k in keys], copy=False)
        source, where = "cumulative_partials", list(frame.where)
    daily = (
        exp.select(
            exp.alias_(day_s, ident("__ds"), copy=False),
            *[exp.alias_(col(g, "s"), ident(n), copy=False) for n, g in frame.customs.items()],
            *[col(n, "r") for n in frame.others],
            copy=False,
        )
        .from_(
            exp.Table(this=exp.to_identifier(frame.spine_table), alias=exp.TableAlias(this=exp.to_identifier("s"))),
            copy=False,
        )
        .join(
            exp.Table(this=exp.to_identifier(source), alias=exp.TableAlias(this=exp.to_identifier("r"))),
            on=frame.on.copy(),
            join_type="inner",
            copy=False,
        )
        .where(exp.and_(*[w.copy() for w in where], copy=False), copy=False)
        .group_by(day_s, *[col(g, "s") for g in frame.customs.values()], *[col(n, "r") for n in frame.others])
    )
    for i, (day, n) in enumerate(zip(days, counted)):
        daily = daily.select(exp.alias_(day, ident(f"__v{i}"), copy=False), copy=False)
        if n is not None:
            daily = daily.select(exp.alias_(n, ident(f"__n{i}"), copy=False), copy=False)
    if all(n is not None for n in counted):  # every leaf has filters of its own: a day of one of them
        daily = daily.having(
            exp.or_(*[exp.GT(this=n.copy(), expression=exp.Literal.number(0)) for n in counted], copy=False),
            copy=False,
        )
    daily = daily.with_("cumulative_rows", as_=rows, copy=False)
    if source == "cumulative_partials":
        daily = daily.with_(source, as_=partials, copy=False)
    return _to_grain(leaves, frame, daily, counted)


def _to_grain(
    leaves: list[CumulativeLeaf], frame: Frame, daily: exp.Select, counted: list[exp.Expression | None]
) -> exp.Select:
    """Days as the queried periods: as they are at the spine's own grain, else reduced by
    ``period_agg`` over the days each leaf has."""
    keys = [
        exp.alias_(spine_period(col("__ds"), grain, frame.base), ident(n), copy=False)
        for n, grain in frame.periods.items()
    ]
    days = daily.subquery("cumulative_days", copy=False)
    values: list[exp.Expression] = []
    if not frame.customs and all(grain == frame.base for grain in frame.periods.values()):
        for i, (leaf, n) in enumerate(zip(leaves, counted)):
            values.append(exp.alias_(col(f"__v{i}"), ident(leaf.column), copy=False))
            if leaf.present is not None:
                here = exp.GT(this=col(f"__n{i}"), expression=exp.Literal.number(0)) if n is not None else exp.true()
                values.append(exp.alias_(here, ident(leaf.present), copy=False))
        return exp.select(*keys, *[col(n) for n in frame.others], *values, copy=False).from_(days, copy=False)
    group = (
        [spine_period(col("__ds"), grain, frame.base) for grain in frame.periods.values()]
        + [col(n) for n in frame.customs]
        + [col(n) for n in frame.others]
    )
    picks = []  # first or last: the day each leaf's value is read on, per period
    for i, n in enumerate(counted):
        if frame.period_agg == "average":
            break
        has = exp.GT(this=col(f"__n{i}"), expression=exp.Literal.number(0)) if n is not None else None
        day = col("__ds") if has is None else exp.Case(ifs=[exp.If(this=has, true=col("__ds"))])
        edge = (exp.Max if frame.period_agg == "last" else exp.Min)(this=day)
        window = exp.Window(this=edge, partition_by=[g.copy() for g in group] or None)
        picks.append(exp.alias_(window, ident(f"__pick{i}"), copy=False))
    if picks:
        days = exp.select("*", *picks, copy=False).from_(days, copy=False).subquery("cumulative_picks", copy=False)
    for i, (leaf, n) in enumerate(zip(leaves, counted)):
        if frame.period_agg == "average":  # the days it has (a day it lacks is null, which AVG skips)
            reduced: exp.Expression = exp.Avg(this=col(f"__v{i}"))
        else:  # the value on that day, null or not, as MetricFlow's FIRST_VALUE / LAST_VALUE
            on_day = exp.EQ(this=col("__ds"), expression=col(f"__pick{i}"))
            reduced = exp.Max(this=exp.Case(ifs=[exp.If(this=on_day, true=col(f"__v{i}"))]))
        values.append(exp.alias_(reduced, ident(leaf.column), copy=False))
        if leaf.present is not None:
            here = (
                exp.GT(this=exp.Sum(this=col(f"__n{i}")), expression=exp.Literal.number(0))
                if n is not None
                else exp.true()
            )
            values.append(exp.alias_(here, ident(leaf.present), copy=False))
    ordered = {n: k for n, k in zip(frame.periods, keys)}
    return (
        exp.select(*[ordered[n] if n in ordered else col(n) for n in frame.names], *values, copy=False)
        .from_(days, copy=False)
        .group_by(*group, copy=False)
    )


def _bound(condition: exp.Expression, table: str) -> exp.Expression:
    bound = condition.copy()
    for column in bound.find_all(exp.Column):
        column.set("table", exp.to_identifier(table))
    return bound


class CumulativeMetrics:
    """The compiler's room for cumulative metrics (``query.Compiler`` inherits it)."""

    def _cumulative(self, metric: Metric, names: list[str], ctx: Context, window: Range, column: str) -> exp.Select:
        """Spine periods joined to rows in the window; then periods reduced to the grain by
        period_agg. The spine is the daily one, or, for a measure timed below a day, the user's
        spine at that grain (``time_spines:`` with ``time_granularity: hour``), as MetricFlow
        requires one."""
        model, measure = self._measure(metric)
        base, spine_table = self._cumulative_spine(metric, model, measure, names)
        base_name = f"{METRIC_TIME}__{base}"
        kind = "TIMESTAMP" if base in SUB_DAILY else "DATE"
        # custom granularities group the spine's days by the spine's own column
        customs = {n: g for n in names if (g := self._custom_time(metric, n))}
        if customs and base != "day":
            self._custom_refused("a cumulative metric below a day", list(customs), metric)
        others = [n for n in names if not self._time_grain(metric, n) and n not in customs]
        grains = [n for n in names if self._time_grain(metric, n)]
        # a filter on metric_time alone narrows the output days, after the window, as in
        # MetricFlow: it must not drop the rows that the window reaches back to
        on_time = self._time_only(ctx.filters, metric)
        row_filters = [f for f in ctx.filters if not any(f is t for t in on_time)]
        day_r, day_s = col(base_name, "r"), col("ds", "s")
        if metric.window is not None:
            on = exp.and_(
                exp.LTE(this=day_r, expression=day_s),
                exp.GT(this=day_r, expression=date_add(day_s, metric.window, -1, kind=kind)),
                copy=False,
            )
        elif metric.grain_to_date is not None:
            on = exp.and_(
                exp.LTE(this=day_r, expression=day_s),
                exp.GTE(this=day_r, expression=truncate(day_s, metric.grain_to_date)),
                copy=False,
            )
        else:
            on = exp.LTE(this=day_r, expression=day_s)
        first_day = (
            exp.select(exp.Min(this=col(base_name)), copy=False)
            .from_("cumulative_rows", copy=False)
            .subquery(copy=False)
        )
        last_day = (
            exp.select(exp.Max(this=col(base_name)), copy=False)
            .from_("cumulative_rows", copy=False)
            .subquery(copy=False)
        )
        if metric.window is not None:
            last = exp.LT(this=day_s, expression=date_add(last_day, metric.window, kind=kind))
        elif metric.grain_to_date is not None:
            # to the end of the last row's grain period
            period = truncate(exp.cast(last_day, kind, copy=False), metric.grain_to_date)
            last = exp.LT(this=day_s, expression=date_add(period, Window(1, metric.grain_to_date), kind=kind))
        else:
            last = exp.LTE(this=day_s, expression=last_day)
        # With --end-time the spine runs to it, as MetricFlow's does; without, it stops where the
        # window stops covering data (an all-time total would otherwise run to the spine's end).
        # an all-time total over a user's spine runs to the spine's end, as MetricFlow's does
        to_spine_end = self.catalog.daily_spine is not None and metric.window is None and metric.grain_to_date is None
        bounds = [exp.GTE(this=day_s, expression=first_day)] + (
            [last] if window.hi is None and not to_spine_end else []
        )
        if window.lo is not None:
            bounds.append(exp.GTE(this=day_s, expression=_date_literal(window.lo)))
            if ctx.offset is not None and ctx.offset.unit in self.catalog.custom_grains:
                raise PantryError(
                    f"an offset of '{ctx.offset}' over a cumulative metric with a time range is not supported yet",
                    definition=f"metric '{metric.name}'",
                    hint="drop --start-time, or offset by days",
                )
            if ctx.offset is not None:
                # MetricFlow windows a cumulative input inside the time range, then offsets it:
                # a day whose unshifted day falls before the range has no value
                bounds.append(exp.GTE(this=day_s, expression=date_add(_date_literal(window.lo), ctx.offset)))
        if window.hi is not None:
            bounds.append(exp.LTE(this=day_s, expression=_date_literal(window.hi)))
        frame = Frame(
            model=model,
            names=tuple(names),
            base=base,
            base_name=base_name,
            spine_table=spine_table,
            customs=customs,
            others=others,
            periods={n: self._time_grain(metric, n) or base for n in grains},
            on=on,
            where=bounds + [self._on_spine(f, day_s, metric) for f in on_time],
            period_agg=metric.period_agg or "first",
            offset=str(ctx.offset),
            time=time_dim.name if (time_dim := model.time_dimension_for(measure)) is not None else None,
            rows=lambda conditions: self._rows(model, measure, others + [base_name], conditions, ctx.offset, metric),
        )
        leaf = CumulativeLeaf(frame, metric, measure, row_filters, column)
        select = cumulative_select([leaf])
        if shareable(measure):  # how to share its spine join with others of its frame
            select.meta[CUMULATIVE] = leaf
        return select
