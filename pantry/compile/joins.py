"""Joins in the compiler: a measure's rows with everything its names need, and the join of
metrics' parts.

Why a room of its own: entity hops (one or several), partition joins, SCD validity windows
and the full outer join of parts are where fan-out and wrong answers come from; keeping
them together keeps their rules together (a hop's condition, which hop a name shares, how
a validity window bounds a versioned dimension). ``Joins`` is inherited by
``query.Compiler``; its methods use the compiler's others through ``self``.
"""

from __future__ import annotations

from dataclasses import replace

from sqlglot import exp

from pantry.compile.context import Context, Range
from pantry.compile.periods import (
    at_grain,
)
from pantry.compile.sql import (
    SOURCE_SCHEMA,
    SPINE_TABLE,
    VALUE,
    col,
    date_add,
    ident,
    qualified,
    truncate,
)
from pantry.errors import PantryError
from pantry.spec.filters import filter_names
from pantry.spec.model import Measure, Metric, SemanticModel
from pantry.spec.names import (
    DATE_PARTS,
    Hop,
    NameResolver,
    Resolved,
)
from pantry.spec.windows import SUB_DAILY, Window


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


def source_table(model: SemanticModel, alias: str) -> exp.Table:
    """Models are read through views ``src.<model>``; the offline layer creates them."""
    return exp.Table(
        this=exp.to_identifier(model.name),
        db=exp.to_identifier(SOURCE_SCHEMA),
        alias=exp.TableAlias(this=exp.to_identifier(alias)),
    )


class Joins:
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

    @staticmethod
    def _shifts(item: Resolved, model: SemanticModel, measure: Measure) -> bool:
        """Whether an offset moves this name: metric time, or the measure's own agg-time dimension."""
        own = model.time_dimension_for(measure)
        return item.kind == "metric_time" or (
            item.kind == "time_dimension" and item.alias == "m0" and own is not None and item.dimension == own
        )
