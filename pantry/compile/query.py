"""Metrics -> one sqlglot expression tree, with MetricFlow's query semantics.

Why this shape: every metric type reduces to "aggregate a measure's rows at the
requested names", plus a join. Each measure gets a row-level subquery that exposes the
group-by names as columns (``metric_time__week``, ``customer__segment``), so filters,
joins and grains are resolved once, by ``names.NameResolver``. Then:

- simple: aggregate those rows at the requested names. count_distinct, median and
  percentile at week or month are therefore computed from rows, never from days;
  simple metrics of one model share a scan (``fused.py``);
- cumulative: join a daily time spine to each day's partials in the window (or to the
  rows, where partials do not combine), then reduce days to the requested grain with
  ``period_agg``; metrics of one window share the join (``cumulative.py``);
- offset_window: shift each row's metric time by the offset before aggregating, which
  is MetricFlow's spine join written as a row shift (same result, one fewer join);
- ratio and derived: expressions over their inputs' parts, all of a query's parts
  FULL OUTER JOINed once, null-safely, on the names (``on_top.py``). A ratio divides the
  two sums, with a zero denominator giving null.

The tree is dialect-neutral; ``dialects.to_sql`` renders it and fixes the traps.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta

from sqlglot import exp

from pantry.compile.context import Context, Range
from pantry.compile.cumulative import CUMULATIVE, CumulativeLeaf, Frame, cumulative_select, shareable
from pantry.compile.fused import LEAF, Leaf, fusable, fused_parts
from pantry.compile.on_top import on_top
from pantry.compile.sql import (
    SOURCE_SCHEMA,
    SPINE_TABLE,
    VALUE,
    aggregate,
    col,
    date_add,
    ident,
    qualified,
    spine_period,
    truncate,
)
from pantry.errors import PantryError, did_you_mean
from pantry.spec.aggregations import adds_up
from pantry.spec.filters import filter_names, parse_filter
from pantry.spec.model import Catalog, Measure, Metric, SemanticModel
from pantry.spec.names import (
    DATE_PARTS,
    Hop,
    NameResolver,
    Resolved,
    date_part_of,
    metric_time_grain,
    output_name,
)
from pantry.spec.windows import GRAINS, SUB_DAILY, Window

DAY = "metric_time__day"
METRIC_TIME = "metric_time"


def _share_first_hops(resolved: list[Resolved]) -> list[Resolved]:
    """A dimension one hop away reads the join that the first multi-hop name through the same
    model already made, as MetricFlow reads ``account_id__extra_dim`` from the bridge it joined
    for ``account_id__customer_id__customer_name`` (a third join of a bridge whose key repeats
    would fan out once more)."""
    firsts: dict[tuple[str, str, str], Hop] = {}
    for item in resolved:
        if len(item.hops) > 1:
            hop = item.hops[0]
            firsts.setdefault((hop.model.name, hop.entity, hop.from_expr), hop)
    if not firsts:
        return resolved
    out = []
    for item in resolved:
        if len(item.hops) == 1:
            hop = item.hops[0]
            shared = firsts.get((hop.model.name, hop.entity, hop.from_expr))
            if shared is not None:
                item = replace(item, hops=(shared,), alias=shared.alias if item.alias == hop.alias else item.alias)
        out.append(item)
    return out


def _linkable_count(model: SemanticModel) -> int:
    """How many group-by names a model offers by itself: MetricFlow reads a dimension-only
    query from the model with the fewest (the least to aggregate) among those that need the
    fewest joins, so ``listing`` alone is read from a two-column mapping model, not from the
    listings with all their dimensions. A time dimension offers each grain from its own up
    and each date part."""
    count = len(model.entities)
    for dimension in model.dimensions:
        if dimension.type == "time":
            own = _grain_rank(dimension.time_granularity or "day")
            count += sum(1 for g in GRAINS if _grain_rank(g) >= own) + 6
        else:
            count += 1
    return count


def _grain_rank(grain: str) -> float:
    """Finer grains rank lower; a custom granularity ranks just above a day."""
    return GRAINS.index(grain) if grain in GRAINS else GRAINS.index("day") + 0.5


@dataclass(frozen=True)
class QueryRequest:
    """What ``mf query`` takes: metrics, group-by names, where, time range, order, limit."""

    metrics: tuple[str, ...]
    group_by: tuple[str, ...] = ()
    where: tuple[str, ...] = ()
    start_time: date | None = None
    end_time: date | None = None
    order: tuple[str, ...] = ()
    limit: int | None = None
    # whole days, every event of ``end_time`` included: a daily partition's range. A user's
    # range follows MetricFlow, whose end at a day is midnight for measures timed below a day
    whole_days: bool = False
    # the moments given, when ``--start-time``/``--end-time`` carry a time of day: a query
    # below a day reads from the start of the start's period to the end of the end's
    start_at: datetime | None = None
    end_at: datetime | None = None
    # MetricFlow's min_max_only: the smallest and largest value of each group-by, no metric
    min_max_only: bool = False
    # MetricFlow's apply_group_by: False keeps every row of a query without metrics
    apply_group_by: bool = True


def source_table(model: SemanticModel, alias: str) -> exp.Table:
    """Models are read through views ``src.<model>``; the offline layer creates them."""
    return exp.Table(
        this=exp.to_identifier(model.name),
        db=exp.to_identifier(SOURCE_SCHEMA),
        alias=exp.TableAlias(this=exp.to_identifier(alias)),
    )


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


class Compiler:
    """Compiles QueryRequests against one catalog."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self._filtering: list[str] = []  # metrics being compiled for a metric filter, outermost first
        self._query_where: list[exp.Expression] = []
        self._dedupe = True  # a query without metrics answers distinct rows (apply_group_by)
        self._scans = 0  # shared scans named so far (``WITH __scan<n>``)

    # -- public -----------------------------------------------------------------
    def compile(self, request: QueryRequest) -> exp.Select:
        self._dedupe = request.apply_group_by
        if not request.apply_group_by and request.metrics:
            raise PantryError(
                "apply_group_by: false keeps every row of a query without metrics; metrics are always grouped",
                field="apply_group_by",
                hint="drop --metrics, or drop --no-apply-group-by",
            )
        bare = f"{METRIC_TIME}__{self.default_grain(request.metrics)}"

        homes = [m for name in request.metrics for m in self._homes(self.metric(name), ())]

        def named(name: str) -> str:
            if name == METRIC_TIME:
                return bare
            return self._with_path(self._with_grain(output_name(name)), homes)

        names = list(dict.fromkeys(named(n) for n in request.group_by))
        if request.order:
            order = tuple(("-" if o.startswith("-") else "") + named(o.lstrip("-")) for o in request.order)
            request = replace(request, order=order)
        if not request.metrics:
            if not names:
                raise PantryError(
                    "no metrics and no group-by given",
                    hint="pass --metrics revenue, or --group-by customer__segment for its distinct values",
                )
            if request.min_max_only:
                values = self._dimension_values(request, names).subquery("dimension_values", copy=False)
                bounds = [
                    exp.alias_(kind(this=col(n)), ident(f"{n}__{suffix}"), copy=False)
                    for n in names
                    for kind, suffix in ((exp.Min, "min"), (exp.Max, "max"))
                ]
                return exp.select(*bounds, copy=False).from_(values, copy=False)
            return self._ordered(self._dimension_values(request, names), request, names, [])
        if request.min_max_only:
            raise PantryError(
                "min_max_only answers the smallest and largest value of each group-by, without metrics",
                field="min_max_only",
                hint="drop --metrics, or drop --min-max-only",
            )
        metrics = [self.metric(name) for name in request.metrics]
        where = [self._where(w) for w in request.where]
        self._query_where = where  # the query's own filters (not metrics' or measures')
        window = self._range(request, names)
        if any(m.type in ("ratio", "derived") for m in metrics):  # computed on top of shared parts
            query = on_top(self, metrics, names, Context(list(where)), window)
        else:
            parts = [(self._metric(m, names, Context(list(where)), window, m.name), [m.name]) for m in metrics]
            query = self._join(parts, names)
        fills = {m.name: self._fill(m) for m in metrics}
        if any(v is not None for v in fills.values()):
            query = exp.select(
                *[col(n) for n in names],
                *[
                    exp.alias_(exp.Coalesce(this=col(m), expressions=[exp.convert(f)]), ident(m), copy=False)
                    if f is not None
                    else col(m)
                    for m, f in fills.items()
                ],
                copy=False,
            ).from_(query.subquery("filled", copy=False), copy=False)
        return self._ordered(query, request, names, list(fills))

    def default_grain(self, metrics: tuple[str, ...] | list[str]) -> str:
        """What a bare ``metric_time`` means, as in MetricFlow: each metric's
        ``time_granularity``, else the coarsest agg-time grain of its measures (a day at the
        finest); with several metrics, the coarsest of theirs; without a metric, a day."""
        grains = [self._metric_grain(self.metric(m), ()) for m in metrics]
        grains = [g for g in grains if g is not None]
        return max(grains, key=_grain_rank) if grains else "day"

    def _metric_grain(self, metric: Metric, seen: tuple[str, ...]) -> str | None:
        """A metric's own ``time_granularity``; below the queried metric, only measures count
        (a derived metric over a weekly-defaulted input still defaults to its measures' day)."""
        if metric.time_granularity and not seen:
            return metric.time_granularity
        if metric.name in seen:
            return None
        inputs: list[Metric] = []
        if metric.type in ("simple", "cumulative") and metric.measure is not None:
            found = self.catalog.measure(metric.measure.name)
            time_dim = found[0].time_dimension_for(found[1]) if found is not None else None
            if time_dim is None:
                return None
            return "day" if time_dim.time_granularity in SUB_DAILY else time_dim.time_granularity
        if metric.type == "conversion" and metric.conversion is not None:
            inputs = [m for i in (metric.conversion.base,) if (m := self.catalog.metric_or_measure(i.name))]
        elif metric.type == "ratio":
            inputs = [
                m for i in (metric.numerator, metric.denominator) if i and (m := self.catalog.metric_or_measure(i.name))
            ]
        elif metric.type == "derived":
            inputs = [m for i in metric.inputs if (m := self.catalog.metric_or_measure(i.name))]
        grains = [g for m in inputs if (g := self._metric_grain(m, (*seen, metric.name))) is not None]
        return max(grains, key=_grain_rank) if grains else None

    def _with_grain(self, name: str) -> str:
        """``verification__ds`` -> ``verification__ds__day``: a time dimension named without a
        grain is answered at its own grain and named so, as MetricFlow does. The grain is the
        one of the model the entity keys (``listing__ds`` is the listing's own ``ds``)."""
        parts = name.split("__")
        if len(parts) < 2 or parts[0] == METRIC_TIME or parts[-1] in GRAINS or parts[-1] in self.catalog.custom_grains:
            return name
        entity, dimension = parts[-2], parts[-1]
        found = []
        for model in self.catalog.semantic_models.values():
            dim = model.dimension(dimension)
            if dim is None or dim.type != "time":
                continue
            key = model.entity(entity)
            if key is not None and key.type != "foreign" or model.primary_entity == entity:
                found.insert(0, dim)
            elif key is not None:
                found.append(dim)
        return f"{name}__{found[0].time_granularity}" if found else name

    def _homes(self, metric: Metric, seen: tuple[str, ...]) -> list[SemanticModel]:
        """The models of every measure under a metric, where its group-bys are resolved."""
        if metric.name in seen:
            return []
        if metric.type in ("simple", "cumulative") and metric.measure is not None:
            found = self.catalog.measure(metric.measure.name)
            return [found[0]] if found is not None else []
        refs = []
        if metric.type == "conversion" and metric.conversion is not None:
            refs = [metric.conversion.base]
        elif metric.type == "ratio":
            refs = [r for r in (metric.numerator, metric.denominator) if r]
        elif metric.type == "derived":
            refs = list(metric.inputs)
        inputs = [m for r in refs if (m := self.catalog.metric_or_measure(r.name))]
        return [home for m in inputs for home in self._homes(m, (*seen, metric.name))]

    def _with_path(self, name: str, homes: list[SemanticModel]) -> str:
        """``user__last_login_ts__minute`` -> ``listing__user__last_login_ts__minute`` from
        bookings: the path MetricFlow finds for a name whose entity the metric's model does not
        have, when every measure's model finds the same one."""
        completed = {NameResolver(self.catalog, home).completed(name) for home in {id(h): h for h in homes}.values()}
        return completed.pop() if len(completed) == 1 else name

    def _ordered(self, query: exp.Select, request: QueryRequest, names: list[str], values: list[str]) -> exp.Select:
        order = request.order or tuple(names)
        for item in order:
            desc = item.startswith("-")
            key = output_name(item.lstrip("-"))
            if key not in names and key not in values:
                raise PantryError(
                    f"cannot order by '{key}': it is not a requested metric or group-by",
                    hint=did_you_mean(key, names + values),
                )
            # nulls last, ascending or descending, as MetricFlow answers on DuckDB (written out: Postgres
            # and Snowflake would put them first when descending)
            query = query.order_by(exp.Ordered(this=col(key), desc=desc, nulls_first=False), copy=False)
        if request.limit is not None:
            query = query.limit(request.limit, copy=False)
        return query

    def _dimension_values(self, request: QueryRequest, names: list[str]) -> exp.Select:
        """A query with group-bys and no metric: their distinct values, as ``mf query`` gives.

        Read from the model that owns the first name's entity (joining others by entity, as a
        metric query would); ``metric_time`` alone reads the time spine within the range."""
        where = [self._where(w) for w in request.where]
        needed = list(dict.fromkeys(names + [n for c in where for n in filter_names(c)]))
        if any(output_name(n).startswith(METRIC_TIME) for n in needed):
            return self._spine_values(request, names, needed, where)
        if request.start_time or request.end_time:
            raise PantryError(
                "a time range needs metric_time in a query without metrics",
                field="start_time",
                hint="group by metric_time__day, or filter a time dimension in --where",
            )
        return self._distinct_values(needed, names, where)

    def _distinct_values(
        self,
        needed: list[str],
        names: list[str],
        where: list[exp.Expression],
        spine: tuple[list[tuple[str, exp.Expression]], list[exp.Expression]] | None = None,
    ) -> exp.Select:
        """Distinct ``names`` read from the model that owns them, as MetricFlow reads them: first
        a model keyed by the first name's entity that holds the most of the names itself (so
        ``user__home_state`` reads every user, not only users some other model joins to), then
        any model keyed by that entity, then the rest."""
        entity = needed[0].split("__")[0]
        # entities alone (``listing``): read from the model that offers the fewest names, as
        # MetricFlow does; with dimensions, their owner decides (the rule above)
        bare = all("__" not in n or n.split("__")[-1] in self.catalog.metrics for n in map(output_name, needed))

        def owned(model: SemanticModel) -> int:
            count = 0
            for name in needed:
                parts = output_name(name).split("__")
                if len(parts) >= 2 and parts[0] == entity and (model.dimension(parts[1]) or model.entity(parts[1])):
                    count += 1
            return count

        candidates = sorted(
            self.catalog.semantic_models.values(),
            key=lambda m: (
                0 if (e := m.entity(entity)) is not None and e.type != "foreign" else 1,
                -owned(m),
                _linkable_count(m) if bare else 0,
                m.name,
            ),
        )
        failure: PantryError | None = None
        for model in candidates:
            try:
                rows = self._plain_rows(model, needed, spine)
            except PantryError as err:
                failure = failure or err
                continue
            query = exp.select(*[col(n) for n in names], copy=False).from_(
                rows.subquery("rows", copy=False), copy=False
            )
            for condition in where:
                query = query.where(condition, copy=False)
            return query.distinct(copy=False) if self._dedupe else query
        assert failure is not None
        raise failure

    def _plain_rows(
        self,
        model: SemanticModel,
        needed: list[str],
        spine: tuple[list[tuple[str, exp.Expression]], list[exp.Expression]] | None = None,
    ) -> exp.Select:
        """One row per source row of ``model``, with every name resolved, as MetricFlow reads
        dimensions without a measure: the other models full-outer-joined by entity (a user
        with no listing still has a state), and, with metric time, the spine crossed with the
        model's rows before those joins (``spine``: its columns, and the range on its day,
        applied after the joins as MetricFlow's WHERE is)."""
        resolver = NameResolver(self.catalog, model)
        resolved = _share_first_hops([resolver.resolve(name) for name in needed])
        select = exp.select(copy=False).from_(source_table(model, "m0"), copy=False)
        if spine is not None:
            select = select.join(exp.to_table(SPINE_TABLE).as_("s"), join_type="cross", copy=False)
            for name, value in spine[0]:
                select = select.select(exp.alias_(value, ident(name), copy=False), copy=False)
            for bound in spine[1]:
                select = select.where(bound, copy=False)
        joined: set[str] = set()
        for item in resolved:
            for hop in item.hops:
                if hop.alias not in joined:
                    joined.add(hop.alias)
                    on = self._hop_condition(hop)
                    select = select.join(source_table(hop.model, hop.alias), on=on, join_type="full", copy=False)
        select, values = self._join_metrics(select, resolved, "full")
        select, custom = self._join_custom_grains(
            select, resolved, lambda item: at_grain(qualified(item.expr or "", item.alias), "day")
        )
        values.update(custom)
        for item in resolved:
            assert item.expr is not None
            if item.name in values:
                select = select.select(exp.alias_(values[item.name], ident(item.name), copy=False), copy=False)
                continue
            value = qualified(item.expr, item.alias)
            if item.kind == "time_dimension":
                value = at_grain(value, item.grain)
            select = select.select(exp.alias_(value, ident(item.name), copy=False), copy=False)
        return select

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

    def metric(self, name: str) -> Metric:
        found = self.catalog.metric_or_measure(name)
        if found is None:
            raise PantryError(
                f"'{name}' is not a metric",
                hint=did_you_mean(
                    name,
                    list(self.catalog.metrics)
                    + [m.name for sm in self.catalog.semantic_models.values() for m in sm.measures],
                )
                or "run 'pantry catalog' to list metrics",
            )
        return found

    # -- metric types -------------------------------------------------------------
    def _metric(self, metric: Metric, names: list[str], ctx: Context, window: Range, column: str) -> exp.Select:
        """``metric`` at ``names``, one value column named ``column``: by its kind."""
        if metric.type in ("ratio", "derived"):  # an expression over its inputs' parts (on_top.py)
            return on_top(self, [metric], names, ctx, window, [column])
        inner = Context(ctx.filters + [self._where(f, metric) for f in metric.filter], ctx.offset)
        if metric.type == "conversion":
            return self._conversion(metric, names, inner, window, column)
        return self._measure_metric(metric, names, inner, window, column)

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

    def _input_metric(self, ref, parent: Metric) -> Metric:  # noqa: ANN001 - a MetricInput
        metric = self.catalog.metric_or_measure(ref.name)
        if metric is None:
            raise parent.origin.error(
                f"'{ref.name}' is not a metric or measure",
                definition=f"metric '{parent.name}'",
                hint=did_you_mean(ref.name, list(self.catalog.metrics)),
            )
        return metric

    def _input_fill(self, ref) -> object:  # noqa: ANN001 - a MetricInput
        """An input's ``fill_nulls_with``: its own, else its metric's."""
        if ref.fill_nulls_with is not None:
            return ref.fill_nulls_with
        metric = self.catalog.metric_or_measure(ref.name)
        return self._fill(metric) if metric is not None else None

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

    def _semi_additive(
        self,
        rows: exp.Select,
        model: SemanticModel,
        measure: Measure,
        names: list[str],
        conditions: list[exp.Expression],
    ) -> exp.Select:
        """Keep only the rows at the first or last value of the non-additive dimension, per
        queried metric_time bucket and window grouping (MetricFlow's semi-additive join):
        a balance summed over a month is the month's last day's balances, not their sum."""
        nad = measure.non_additive
        assert nad is not None
        dimension = model.dimension(nad.name)
        assert dimension is not None  # validated
        rows = rows.select(
            exp.alias_(exp.cast(qualified(dimension.expr, "m0"), "DATE", copy=False), ident("__nad"), copy=False),
            copy=False,
        )
        partition: list[exp.Expression] = [col(n) for n in names if metric_time_grain(n)]
        for i, name in enumerate(nad.window_groupings):
            entity = model.entity(name)
            assert entity is not None  # validated
            rows = rows.select(exp.alias_(qualified(entity.expr, "m0"), ident(f"__wg{i}"), copy=False), copy=False)
            partition.append(col(f"__wg{i}"))
        filtered = exp.select("*", copy=False).from_(rows.subquery("nad_rows", copy=False), copy=False)
        for condition in conditions:
            filtered = filtered.where(condition.copy(), copy=False)
        pick = exp.Window(
            this=(exp.Min if nad.window_choice == "min" else exp.Max)(this=col("__nad")),
            partition_by=partition or None,
        )
        marked = exp.select("*", exp.alias_(pick, ident("__pick"), copy=False), copy=False).from_(
            filtered.subquery("nad_filtered", copy=False), copy=False
        )
        return (
            exp.select("*", copy=False)
            .from_(marked.subquery("nad_marked", copy=False), copy=False)
            .where(exp.EQ(this=col("__nad"), expression=col("__pick")), copy=False)
        )

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

    # -- building blocks ------------------------------------------------------------
    def _rows(
        self,
        model: SemanticModel,
        measure: Measure,
        names: list[str],
        conditions: list[exp.Expression],
        offset: Window | None,
        metric: Metric,
    ) -> exp.Select:
        """One row per source row: the measure's value and every name the query reads."""
        needed = list(dict.fromkeys(names + [n for c in conditions for n in filter_names(c)]))
        resolver = NameResolver(self.catalog, model)
        resolved: list[Resolved] = []
        for name in needed:
            try:
                resolved.append(resolver.resolve(name))
            except PantryError as err:
                if metric.origin and not err.file:
                    err.definition = f"metric '{metric.name}'"
                raise
        resolved = _share_first_hops(resolved)
        select = exp.select(exp.alias_(qualified(measure.expr, "m0"), ident(VALUE), copy=False), copy=False).from_(
            source_table(model, "m0"), copy=False
        )
        time_dim = model.time_dimension_for(measure)
        at = qualified(time_dim.expr, "m0") if time_dim is not None else None
        joined: dict[str, exp.Expression] = {}
        for item in resolved:
            for hop in item.hops:
                if hop.alias not in joined:
                    on = self._hop_condition(hop, at)
                    joined[hop.alias] = on
                    select = select.join(source_table(hop.model, hop.alias), on=on, join_type="left", copy=False)
        select, values = self._join_metrics(select, resolved)
        shifted = None
        moves = any(self._shifts(item, model, measure) and item.grain not in SUB_DAILY for item in resolved)
        if offset is not None and offset.unit in self.catalog.custom_grains and time_dim is not None and moves:
            # an offset in custom periods: each day moves to the same place in the period N later
            select = select.join(
                self._custom_offset_map(offset).subquery("offset_spine", copy=False),
                # a day whose place does not exist in the later period (the 92nd day of a
                # quarter, offset into a 90-day one) keeps its value under a null time, as in
                # MetricFlow
                on=exp.EQ(
                    this=col("__from", "offset_spine"),
                    expression=exp.cast(qualified(time_dim.expr, "m0"), "DATE", copy=False),
                ),
                join_type="inner",
                copy=False,
            )
            shifted = col("ds", "offset_spine")
        elif offset is not None and offset.unit in self.catalog.custom_grains:
            raise PantryError(
                f"an offset of '{offset}' needs metric time at a day or coarser",
                definition=f"metric '{metric.name}'",
                hint="group by metric_time__day (or a coarser grain)",
            )
        elif (
            offset is not None
            and time_dim is not None
            and (
                grain := self._period_grain(
                    offset, [i for i in resolved if i.name in names and self._shifts(i, model, measure)]
                )
            )
        ):
            # an offset of whole periods at least as long as the queried grain joins at that
            # grain, as MetricFlow does: a row's period moves by the offset and counts only if it
            # lands on a period's start (1 month by month: January's whole value is February's;
            # by week, a Monday plus a month is rarely a Monday, so such weeks have no value)
            start = truncate(exp.cast(qualified(time_dim.expr, "m0"), "DATE", copy=False), grain)
            target = date_add(start, offset)
            select = select.where(exp.EQ(this=truncate(target.copy(), grain), expression=target.copy()), copy=False)
            shifted = target
        elif offset is not None and offset.unit not in SUB_DAILY and time_dim is not None and moves:
            # an offset is MetricFlow's join of the time spine on "day - offset": a day whose
            # day a month before does not exist (March 30th, 31st: February 29th) takes the
            # nearest, and days outside the spine have no value
            select = select.join(
                exp.Table(
                    this=exp.to_identifier(SPINE_TABLE), alias=exp.TableAlias(this=exp.to_identifier("offset_spine"))
                ),
                on=exp.EQ(
                    this=date_add(col("ds", "offset_spine"), offset, -1),
                    expression=exp.cast(qualified(time_dim.expr, "m0"), "DATE", copy=False),
                ),
                join_type="inner",
                copy=False,
            )
            shifted = col("ds", "offset_spine")
        select, custom = self._join_custom_grains(
            select,
            resolved,
            lambda item: self._column(replace(item, grain="day"), model, measure, offset, metric, shifted),
        )
        values.update(custom)
        for item in resolved:
            value = values.get(item.name) or self._column(item, model, measure, offset, metric, shifted)
            select = select.select(exp.alias_(value, ident(item.name), copy=False), copy=False)
        return select

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

    @staticmethod
    def _hop_condition(hop: Hop, at: exp.Expression | None = None) -> exp.Expression:
        """The entity's equality, and each shared partition dimension's (MetricFlow's partition join).

        Into an SCD type II model (``validity_params``), only the version valid at ``at``, the
        measure's agg time: ``start <= at`` and ``at < end`` (or no end yet). Every hop of a
        multi-hop path through such a model uses the same time, as MetricFlow does; without a
        measure (distinct values), every version is read."""
        conditions = [
            exp.EQ(this=qualified(hop.from_expr, hop.from_alias), expression=qualified(hop.to_expr, hop.alias))
        ]
        window = hop.model.validity_window()
        if window is not None and at is not None:
            start, end = window
            conditions.append(exp.GTE(this=at.copy(), expression=qualified(start.expr, hop.alias)))
            if end is not None:
                until = qualified(end.expr, hop.alias)
                conditions.append(
                    exp.paren(
                        exp.or_(
                            exp.LT(this=at.copy(), expression=until),
                            exp.Is(this=until.copy(), expression=exp.Null()),
                            copy=False,
                        ),
                        copy=False,
                    )
                )
        sides = [(left, right, grain, hop.from_alias) for left, right, grain in hop.partitions]
        sides += [(left, right, grain, "m0") for left, right, grain in hop.home_partitions]
        for left, right, grain, left_alias in sides:
            a, b = qualified(left, left_alias), qualified(right, hop.alias)
            if grain is not None:
                a = truncate(exp.cast(a, "DATE", copy=False), grain)
                b = truncate(exp.cast(b, "DATE", copy=False), grain)
            conditions.append(exp.EQ(this=a, expression=b))
        return exp.and_(*conditions, copy=False) if len(conditions) > 1 else conditions[0]

    def _join_metrics(
        self, select: exp.Select, resolved: list[Resolved], join_type: str = "left"
    ) -> tuple[exp.Select, dict[str, exp.Expression]]:
        """Metric filters (``{{ Metric('orders', group_by=['customer']) }} > 2``): the metric over
        all time, grouped by the entity, left-joined on that entity, as MetricFlow does (in a
        query without metrics, full-outer-joined: MetricFlow's rows of the filter's metric
        whose entity the read model lacks answer a null entity)."""
        values: dict[str, exp.Expression] = {}
        for i, item in enumerate(r for r in resolved if r.kind == "metric"):
            assert item.metric is not None and item.entity is not None and item.expr is not None
            if item.metric in self._filtering:
                raise PantryError(
                    f"metric filter on '{item.metric}' refers back to itself: "
                    + " -> ".join([*self._filtering, item.metric]),
                    field="filter",
                    hint="a metric cannot be filtered by a metric that depends on it",
                )
            self._filtering.append(item.metric)
            try:
                metric = self.metric(item.metric)
                values_sql = self._metric(metric, [item.entity], Context(), Range(None, None), item.metric)
            finally:
                self._filtering.pop()
            alias = f"metric_filter_{i}"
            select = select.join(
                values_sql.subquery(alias, copy=False),
                on=exp.EQ(this=qualified(item.expr, item.alias), expression=col(item.entity, alias)),
                join_type=join_type,
                copy=False,
            )
            values[item.name] = col(item.metric, alias)
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
        target = exp.cast(
            exp.Add(
                this=col("__first", "l"),
                expression=exp.Interval(
                    this=exp.Sub(this=col("__position", "d"), expression=exp.Literal.number(1)), unit=exp.var("DAY")
                ),
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
    def _shifts(item: Resolved, model: SemanticModel, measure: Measure) -> bool:
        """Whether an offset moves this name: metric time, or the measure's own agg-time dimension."""
        own = model.time_dimension_for(measure)
        return item.kind == "metric_time" or (
            item.kind == "time_dimension" and item.alias == "m0" and own is not None and item.dimension == own
        )

    def _column(
        self,
        item: Resolved,
        model: SemanticModel,
        measure: Measure,
        offset: Window | None,
        metric: Metric,
        shifted: exp.Expression | None = None,
    ) -> exp.Expression:
        if item.date_part is not None:  # the part of the (shifted) day: EXTRACT(isodow FROM day)
            day = self._column(replace(item, date_part=None), model, measure, offset, metric, shifted)
            return exp.Extract(this=exp.var(DATE_PARTS[item.date_part]), expression=day)
        if shifted is not None and item.grain not in SUB_DAILY and self._shifts(item, model, measure):
            return truncate(shifted.copy(), item.grain or "day")
        if item.kind == "metric_time":
            time_dim = model.time_dimension_for(measure)
            if time_dim is None:
                raise model.origin.error(
                    f"measure '{measure.name}' has no agg_time_dimension, so it has no metric_time",
                    definition=f"semantic model '{model.name}'",
                    field="defaults.agg_time_dimension",
                    hint="add 'defaults: {agg_time_dimension: <time dimension>}' to the semantic model",
                )
            return at_grain(qualified(time_dim.expr, "m0"), item.grain, offset)
        assert item.expr is not None
        value = qualified(item.expr, item.alias)
        if item.kind == "time_dimension":
            own = model.time_dimension_for(measure)
            # the measure's agg-time dimension is its metric time, and is offset as such
            shifted = offset is not None and item.alias == "m0" and own is not None and item.dimension == own
            return at_grain(value, item.grain, offset if shifted else None)
        return value

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

    def _join(self, parts: list[tuple[exp.Select, list[str]]], names: list[str]) -> exp.Select:
        """FULL OUTER JOIN on the names, null-safe, keys coalesced, as MetricFlow does; simple
        metrics that can share a scan first become one part (``fused``)."""
        parts, scans = self._fuse(parts)
        query = self._joined(parts, names)
        for name, scan in scans:  # shared scans that several parts read
            query = query.with_(name, as_=scan, copy=False)
        return query

    def _joined(self, parts: list[tuple[exp.Select, list[str]]], names: list[str]) -> exp.Select:
        if len(parts) == 1:
            return parts[0][0]
        aliases = [f"q{i}" for i in range(len(parts))]
        query = exp.select(copy=False).from_(parts[0][0].subquery(aliases[0], copy=False), copy=False)
        for i in range(1, len(parts)):
            if names:
                on = exp.and_(
                    *[
                        exp.NullSafeEQ(this=self._coalesced(n, aliases[:i]), expression=col(n, aliases[i]))
                        for n in names
                    ],
                    copy=False,
                )
                query = query.join(
                    parts[i][0].subquery(aliases[i], copy=False), on=on, join_type="full outer", copy=False
                )
            else:
                query = query.join(parts[i][0].subquery(aliases[i], copy=False), join_type="cross", copy=False)
        keys = [exp.alias_(self._coalesced(n, aliases), ident(n), copy=False) for n in names]
        values = [col(c, aliases[i]) for i, (_, cols) in enumerate(parts) for c in cols]
        return query.select(*keys, *values, copy=False)

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

    @staticmethod
    def _coalesced(name: str, aliases: list[str]) -> exp.Expression:
        if len(aliases) == 1:
            return col(name, aliases[0])
        return exp.Coalesce(this=col(name, aliases[0]), expressions=[col(name, a) for a in aliases[1:]])

    @staticmethod
    def _bind(condition: exp.Expression, table: str) -> exp.Expression:
        bound = condition.copy()
        for column in bound.find_all(exp.Column):
            column.set("table", exp.to_identifier(table))
        return bound

    def _where(self, text: str, metric: Metric | None = None) -> exp.Expression:
        try:
            condition = parse_filter(text)
        except ValueError as err:
            if metric is not None:
                raise metric.origin.error(
                    f"filter does not parse: {err}",
                    definition=f"metric '{metric.name}'",
                    field="filter",
                ) from None
            raise PantryError(
                f"the where condition does not parse: {err}",
                hint="write SQL over group-by names, e.g. \"metric_time__day >= '2022-01-01'\" or \"{{ Dimension('order__status') }} = 'completed'\"",
            ) from None
        for column in condition.find_all(exp.Column):
            column.set("this", ident(output_name(column.name)))
            column.set("table", None)
        return condition

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

    @staticmethod
    def _add_offsets(outer: Window | None, inner: Window, metric: Metric) -> Window:
        if outer is None:
            return inner
        if outer.unit != inner.unit:
            raise PantryError(
                f"cannot stack offsets '{outer}' and '{inner}'",
                file=metric.origin.shown_as,
                definition=f"metric '{metric.name}'",
                field="offset_window",
                hint="use the same unit for nested offsets",
            )
        return Window(outer.count + inner.count, outer.unit)

    @staticmethod
    def _fill(metric: Metric) -> object:
        if metric.type in ("simple", "cumulative") and metric.measure is not None:
            return metric.measure.fill_nulls_with
        return None
