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

The rooms: this module resolves a query's names and ranges and dispatches each metric by
its type (``KINDS``); ``simple.py``, ``cumulative.py``, ``conversion.py``,
``semi_additive.py`` and ``on_top.py`` build the kinds; ``periods.py`` holds time (grains,
spines, offsets, custom periods) and ``joins.py`` the joins (entity hops, partition joins,
SCD validity, the join of parts); ``sql.py`` the shared SQL helpers. ``Compiler`` inherits
the rooms, so one compiler object carries a query through all of them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

from sqlglot import exp

from pantry.compile.context import Context, QueryRequest, Range
from pantry.compile.conversion import ConversionMetrics
from pantry.compile.cumulative import CumulativeMetrics
from pantry.compile.joins import Joins, _share_first_hops, source_table
from pantry.compile.on_top import on_top
from pantry.compile.periods import (
    TimeRules,
    at_grain,
)
from pantry.compile.semi_additive import SemiAdditive
from pantry.compile.simple import SimpleMetrics
from pantry.compile.sql import (
    METRIC_TIME,
    SPINE_TABLE,
    col,
    ident,
    qualified,
)
from pantry.errors import PantryError, did_you_mean
from pantry.spec.filters import filter_names, parse_filter
from pantry.spec.model import Catalog, Metric, SemanticModel
from pantry.spec.names import (
    NameResolver,
    output_name,
)
from pantry.spec.windows import GRAINS, SUB_DAILY


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
class QueryPlan:
    """A query between name resolution and SQL: what ``Compiler.render`` turns into a tree.

    Why a plan: resolving names (grains, join paths, the default grain of a bare
    ``metric_time``) and widening the range are the same on every engine, while how a step
    is written (the parts, their join, the fills) is where an engine may differ. MetricFlow
    keeps a dataflow plan of one node per operation; this is the same idea at the size
    Pantry needs."""

    request: QueryRequest
    names: list[str]  # the group-by names, resolved
    metrics: tuple[Metric, ...] = ()
    where: list[exp.Expression] = field(default_factory=list)  # the query's own filters
    window: Range | None = None  # the time range, widened to whole periods


class Compiler(TimeRules, Joins, ConversionMetrics, SemiAdditive, SimpleMetrics, CumulativeMetrics):
    """Compiles QueryRequests against one catalog."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self._filtering: list[str] = []  # metrics being compiled for a metric filter, outermost first
        self._query_where: list[exp.Expression] = []
        self._dedupe = True  # a query without metrics answers distinct rows (apply_group_by)
        self._scans = 0  # shared scans named so far (``WITH __scan<n>``)

    # -- public -----------------------------------------------------------------
    def compile(self, request: QueryRequest) -> exp.Select:
        """The query's SQL tree: its plan (names resolved, range widened), then each step."""
        return self.render(self.plan(request))

    def plan(self, request: QueryRequest) -> QueryPlan:
        """What the query asks, resolved: group-by names at their grains and join paths, the
        order in those names, the metrics, the query's filters and the time range."""
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
            return QueryPlan(request, names)
        if request.min_max_only:
            raise PantryError(
                "min_max_only answers the smallest and largest value of each group-by, without metrics",
                field="min_max_only",
                hint="drop --metrics, or drop --min-max-only",
            )
        metrics = [self.metric(name) for name in request.metrics]
        where = [self._where(w) for w in request.where]
        return QueryPlan(request, names, tuple(metrics), where, self._range(request, names))

    def render(self, plan: QueryPlan) -> exp.Select:
        """A plan's SQL, step by step; each step is a method an engine's compiler may override."""
        if not plan.metrics:
            return self.render_dimensions(plan)
        self._query_where = plan.where  # the query's own filters (not metrics' or measures')
        query = self.render_metrics(plan)
        query = self.render_fills(plan, query)
        return self._ordered(query, plan.request, plan.names, [m.name for m in plan.metrics])

    def render_dimensions(self, plan: QueryPlan) -> exp.Select:
        """A query without metrics: the group-by names' distinct values (or their bounds)."""
        request, names = plan.request, plan.names
        if request.min_max_only:
            values = self._dimension_values(request, names).subquery("dimension_values", copy=False)
            bounds = [
                exp.alias_(kind(this=col(n)), ident(f"{n}__{suffix}"), copy=False)
                for n in names
                for kind, suffix in ((exp.Min, "min"), (exp.Max, "max"))
            ]
            return exp.select(*bounds, copy=False).from_(values, copy=False)
        return self._ordered(self._dimension_values(request, names), request, names, [])

    def render_metrics(self, plan: QueryPlan) -> exp.Select:
        """Every metric at the plan's names, one row per group: each by its kind (``KINDS``),
        joined once; ratios and derived metrics on top of their inputs' shared parts."""
        assert plan.window is not None
        names, where, window = plan.names, plan.where, plan.window
        if any(m.type in ("ratio", "derived") for m in plan.metrics):
            return on_top(self, list(plan.metrics), names, Context(list(where)), window)
        parts = [(self._metric(m, names, Context(list(where)), window, m.name), [m.name]) for m in plan.metrics]
        return self._join(parts, names)

    def render_fills(self, plan: QueryPlan, query: exp.Select) -> exp.Select:
        """``fill_nulls_with``: a metric's null, where it declares one, becomes that value."""
        fills = {m.name: self._fill(m) for m in plan.metrics}
        if all(v is None for v in fills.values()):
            return query
        return exp.select(
            *[col(n) for n in plan.names],
            *[
                exp.alias_(exp.Coalesce(this=col(m), expressions=[exp.convert(f)]), ident(m), copy=False)
                if f is not None
                else col(m)
                for m, f in fills.items()
            ],
            copy=False,
        ).from_(query.subquery("filled", copy=False), copy=False)

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
        """``metric`` at ``names``, one value column named ``column``: by its kind (``KINDS``)."""
        return KINDS[metric.type](self, metric, names, ctx, window, column)

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

    # -- building blocks ------------------------------------------------------------

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

    @staticmethod
    def _fill(metric: Metric) -> object:
        if metric.type in ("simple", "cumulative") and metric.measure is not None:
            return metric.measure.fill_nulls_with
        return None


def _on_top(
    compiler: Compiler, metric: Metric, names: list[str], ctx: Context, window: Range, column: str
) -> exp.Select:
    """Ratio and derived: an expression over its inputs' parts (``on_top.py``)."""
    return on_top(compiler, [metric], names, ctx, window, [column])


def _own_filters(build: Callable[..., exp.Select]) -> Callable[..., exp.Select]:
    """A metric kind that reads rows itself: the metric's own filters join the query's."""

    def with_filters(
        compiler: Compiler, metric: Metric, names: list[str], ctx: Context, window: Range, column: str
    ) -> exp.Select:
        inner = Context(ctx.filters + [compiler._where(f, metric) for f in metric.filter], ctx.offset)
        return build(compiler, metric, names, inner, window, column)

    return with_filters


# each metric type's builder; a new kind is a room of the compiler and a line here
KINDS: dict[str, Callable[..., exp.Select]] = {
    "ratio": _on_top,
    "derived": _on_top,
    "conversion": _own_filters(ConversionMetrics._conversion),
    "simple": _own_filters(SimpleMetrics._measure_metric),  # simple.py
    "cumulative": _own_filters(SimpleMetrics._measure_metric),  # its measure's rows, then cumulative.py's window
}
