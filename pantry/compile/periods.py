"""Time in the compiler: grains, the time spine, offsets and custom periods.

Why a room of its own: every metric kind asks the same questions of time (which grain a
name means, how a range widens to whole periods, how an offset shifts rows or periods,
how a spine gives every period a row, how a custom granularity maps days to periods), and
MetricFlow answers them the same way for all kinds. Here they are answered once; the
metric kinds (``simple.py``, ``cumulative.py``, ``conversion.py``, ``on_top.py``) call them.
``TimeRules`` is inherited by ``query.Compiler``; its methods use the compiler's others
through ``self``.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from sqlglot import exp

from pantry.compile.context import Context, QueryRequest, Range
from pantry.compile.sql import (
    DAY,
    METRIC_TIME,
    SPINE_TABLE,
    col,
    date_add,
    ident,
    spine_period,
    truncate,
)
from pantry.errors import PantryError
from pantry.spec.aggregations import adds_up
from pantry.spec.filters import filter_names
from pantry.spec.model import Measure, Metric, SemanticModel
from pantry.spec.names import (
    DATE_PARTS,
    Resolved,
    date_part_of,
    metric_time_grain,
    output_name,
)
from pantry.spec.windows import GRAINS, SUB_DAILY, Window


def at_grain(value: exp.Expression, grain: str | None, offset: Window | None = None) -> exp.Expression:
    """A time column, shifted by ``offset`` and truncated to ``grain`` (day when None)."""
    grain = grain or "day"
    fine = grain in SUB_DAILY or (offset is not None and offset.unit in SUB_DAILY)
    kind = "TIMESTAMP" if fine else "DATE"
    value = exp.cast(value, kind, copy=False)
    if offset is not None:
        value = date_add(value, offset, kind=kind)
    if grain == "day" and fine:
        return exp.cast(value, "DATE", copy=False)
    return truncate(value, grain)


def sub_daily_refused(what: str, names: list[str]) -> None:
    """The daily spine cannot answer below a day; say which name asked for it."""
    fine = [n for n in names if n.split("__")[-1] in SUB_DAILY]
    if fine:
        raise PantryError(
            f"{what} below a day ({', '.join(fine)}) is not supported yet: the time spine is daily",
            hint="group by metric_time__day or coarser",
        )


def period_start(day: date, grain: str) -> date:
    if grain == "day":
        return day
    if grain == "week":
        return day - timedelta(days=day.weekday())
    if grain == "month":
        return day.replace(day=1)
    if grain == "quarter":
        return day.replace(month=(day.month - 1) // 3 * 3 + 1, day=1)
    return day.replace(month=1, day=1)


def period_end(day: date, grain: str) -> date:
    start = period_start(day, grain)
    if grain == "day":
        return start
    if grain == "week":
        return start + timedelta(days=6)
    months = {"month": 1, "quarter": 3, "year": 12}[grain]
    month = start.month - 1 + months
    return date(start.year + month // 12, month % 12 + 1, 1) - timedelta(days=1)


def _date_literal(day: date) -> exp.Expression:
    return exp.cast(exp.Literal.string(day.isoformat()), "DATE", copy=False)


def _timestamp_literal(day: date) -> exp.Expression:
    """Midnight of ``day``, or the moment itself for a datetime."""
    text = day.isoformat(sep=" ") if isinstance(day, datetime) else f"{day.isoformat()} 00:00:00"
    return exp.cast(exp.Literal.string(text), "TIMESTAMP", copy=False)


_FINE_STEP = {
    "hour": timedelta(hours=1),
    "minute": timedelta(minutes=1),
    "second": timedelta(seconds=1),
    "millisecond": timedelta(milliseconds=1),
}


def _fine_floor(at: datetime, grain: str) -> datetime:
    """``at`` truncated to a grain below a day."""
    if grain == "hour":
        return at.replace(minute=0, second=0, microsecond=0)
    if grain == "minute":
        return at.replace(second=0, microsecond=0)
    if grain == "second":
        return at.replace(microsecond=0)
    return at.replace(microsecond=at.microsecond // 1000 * 1000)


def fine_bounds(
    start_at: datetime | None, end_at: datetime | None, grain: str
) -> tuple[datetime | None, datetime | None]:
    """[start of the start's period, end of the end's period) at a grain below a day, as
    MetricFlow adjusts a sub-daily time constraint (02:00:25 to 05:00:53 by hour: 02:00 to 06:00)."""
    lo = _fine_floor(start_at, grain) if start_at is not None else None
    hi = _fine_floor(end_at, grain) + _FINE_STEP[grain] if end_at is not None else None
    return lo, hi


class TimeRules:
    def _to_grain(
        self, metric: Metric, grain: str, names: list[str], ctx: Context, window: Range, column: str, parent: Metric
    ) -> exp.Select:
        """``offset_to_grain``: each time period answers with the input's value at the start of
        its ``grain`` period (a day of March gets March 1st's value), as MetricFlow's inner join
        of its time spine on ``date_trunc(grain, ds)`` does. Periods come from the spine, so the
        time range and metric_time filters narrow the periods, not the rows the value reads."""
        times = [(n, g) for n in names if (g := self._time_grain(metric, n))]
        where = dict(
            file=parent.origin.shown_as,
            line=parent.origin.line,
            definition=f"metric '{parent.name}'",
            field="type_params.metrics.offset_to_grain",
        )
        if not times:
            raise PantryError(
                f"input '{metric.name}' has offset_to_grain: {grain}, so a query needs metric time",
                hint="group by metric_time, e.g. --group-by metric_time__day",
                **where,
            )
        if ctx.offset is not None:
            raise PantryError("cannot stack offset_to_grain on an offset_window", hint="use one of them", **where)
        finest_name, finest = min(times, key=lambda t: GRAINS.index(t[1]))
        # periods below a day come from the user's spine at that grain
        spine_table = (
            self._fine_spine(finest, f"offset_to_grain at {finest} grain", parent, where["field"])
            if finest in SUB_DAILY
            else SPINE_TABLE
        )
        self._custom_refused("offset_to_grain", names, parent)
        on_time = self._time_only(ctx.filters)
        rest = [f for f in ctx.filters if not any(f is t for t in on_time)]
        others = [n for n in names if not self._time_grain(metric, n)]
        # a week, or a period that holds the offset's (a year over a month), does not nest in
        # it: as MetricFlow, each period reads the input's value on the day its first day's
        # ``grain`` period starts (the week of Monday March 4th reads March 1st)
        by_day = finest == "week" or GRAINS.index(finest) > GRAINS.index(grain)
        read_at = DAY if by_day else finest_name
        values = self._metric(metric, [read_at] + others, Context(rest, None), Range(None, None), column)
        day = col("ds", "s")
        bounds = [self._on_spine(f, day) for f in on_time]
        if window.lo is not None:
            bounds.append(exp.GTE(this=day, expression=_date_literal(window.lo)))
        if window.hi is not None:
            bounds.append(exp.LTE(this=day, expression=_date_literal(window.hi)))
        periods = (
            exp.select(exp.alias_(truncate(day, finest), ident("__period"), copy=False), copy=False)
            .distinct(copy=False)
            .from_(exp.to_table(spine_table).as_("s"), copy=False)
        )
        if bounds:
            periods = periods.where(exp.and_(*bounds, copy=False), copy=False)
        grains = {g for _, g in times}
        if by_day and len(grains) > 1:
            # several grains (week and month): every day that starts a period of one of them, as
            # MetricFlow's spine filter does, and the values added up per group of periods
            simple = metric.type == "simple" and (
                found := self.catalog.measure(metric.measure.name if metric.measure else "")
            )
            if not simple or not adds_up(found[1].agg):
                raise PantryError(
                    f"offset_to_grain: {grain} by several grains ({', '.join(sorted(grains))}) needs an input that adds up",
                    hint="query one grain at a time",
                    **where,
                )
            starts = exp.or_(
                *[exp.EQ(this=truncate(day, g), expression=day.copy()) for g in sorted(grains)], copy=False
            )
            periods = (
                exp.select(exp.alias_(day.copy(), ident("__period"), copy=False), copy=False)
                .from_(exp.to_table(spine_table).as_("s"), copy=False)
                .where(exp.and_(starts, *bounds, copy=False) if bounds else starts, copy=False)
            )
        period = col("__period", "p")
        joined = (
            exp.select(
                *[
                    exp.alias_(truncate(period, g), ident(n), copy=False)
                    if (g := self._time_grain(metric, n))
                    else col(n, "v")
                    for n in names
                ],
                col(column, "v"),
                copy=False,
            )
            .from_(periods.subquery("p", copy=False), copy=False)
            .join(
                values.subquery("v", copy=False),
                on=exp.EQ(this=truncate(period, grain), expression=col(read_at, "v")),
                join_type="inner",
                copy=False,
            )
        )
        if by_day and len(grains) > 1:
            return (
                exp.select(*[col(n) for n in names], exp.alias_(exp.Sum(this=col(column)), ident(column)), copy=False)
                .from_(joined.subquery("offset_days", copy=False), copy=False)
                .group_by(*[col(n) for n in names], copy=False)
            )
        return joined

    def _period_shift(
        self,
        metric: Metric,
        model: SemanticModel,
        measure: Measure,
        names: list[str],
        conditions: list[exp.Expression],
        offset: Window | None,
    ) -> tuple[str, str] | None:
        """(the queried time name, its grain) when an offset moves whole periods of it and
        nothing else: one time name among ``names``, coarser than a day, the offset's unit at
        least as coarse (``_period_grain``), and no condition on time (conditions read the
        moved periods). Such a leaf's value is its unshifted aggregate with the period moved
        (``fused.fused_parts``), so it shares the unshifted scan."""
        if offset is None or offset.unit in self.catalog.custom_grains or offset.unit not in GRAINS:
            return None
        own = model.time_dimension_for(measure)
        if own is None:
            return None

        def timely(name: str) -> bool:
            parts = name.split("__")
            return parts[0] == METRIC_TIME or own.name in parts or self._custom_time(metric, name) is not None

        timed = [n for n in names if timely(n)]
        if len(timed) != 1 or any(timely(n) for c in conditions for n in filter_names(c)):
            return None
        grain = self._time_grain(metric, timed[0])
        if grain is None or grain not in GRAINS or grain in SUB_DAILY or grain == "day":
            return None
        if GRAINS.index(offset.unit) < GRAINS.index(grain):
            return None
        return timed[0], grain

    def _join_to_spine(
        self,
        select: exp.Select,
        names: list[str],
        grains: list[str],
        column: str | list[str],
        window: Range,
        model: SemanticModel,
        measure: Measure,
        metric: Metric,
        on_time: list[exp.Expression],
    ) -> exp.Select:
        """Every spine period in range gets a row; the measure's value is left-joined on.

        Without a time range, a user's spine (``time_spines:``) is used whole, as MetricFlow
        uses its spine table; Pantry's own spine (1990 to 2050) is cut to the measure's days."""
        customs = {n: c for n in grains if (c := self._custom_time(metric, n))}
        fine = [g for n in grains if n not in customs and (g := self._time_grain(metric, n) or "day") in SUB_DAILY]
        if customs and fine:
            self._custom_refused("join_to_timespine below a day", list(customs), metric)
        base = min(fine, key=GRAINS.index) if fine else "day"
        # below a day: the user's spine at that grain, as MetricFlow needs one
        spine_table = self._fine_spine(base, f"join_to_timespine below a day ({base})", metric) if fine else SPINE_TABLE
        whole = self.catalog.daily_spine is not None or bool(fine)
        day = col("ds", "s")
        conditions = [self._on_spine(f, day) for f in on_time]
        if fine and window.fine:  # a time of day was given: the spine's moments, adjusted to the grain
            if window.lo_at is not None:
                conditions.append(exp.GTE(this=day, expression=_timestamp_literal(window.lo_at)))
            if window.hi_at is not None:
                conditions.append(exp.LT(this=day, expression=_timestamp_literal(window.hi_at)))
        for given, edge, compare in ((window.lo, exp.Min, exp.GTE), (window.hi, exp.Max, exp.LTE)):
            if given is not None and fine and window.fine:
                continue
            if given is not None:
                conditions.append(compare(this=day, expression=_date_literal(given)))
            elif not whole:  # Pantry's own spine: cut to the measure's days
                days = self._rows(model, measure, [DAY], [], None, metric).subquery("b", copy=False)
                edge_day = exp.select(edge(this=col(DAY)), copy=False).from_(days, copy=False).subquery(copy=False)
                conditions.append(compare(this=day, expression=edge_day))
        spine = (
            exp.select(
                *[
                    # a custom granularity is the spine's own column, as MetricFlow reads it
                    exp.alias_(
                        col(customs[n], "s")
                        if n in customs
                        else spine_period(day, self._time_grain(metric, n) or "day", base),
                        ident(n),
                        copy=False,
                    )
                    for n in grains
                ],
                copy=False,
            )
            .distinct(copy=False)
            .from_(
                exp.Table(this=exp.to_identifier(spine_table), alias=exp.TableAlias(this=exp.to_identifier("s"))),
                copy=False,
            )
        )
        if conditions:
            spine = spine.where(exp.and_(*conditions, copy=False), copy=False)
        on = exp.and_(*[exp.EQ(this=col(n, "spine"), expression=col(n, "agg")) for n in grains], copy=False)
        values = [column] if isinstance(column, str) else column
        return (
            exp.select(
                *[col(n, "spine") if n in grains else col(n, "agg") for n in names],
                *[col(v, "agg") for v in values],
                copy=False,
            )
            .from_(spine.subquery("spine", copy=False), copy=False)
            .join(select.subquery("agg", copy=False), on=on, join_type="left", copy=False)
        )

    def _custom_time(self, metric: Metric, name: str) -> str | None:
        """The custom granularity of ``name`` when it is metric time for ``metric``
        (``metric_time__alien_day``, or its agg-time dimension at that granularity)."""
        parts = name.split("__")
        custom = parts[-1]
        if custom not in self.catalog.custom_grains:
            return None
        if parts[0] == METRIC_TIME and len(parts) == 2:
            return custom
        return custom if self._time_grain(metric, "__".join(parts[:-1] + ["day"])) else None

    def _cumulative_spine(
        self, metric: Metric, model: SemanticModel, measure: Measure, names: list[str]
    ) -> tuple[str, str]:
        """The grain a cumulative window steps in, and the spine table that has it."""
        time_dim = model.time_dimension_for(measure)
        own = time_dim.time_granularity if time_dim is not None else "day"
        finest = (
            [g for n in names if (g := self._time_grain(metric, n))]
            + [w.unit for w in (metric.window,) if w is not None]
            + ([metric.grain_to_date] if metric.grain_to_date else [])
        )
        sub = [g for g in finest if g in SUB_DAILY]
        if not sub:
            return "day", SPINE_TABLE
        base = min(sub, key=GRAINS.index)
        if GRAINS.index(base) < GRAINS.index(own):
            raise metric.origin.error(
                f"a cumulative metric at {base} grain reads a measure timed by the {own}",
                definition=f"metric '{metric.name}'",
                hint=f"query it at {own} grain or coarser",
            )
        base = own if own in SUB_DAILY else base
        return base, self._fine_spine(base, f"a cumulative metric below a day ({base})", metric)

    def _fine_spine(self, grain: str, what: str, metric: Metric, field: str | None = None) -> str:
        """The table of the user's spine at a sub-daily ``grain``, or an error naming the
        spine to add: what steps below a day needs one, as in MetricFlow."""
        if not any(t.grain == grain for t in self.catalog.time_spines):
            raise metric.origin.error(
                f"{what} needs a time spine at {grain} grain",
                definition=f"metric '{metric.name}'",
                field=field,
                hint=f"add one under time_spines: with primary_column: {{name: ts, time_granularity: {grain}}}",
            )
        return f"{SPINE_TABLE}_{grain}"

    def _time_grain(self, metric: Metric, name: str) -> str | None:
        """The grain of ``name`` when it is metric time for ``metric``: ``metric_time__<grain>``,
        or the measure's own agg-time dimension (``order__ordered_at__month``), which
        MetricFlow windows and offsets exactly as it does metric_time."""
        grain = metric_time_grain(name)
        if grain or metric.measure is None:
            return grain
        found = self.catalog.measure(metric.measure.name)
        parts = name.split("__")
        if found is None or len(parts) != 3 or parts[2] not in GRAINS:
            return None
        model, measure = found
        time_dim = model.time_dimension_for(measure)
        if time_dim is not None and parts[1] == time_dim.name and (model.entity(parts[0]) or model.primary == parts[0]):
            return parts[2]
        return None

    def _time_only(self, filters: list[exp.Expression], metric: Metric | None = None) -> list[exp.Expression]:
        """The filters that name metric time and nothing else: they narrow spine periods. For a
        cumulative ``metric``, its measure's own agg-time dimension counts as metric time, as
        in MetricFlow (``revenue_instance__ds__day`` in a where narrows the output days)."""
        grain_of = metric_time_grain if metric is None else (lambda n: self._time_grain(metric, n))
        return [f for f in filters if (used := filter_names(f)) and all(grain_of(n) for n in used)]

    def _on_spine(self, condition: exp.Expression, day: exp.Expression, metric: Metric | None = None) -> exp.Expression:
        """A metric_time condition read on the spine's day: ``metric_time__week`` is its week."""
        grain_of = metric_time_grain if metric is None else (lambda n: self._time_grain(metric, n))

        def swap(node: exp.Expression) -> exp.Expression:
            if isinstance(node, exp.Column) and (grain := grain_of(node.name)):
                return truncate(day.copy(), grain)
            return node

        return condition.copy().transform(swap)

    def _custom_refused(self, what: str, names: list[str], metric: Metric) -> None:
        custom = [n for n in names if n.split("__")[-1] in self.catalog.custom_grains]
        if custom:
            raise metric.origin.error(
                f"{what} at a custom granularity ({', '.join(custom)}) is not supported yet",
                definition=f"metric '{metric.name}'",
                hint="group by a standard grain (metric_time__day, __week, __month, ...)",
            )

    def _join_custom_grains(
        self, select: exp.Select, resolved: list[Resolved], day_of
    ) -> tuple[exp.Select, dict[str, exp.Expression]]:
        """Custom granularities (``metric_time__alien_day``): the day's value in that column of
        the user's time spine, left-joined on the day, as MetricFlow reads them."""
        customs = self.catalog.custom_grains
        values: dict[str, exp.Expression] = {}
        for i, item in enumerate(r for r in resolved if r.grain in customs):
            alias = f"custom_grain_{i}"
            select = select.join(
                exp.Table(this=exp.to_identifier(SPINE_TABLE), alias=exp.TableAlias(this=exp.to_identifier(alias))),
                on=exp.EQ(this=col("ds", alias), expression=day_of(item)),
                join_type="left",
                copy=False,
            )
            values[item.name] = col(str(item.grain), alias)
        return select, values

    def _custom_offset_map(self, offset: Window) -> exp.Select:
        """Day -> the day at the same position (row number) in the custom period ``offset.count``
        periods later, or null when that period is shorter: MetricFlow's custom offset."""
        column = offset.unit
        spine = exp.Table(this=exp.to_identifier(SPINE_TABLE))
        ordered = exp.Order(expressions=[exp.Ordered(this=col("ds"))])
        days = exp.select(
            col("ds"),
            exp.alias_(col(column), ident("__period"), copy=False),
            exp.alias_(
                exp.Window(this=exp.RowNumber(), partition_by=[col(column)], order=ordered),
                ident("__position"),
                copy=False,
            ),
            copy=False,
        ).from_(spine.copy(), copy=False)
        periods = (
            exp.select(
                exp.alias_(col(column), ident("__period"), copy=False),
                exp.alias_(exp.Min(this=col("ds")), ident("__first"), copy=False),
                exp.alias_(exp.Max(this=col("ds")), ident("__last"), copy=False),
                copy=False,
            )
            .from_(spine.copy(), copy=False)
            .group_by(col(column), copy=False)
        )
        count = exp.Literal.number(offset.count)
        by_period = exp.Order(expressions=[exp.Ordered(this=col("__period"))])
        later = exp.select(
            col("__period"),
            exp.alias_(
                exp.Window(this=exp.Lead(this=col("__first"), offset=count), order=by_period),
                ident("__first"),
                copy=False,
            ),
            exp.alias_(
                exp.Window(this=exp.Lead(this=col("__last"), offset=count), order=by_period),
                ident("__last"),
                copy=False,
            ),
            copy=False,
        ).from_(periods.subquery("periods", copy=False), copy=False)
        # a DateAdd, not ``+ INTERVAL``: sqlglot drops an interval's computed count when it
        # renders PostgreSQL or Snowflake (``INTERVAL DAY``); a DateAdd renders in each dialect
        target = exp.cast(
            exp.DateAdd(
                this=col("__first", "l"),
                expression=exp.Sub(this=col("__position", "d"), expression=exp.Literal.number(1)),
                unit=exp.var("DAY"),
            ),
            "DATE",
            copy=False,
        )
        return (
            exp.select(
                exp.alias_(col("ds", "d"), ident("__from"), copy=False),
                exp.alias_(
                    exp.If(this=exp.LTE(this=target, expression=col("__last", "l")), true=target.copy()),
                    ident("ds"),
                    copy=False,
                ),
                copy=False,
            )
            .from_(days.subquery("d", copy=False), copy=False)
            .join(
                later.subquery("l", copy=False),
                on=exp.EQ(this=col("__period", "d"), expression=col("__period", "l")),
                join_type="inner",
                copy=False,
            )
        )

    @staticmethod
    def _period_grain(offset: Window, moving: list[Resolved]) -> str | None:
        """The grain an offset joins at, when MetricFlow joins it at the query's grain rather
        than day by day: one queried grain coarser than a day, and an offset unit at least as
        coarse (``1 month`` by month or by week; ``7 days`` by month is still day by day)."""
        grains = {i.grain for i in moving}
        if offset.unit not in GRAINS or len(grains) != 1:
            return None
        grain = grains.pop()
        if grain not in GRAINS or grain in SUB_DAILY or grain == "day":
            return None
        return grain if GRAINS.index(offset.unit) >= GRAINS.index(grain) else None

    @staticmethod
    def _add_offsets(outer: Window | None, inner: Window, metric: Metric) -> Window:
        if outer is None:
            return inner
        if outer.unit != inner.unit:
            raise metric.origin.error(
                f"cannot stack offsets '{outer}' and '{inner}'",
                definition=f"metric '{metric.name}'",
                field="offset_window",
                hint="use the same unit for nested offsets",
            )
        return Window(outer.count + inner.count, outer.unit)

    def _spine_values(
        self, request: QueryRequest, names: list[str], needed: list[str], where: list[exp.Expression]
    ) -> exp.Select:
        others = [n for n in needed if not output_name(n).startswith(METRIC_TIME)]
        fine = [g for n in needed if (g := metric_time_grain(n)) in SUB_DAILY]
        if fine:  # below a day: the user's spine at the finest grain asked, as MetricFlow reads it
            return self._fine_spine_values(request, names, needed, others, where, min(fine, key=GRAINS.index))
        if (request.start_time is None or request.end_time is None) and self.catalog.daily_spine is None:
            raise PantryError(
                "metric_time without a metric reads the time spine: give --start-time and --end-time",
                field="start_time",
                hint="e.g. --start-time 2024-01-01 --end-time 2024-01-31",
            )
        day = col("ds", "s")
        columns: list[tuple[str, exp.Expression]] = []
        for name in needed:
            if name in others:
                continue
            base, part = date_part_of(output_name(name))
            grain = base.removeprefix(METRIC_TIME).lstrip("_") or "day"
            value = col(grain, "s") if grain in self.catalog.custom_grains else truncate(day, grain)
            if part is not None:
                value = exp.Extract(this=exp.var(DATE_PARTS[part]), expression=value)
            columns.append((output_name(name), value))
        # a user's spine is read whole, as MetricFlow reads its spine table
        bounds: list[exp.Expression] = []
        if request.start_time is not None:
            bounds.append(exp.GTE(this=day.copy(), expression=_date_literal(request.start_time)))
        if request.end_time is not None:
            bounds.append(exp.LTE(this=day.copy(), expression=_date_literal(request.end_time)))
        if others:
            # the spine crossed with the rows of the model the dimensions are read from, the
            # other models full-outer-joined after, as MetricFlow answers metric_time beside
            # dimensions when there is no metric to tie them
            return self._distinct_values(others, names, where, (columns, bounds))
        rows = exp.select(*[exp.alias_(v, ident(n), copy=False) for n, v in columns], copy=False).from_(
            exp.to_table(SPINE_TABLE).as_("s"), copy=False
        )
        for bound in bounds:
            rows = rows.where(bound, copy=False)
        query = exp.select(*[col(n) for n in names], copy=False).from_(rows.subquery("rows", copy=False), copy=False)
        for condition in where:
            query = query.where(condition, copy=False)
        return query.distinct(copy=False) if self._dedupe else query

    def _fine_spine_values(
        self,
        request: QueryRequest,
        names: list[str],
        needed: list[str],
        others: list[str],
        where: list[exp.Expression],
        grain: str,
    ) -> exp.Select:
        """metric_time below a day without a metric: the periods of the user's spine at that
        grain (``time_spines:`` with ``time_granularity: hour``), each name truncated to its own."""
        if not any(t.grain == grain for t in self.catalog.time_spines):
            raise PantryError(
                f"metric_time__{grain} without a metric reads a time spine at {grain} grain",
                field="group_by",
                hint=f"add one under time_spines: with primary_column: {{name: ts, time_granularity: {grain}}}",
            )
        if others:
            sub_daily_refused("metric_time below a day beside a dimension, without a metric", needed)
        at = col("ds", "s")
        rows = exp.select(copy=False).from_(exp.to_table(f"{SPINE_TABLE}_{grain}").as_("s"), copy=False)
        for name in needed:
            base, part = date_part_of(output_name(name))
            value = truncate(at, base.removeprefix(METRIC_TIME).lstrip("_") or "day")
            if part is not None:
                value = exp.Extract(this=exp.var(DATE_PARTS[part]), expression=value)
            rows = rows.select(exp.alias_(value, ident(output_name(name)), copy=False), copy=False)
        lo_at, hi_at = fine_bounds(request.start_at, request.end_at, grain)
        if lo_at is not None or request.start_time is not None:
            start = lo_at or request.start_time
            rows = rows.where(exp.GTE(this=at, expression=_timestamp_literal(start)), copy=False)
        if hi_at is not None or request.end_time is not None:
            end = hi_at or request.end_time + timedelta(days=1)  # type: ignore[operator]
            rows = rows.where(exp.LT(this=at, expression=_timestamp_literal(end)), copy=False)
        query = exp.select(*[col(n) for n in names], copy=False).from_(rows.subquery("rows", copy=False), copy=False)
        for condition in where:
            query = query.where(condition, copy=False)
        return query.distinct(copy=False) if self._dedupe else query

    def _range(self, request: QueryRequest, names: list[str]) -> Range:
        """The time range widened to whole periods of the finest metric_time grain queried;
        without metric_time in the query, of the metrics' default grain, as MetricFlow widens
        a range for a monthly metric grouped by another dimension."""
        grains = [g for n in names if (g := metric_time_grain(n))]
        if not grains and request.metrics:
            default = self.default_grain(request.metrics)
            grains = [default] if default in GRAINS else []
        finest = min(grains, key=GRAINS.index) if grains else "day"
        fine = finest if finest in SUB_DAILY and (request.start_at or request.end_at) else None
        finest = "day" if finest in SUB_DAILY else finest  # the range is given in days
        lo = period_start(request.start_time, finest) if request.start_time else None
        hi = period_end(request.end_time, finest) if request.end_time else None
        lo_at, hi_at = fine_bounds(request.start_at, request.end_at, fine) if fine else (None, None)
        return Range(lo, hi, request.whole_days, lo_at, hi_at, fine)
