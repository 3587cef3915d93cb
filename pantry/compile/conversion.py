"""Conversion metrics: base events, each joined to the first conversion event of the same
entity inside the window, as MetricFlow builds them.

``ConversionMetrics`` is inherited by ``query.Compiler`` (a room of the compiler); its
methods use the compiler's others through ``self``.
"""

from __future__ import annotations

from sqlglot import exp

from pantry.compile.context import Context, Range
from pantry.compile.joins import source_table
from pantry.compile.periods import (
    at_grain,
)
from pantry.compile.sql import (
    DAY,
    VALUE,
    aggregate,
    col,
    date_add,
    ident,
    qualified,
)
from pantry.spec.model import Measure, Metric, SemanticModel
from pantry.spec.windows import SUB_DAILY


class ConversionMetrics:
    def _conversion(self, metric: Metric, names: list[str], ctx: Context, window: Range, column: str) -> exp.Select:
        """MetricFlow's conversion metric: each conversion event is credited to the latest base
        event of the same entity (and constant properties) at or before it, within the window;
        conversions are counted at that base event's names and time, beside the base measure.

        Filters and the time range narrow the base events only, as in MetricFlow: a conversion
        after ``--end-time`` still counts for a base event inside it."""
        conversion = metric.conversion
        assert conversion is not None
        base_metric = self.metric(conversion.base.name)
        base_ctx = Context(ctx.filters + [self._where(f, metric) for f in conversion.base.filter], ctx.offset)
        opportunities = self._metric(base_metric, names, base_ctx, window, "__base")
        base_model, base_measure = self._measure(base_metric)
        conversion_model, conversion_measure = self._measure(self.metric(conversion.conversion.name))

        # events are compared at the base measure's own grain (a day, or an hour), as in MetricFlow
        base_time = base_model.time_dimension_for(base_measure)
        at = base_time.time_granularity if base_time is not None and base_time.time_granularity in SUB_DAILY else "day"

        def events(model: SemanticModel, measure: Measure, rows: exp.Select, side: int) -> exp.Select:
            time_dim = model.time_dimension_for(measure)
            entity = model.entity(conversion.entity)
            assert time_dim is not None and entity is not None  # validated
            rows = rows.select(
                exp.alias_(at_grain(qualified(time_dim.expr, "m0"), at), ident("__at"), copy=False),
                exp.alias_(
                    exp.cast(qualified(time_dim.expr, "m0"), "TIMESTAMP", copy=False), ident("__exact"), copy=False
                ),
                exp.alias_(qualified(entity.expr, "m0"), ident("__entity"), copy=False),
                copy=False,
            )
            for i, pair in enumerate(conversion.constant_properties):
                found = model.entity(pair[side]) or model.dimension(pair[side])
                assert found is not None  # validated
                rows = rows.select(exp.alias_(qualified(found.expr, "m0"), ident(f"__cp{i}"), copy=False), copy=False)
            return rows

        conditions = list(base_ctx.filters) + self._range_conditions(base_model, base_measure, window)
        base_rows = events(
            base_model,
            base_measure,
            self._rows(base_model, base_measure, names + [DAY], conditions, ctx.offset, metric),
            0,
        )
        base = exp.select("*", copy=False).from_(base_rows.subquery("base_rows", copy=False), copy=False)
        for condition in conditions:
            base = base.where(condition.copy(), copy=False)
        converted = events(
            conversion_model,
            conversion_measure,
            exp.select(
                exp.alias_(qualified(conversion_measure.expr, "m0"), ident(VALUE), copy=False),
                exp.alias_(exp.Window(this=exp.RowNumber()), ident("__event"), copy=False),
                copy=False,
            ).from_(source_table(conversion_model, "m0"), copy=False),
            1,
        )
        b, c = "b", "c"
        on = [
            exp.EQ(this=col("__entity", b), expression=col("__entity", c)),
            exp.LTE(this=col("__at", b), expression=col("__at", c)),
        ]
        if conversion.window is not None:
            kind = "TIMESTAMP" if at in SUB_DAILY else "DATE"
            on.append(
                exp.GT(this=col("__at", b), expression=date_add(col("__at", c), conversion.window, -1, kind=kind))
            )
        on += [
            exp.EQ(this=col(f"__cp{i}", b), expression=col(f"__cp{i}", c))
            for i in range(len(conversion.constant_properties))
        ]
        partition = [col("__entity", c), col("__at", c), col("__event", c)] + [
            col(f"__cp{i}", c) for i in range(len(conversion.constant_properties))
        ]
        latest = [
            exp.alias_(
                exp.Window(
                    this=exp.FirstValue(this=col(n, b)),
                    partition_by=partition,
                    # the latest base event; among events of one period, the latest by its time
                    order=exp.Order(
                        expressions=[
                            exp.Ordered(this=col("__at", b), desc=True),
                            exp.Ordered(this=col("__exact", b), desc=True),
                        ]
                    ),
                ),
                ident(n),
                copy=False,
            )
            for n in names
        ]
        credited = (
            exp.select(*latest, col("__event", c), col(VALUE, c), copy=False)
            .distinct(copy=False)
            .from_(base.subquery(b, copy=False), copy=False)
            .join(converted.subquery(c, copy=False), on=exp.and_(*on, copy=False), join_type="inner", copy=False)
        )
        conversions = exp.select(
            *[col(n) for n in names],
            exp.alias_(aggregate(conversion_measure, col(VALUE)), ident("__conversions"), copy=False),
            copy=False,
        ).from_(credited.subquery("credited", copy=False), copy=False)
        if names:
            conversions = conversions.group_by(*[col(n) for n in names], copy=False)
        joined = self._join([(opportunities, ["__base"]), (conversions, ["__conversions"])], names)
        grains = [n for n in names if self._time_grain(base_metric, n)]
        if (conversion.base.join_to_timespine or conversion.conversion.join_to_timespine) and grains:
            joined = self._join_to_spine(
                joined,
                names,
                grains,
                ["__base", "__conversions"],
                window,
                base_model,
                base_measure,
                metric,
                self._time_only(base_ctx.filters),
            )

        def filled(name: str, fill: object) -> exp.Expression:
            return col(name) if fill is None else exp.Coalesce(this=col(name), expressions=[exp.convert(fill)])

        converted_count = filled("__conversions", conversion.conversion.fill_nulls_with)
        if conversion.calculation == "conversions":
            value: exp.Expression = converted_count
        else:
            value = exp.Div(
                this=exp.cast(converted_count, "DOUBLE", copy=False),
                expression=exp.Nullif(
                    this=exp.cast(filled("__base", conversion.base.fill_nulls_with), "DOUBLE", copy=False),
                    expression=exp.Literal.number(0),
                ),
            )
        return exp.select(*[col(n) for n in names], exp.alias_(value, ident(column), copy=False), copy=False).from_(
            joined.subquery("conversion_inputs", copy=False), copy=False
        )
