"""Simple metrics: a measure's rows, filtered and offset, aggregated at the queried names.

Why the range conditions live here: a daily partition's range and a user's range differ
only in how the end of a day is read for measures timed below a day, and that is decided
where the rows are read. Metrics over the same model share one scan (``fused.py``).
``SimpleMetrics`` is inherited by ``query.Compiler`` (a room of the compiler).
"""

from __future__ import annotations

from sqlglot import exp

from pantry.compile.context import Context, Range
from pantry.compile.cumulative import CUMULATIVE, cumulative_select
from pantry.compile.fused import LEAF, Leaf, fusable, fused_parts
from pantry.compile.periods import (
    _date_literal,
    _timestamp_literal,
)
from pantry.compile.sql import (
    DAY,
    METRIC_TIME,
    VALUE,
    aggregate,
    col,
    ident,
)
from pantry.errors import did_you_mean
from pantry.spec.filters import filter_names
from pantry.spec.model import Measure, Metric, SemanticModel
from pantry.spec.windows import SUB_DAILY


class SimpleMetrics:
    def _simple(self, metric: Metric, names: list[str], ctx: Context, window: Range, column: str) -> exp.Select:
        model, measure = self._measure(metric)
        conditions = list(ctx.filters) + self._range_conditions(model, measure, window)
        rows = self._rows(model, measure, names, conditions, ctx.offset, metric)
        if measure.non_additive is not None:
            rows = self._semi_additive(rows, model, measure, names, conditions)
            conditions = []  # applied before the pick, inside _semi_additive
        value = aggregate(measure, col(VALUE))
        select = exp.select(*[col(n) for n in names], exp.alias_(value, ident(column), copy=False), copy=False).from_(
            rows.subquery("measure_rows", copy=False), copy=False
        )
        for condition in conditions:
            select = select.where(condition.copy(), copy=False)
        if names:
            select = select.group_by(*[col(n) for n in names], copy=False)
        if metric.measure is not None and fusable(measure, metric):  # how to fuse it
            shift = self._period_shift(metric, model, measure, names, conditions, ctx.offset)
            select.meta[LEAF] = Leaf(model, measure, metric, tuple(names), conditions, column, ctx.offset, None, shift)
        spine_grains = [n for n in names if self._time_grain(metric, n) or self._custom_time(metric, n)]
        if metric.measure and metric.measure.join_to_timespine and spine_grains:
            joined = self._join_to_spine(
                select, names, spine_grains, column, window, model, measure, metric, self._time_only(ctx.filters)
            )
            # the query's filter on a queried dimension holds after the spine join too, as in
            # MetricFlow (spine periods with no row would come back with that dimension null);
            # a metric's or measure's own filter is not applied again
            on_time = self._time_only(ctx.filters)
            again = [
                f
                for f in ctx.filters
                if any(f is q for q in self._query_where)
                and not any(f is t for t in on_time)
                and (used := filter_names(f))
                and set(used) <= set(names)
            ]
            if again:
                joined = (
                    exp.select("*", copy=False)
                    .from_(joined.subquery("spine_joined", copy=False), copy=False)
                    .where(exp.and_(*[f.copy() for f in again], copy=False), copy=False)
                )
            return joined
        return select

    def _measure_metric(self, metric: Metric, names: list[str], ctx: Context, window: Range, column: str) -> exp.Select:
        """A simple or cumulative metric: its measure's filters and offset, then its rows."""
        assert metric.measure is not None
        inner = Context(ctx.filters + [self._where(f, metric) for f in metric.measure.filter], ctx.offset)
        if metric.measure.offset_window is not None:
            inner.offset = self._add_offsets(inner.offset, metric.measure.offset_window, metric)
        if metric.type == "cumulative" and any(
            self._time_grain(metric, n) or self._custom_time(metric, n) for n in names
        ):
            days = self._cumulative(metric, names, inner, window, column)
            if not metric.measure.join_to_timespine:
                return days
            # join_to_timespine on a cumulative metric's measure: every spine period gets a row
            model, measure = self._measure(metric)
            grains = [n for n in names if self._time_grain(metric, n)]
            return self._join_to_spine(
                days, names, grains, column, window, model, measure, metric, self._time_only(inner.filters)
            )
        return self._simple(metric, names, inner, window, column)

    @staticmethod
    def _range_conditions(model: SemanticModel, measure: Measure, window: Range) -> list[exp.Expression]:
        """The time range on metric time. A measure timed below a day is compared at its own
        grain with the end as midnight, as MetricFlow does: ``--end-time 2024-01-20`` leaves
        out that day's events after 00:00."""
        conditions: list[exp.Expression] = []
        time_dim = model.time_dimension_for(measure)
        timed = window.fine and time_dim is not None and time_dim.time_granularity in SUB_DAILY
        if window.lo is not None:
            conditions.append(exp.GTE(this=col(DAY), expression=_date_literal(window.lo)))
        if window.hi is not None and timed and window.hi_at is not None:
            conditions.append(exp.LTE(this=col(DAY), expression=_date_literal(window.hi)))  # the moment below decides
        elif window.hi is not None:
            if time_dim is not None and time_dim.time_granularity in SUB_DAILY and not window.whole_days:
                moment = col(f"{METRIC_TIME}__{time_dim.time_granularity}")
                midnight = exp.cast(exp.Literal.string(window.hi.isoformat()), "TIMESTAMP", copy=False)
                conditions.append(exp.LTE(this=moment, expression=midnight))
            else:
                conditions.append(exp.LTE(this=col(DAY), expression=_date_literal(window.hi)))
        if timed:
            moment = col(f"{METRIC_TIME}__{window.fine}")
            if window.lo_at is not None:
                conditions.append(exp.GTE(this=moment, expression=_timestamp_literal(window.lo_at)))
            if window.hi_at is not None:
                conditions.append(exp.LT(this=moment.copy(), expression=_timestamp_literal(window.hi_at)))
        return conditions

    def _measure(self, metric: Metric) -> tuple[SemanticModel, Measure]:
        assert metric.measure is not None
        found = self.catalog.measure(metric.measure.name)
        if found is None:
            raise metric.origin.error(
                f"measure '{metric.measure.name}' does not exist",
                definition=f"metric '{metric.name}'",
                field="type_params.measure",
                hint=did_you_mean(
                    metric.measure.name, [m.name for s in self.catalog.semantic_models.values() for m in s.measures]
                ),
            )
        return found

    def _fuse(
        self, parts: list[tuple[exp.Select, list[str]]]
    ) -> tuple[list[tuple[exp.Select, list[str]]], list[tuple[str, exp.Select]]]:
        """Parts that are plain simple metrics of one model, time dimension and names, as one
        scan; with the scans that several parts read (period offsets), by name."""
        groups: dict[tuple, list[int]] = {}
        for i, (select, _) in enumerate(parts):
            leaf = select.meta.get(LEAF)
            if leaf is not None:
                groups.setdefault(("simple", leaf.key), []).append(i)
            cumulative = select.meta.get(CUMULATIVE)
            if cumulative is not None:
                groups.setdefault(("cumulative", cumulative.frame.key), []).append(i)
        if all(len(g) < 2 for g in groups.values()):
            return parts, []
        out: list[tuple[exp.Select, list[str]]] = []
        scans: list[tuple[str, exp.Select]] = []
        merged = {i: g for g in groups.values() if len(g) > 1 for i in g}
        for i, part in enumerate(parts):
            group = merged.get(i)
            if group is None:
                out.append(part)
            elif i == group[0] and CUMULATIVE in part[0].meta:  # one spine join for the group
                leaves = [parts[j][0].meta[CUMULATIVE] for j in group]
                out.append((cumulative_select(leaves), [c for leaf in leaves for c in leaf.columns]))
            elif i == group[0]:
                self._scans += 1
                name = f"__scan{self._scans}"
                scan, shared = fused_parts(
                    [parts[j][0].meta[LEAF] for j in group],
                    lambda model, measure, names, conditions, offset, metric: self._rows(
                        model, measure, names, conditions, offset, metric
                    ),
                    name,
                )
                out += shared
                if scan is not None:
                    scans.append((name, scan))
        return out, scans
