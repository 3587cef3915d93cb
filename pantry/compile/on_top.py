"""Ratio and derived metrics computed on top of the query's shared parts.

Why: a derived metric compiles its inputs at the query's names and FULL OUTER JOINs them,
as MetricFlow does, so forty month-over-month growth metrics are forty joins of two
subqueries each, and metrics that read the same rows never share a scan. Here every
metric of a query is first reduced to its parts: a simple metric (with its filters and
offset) is one part, and so is a cumulative one; a conversion or grain-offset input is an
opaque part with its own subquery. All parts of the query are joined once
(``Compiler._join``), where simple parts of one model, time dimension, names and offset
share one scan (``fused.py``) and cumulative parts of one window share one spine join
(``cumulative.py``). Each ratio and derived metric is then an expression over its parts'
columns.

The answer stays the joined one. A derived metric has a row where any of its inputs has
one, so a formula is computed only where one of its inputs has a row (``present``, a column
the part adds when asked), else it is null, even where a fill would give a number; a fill
(``fill_nulls_with``) replaces an input's null where the formula is computed; a ratio
divides as ``Compiler._metric`` does (doubles, a zero denominator gives null). A formula
that is null whenever its inputs are, with no fill, needs no guard and asks for nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlglot import exp

from pantry.compile.context import Context, Range
from pantry.compile.cumulative import CUMULATIVE
from pantry.compile.fused import LEAF
from pantry.compile.sql import _parse_expr, col, ident
from pantry.spec.model import Metric

# the compiler (``query.Compiler``) is passed in, not imported: its rooms import downward only
Compiler = Any


@dataclass
class Value:
    """A metric as expressions over the joined parts: its value, and (asked for only where a
    formula needs it) whether it has a row in the group."""

    value: exp.Expression
    present: Callable[[], exp.Expression]


@dataclass
class Parts:
    """The parts collected so far: each a subquery with a value column, and a presence
    column where some formula asked for it (an aggregate per part: only when needed)."""

    built: list[exp.Select] = field(default_factory=list)
    wanted: set[int] = field(default_factory=set)

    def add(self, build: Callable[[str], exp.Select]) -> Value:
        """Part ``i``: ``build(column)`` answers the names and one value column so named
        (``__part{i}``); asked, the part also answers ``__here{i}``, true where it has a row."""
        i = len(self.built)
        self.built.append(build(f"__part{i}"))

        def present() -> exp.Expression:
            self.wanted.add(i)
            return exp.func("COALESCE", col(f"__here{i}"), exp.false())

        return Value(col(f"__part{i}"), present)

    def selects(self) -> list[tuple[exp.Select, list[str]]]:
        """Each part's select and columns, with the presence columns asked for."""
        out = []
        for i, select in enumerate(self.built):
            if i not in self.wanted:
                out.append((select, [f"__part{i}"]))
                continue
            here = exp.alias_(exp.true(), ident(f"__here{i}"), copy=False)
            leaf = select.meta.get(LEAF) or select.meta.get(CUMULATIVE)
            if leaf is not None:  # it names its presence itself when it shares a scan or a spine join
                leaf.present = f"__here{i}"
                select = select.select(here, copy=False)
            else:
                select = exp.select("*", here, copy=False).from_(select.subquery("part", copy=False), copy=False)
            out.append((select, [f"__part{i}", f"__here{i}"]))
        return out


# a formula built only of these gives null whenever all its inputs are null: no guard needed
STRICT = (exp.Column, exp.Identifier, exp.Literal, exp.Paren, exp.Neg, exp.Add, exp.Sub, exp.Mul, exp.Div)
STRICT += (exp.Cast, exp.DataType)


def _strict(formula: exp.Expression) -> bool:
    return all(isinstance(node, STRICT) for node in formula.walk())


def _filled(value: Value, fill: Any) -> exp.Expression:
    if fill is None:
        return value.value.copy()
    return exp.Coalesce(this=value.value.copy(), expressions=[exp.convert(fill)])


def _any(values: list[Value]) -> Callable[[], exp.Expression]:
    return lambda: exp.or_(*[v.present() for v in values], copy=False) if values else exp.false()


def _guarded(formula: exp.Expression, inputs: list[Value], fills: list[Any]) -> Value:
    """A formula over its inputs: computed only where one of them has a row. Where every
    input is null without a fill and the formula is strict, it is null anyway: no guard, and
    no presence aggregate for its parts."""
    present = _any(inputs)
    if _strict(formula) and all(f is None for f in fills):
        return Value(formula, present)
    return Value(exp.Case(ifs=[exp.If(this=present(), true=formula)]), present)


def metric_value(
    compiler: Compiler, metric: Metric, names: list[str], ctx: Context, window: Range, parts: Parts
) -> Value:
    """``metric`` at ``names`` as an expression over ``parts`` (adding the parts it needs)."""
    if metric.type not in ("ratio", "derived"):
        return parts.add(lambda column: compiler._metric(metric, names, ctx, window, column))
    own = [compiler._where(f, metric) for f in metric.filter]
    inner = Context(ctx.filters + own, ctx.offset)
    if metric.type == "ratio":
        assert metric.numerator and metric.denominator
        num = _input(compiler, metric.numerator, names, inner, window, metric, parts)
        den = _input(compiler, metric.denominator, names, inner, window, metric, parts)
        fills = [compiler._input_fill(metric.numerator), compiler._input_fill(metric.denominator)]
        ratio = exp.Div(
            this=exp.cast(_filled(num, fills[0]), "DOUBLE", copy=False),
            expression=exp.Nullif(
                this=exp.cast(_filled(den, fills[1]), "DOUBLE", copy=False), expression=exp.Literal.number(0)
            ),
        )
        return _guarded(ratio, [num, den], fills)
    inputs = {
        ref.column.lower(): (ref, _input(compiler, ref, names, inner, window, metric, parts)) for ref in metric.inputs
    }
    assert metric.expr is not None

    def substitute(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Column) and not node.table and node.name.lower() in inputs:
            ref, value = inputs[node.name.lower()]
            filled = _filled(value, compiler._input_fill(ref))
            return filled if isinstance(filled, exp.Column) else exp.Paren(this=filled)
        return node

    formula = _parse_expr(str(metric.expr)).copy().transform(substitute, copy=False)
    fills = [compiler._input_fill(ref) for ref, _ in inputs.values()]
    return _guarded(formula, [v for _, v in inputs.values()], fills)


def _input(
    compiler: Compiler, ref: Any, names: list[str], ctx: Context, window: Range, parent: Metric, parts: Parts
) -> Value:
    """One input of a ratio or derived metric: the input's filters and offset on top of its
    parent's, then its metric (or, with ``offset_to_grain``, the value at each period's start)."""
    metric = compiler._input_metric(ref, parent)
    inner = Context(ctx.filters + [compiler._where(f, parent) for f in ref.filter], ctx.offset)
    if ref.offset_window is not None:
        inner.offset = compiler._add_offsets(inner.offset, ref.offset_window, parent)
    if ref.offset_to_grain is not None:
        grain = ref.offset_to_grain
        return parts.add(lambda column: compiler._to_grain(metric, grain, names, inner, window, column, parent))
    return metric_value(compiler, metric, names, inner, window, parts)


def on_top(
    compiler: Compiler,
    metrics: list[Metric],
    names: list[str],
    ctx: Context,
    window: Range,
    columns: list[str] | None = None,
) -> exp.Select:
    """Every metric's parts joined once, each metric an expression over them: the names, then
    one column per metric (named ``columns``, else as the metric), unfilled (the caller
    applies the metrics' own fills)."""
    parts = Parts()
    values = [metric_value(compiler, m, names, Context(list(ctx.filters)), window, parts) for m in metrics]
    joined = compiler._join(parts.selects(), names)
    rows = joined.subquery("parts", copy=False)
    return exp.select(
        *[col(n) for n in names],
        *[exp.alias_(v.value, ident(c), copy=False) for c, v in zip(columns or [m.name for m in metrics], values)],
        copy=False,
    ).from_(rows, copy=False)
