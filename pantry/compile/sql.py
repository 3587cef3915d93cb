"""SQL building blocks every compiler room shares: quoted names, a model's column bound to
its alias, a measure's aggregate and how its partials combine, the name of a row's value
column, and the time arithmetic (a date moved by a window, a period's start).

Why a leaf module: the compiler, the fused scans (``fused.py``), the cumulative spine joins
(``cumulative.py``), the offline sources and the feature tiles all need these few helpers;
importing them from ``query.py`` pulled in the whole compiler and made ``fused.py`` and
``query.py`` import each other. This module imports nothing of Pantry but the definition
model and its windows.
"""

from __future__ import annotations

from functools import lru_cache

import sqlglot
from sqlglot import exp

from pantry.spec.aggregations import aggregation
from pantry.spec.model import Measure
from pantry.spec.windows import SUB_DAILY, Window

DAY = "metric_time__day"
METRIC_TIME = "metric_time"

SPINE_TABLE = "pantry_time_spine"  # the daily time spine the offline layer creates
SOURCE_SCHEMA = "src"  # models are read through views src.<model>, which the offline layer creates
VALUE = "__value"  # the column holding a measure's value in a metric's row-level subquery


def ident(name: str) -> exp.Identifier:
    return exp.Identifier(this=name, quoted=True)


def col(name: str, table: str | None = None) -> exp.Column:
    return exp.Column(this=ident(name), table=exp.Identifier(this=table, quoted=False) if table else None)


@lru_cache(maxsize=4096)
def _parse_expr(sql: str) -> exp.Expression:
    return sqlglot.parse_one(sql, read="duckdb")


def qualified(sql: str, alias: str) -> exp.Expression:
    """A model's column expression with every column bound to the model's alias."""
    tree = _parse_expr(sql).copy()
    for column in tree.find_all(exp.Column):
        if not column.table:
            column.set("table", exp.to_identifier(alias))
    return tree


def aggregate(measure: Measure, value: exp.Expression) -> exp.Expression:
    """The measure's aggregation over one column, in sqlglot terms (``spec/aggregations.py``;
    a quantile reads its measure's parameters)."""
    found = aggregation(measure.agg)
    if found is not None and found.build is not None:
        return found.build(value)
    quantile = exp.Literal.number(measure.percentile if measure.percentile is not None else 0.5)
    if measure.use_approximate_percentile:
        return exp.ApproxQuantile(this=value, quantile=quantile)
    kind = exp.PercentileDisc if measure.use_discrete_percentile else exp.PercentileCont
    return exp.WithinGroup(this=kind(this=quantile), expression=exp.Order(expressions=[exp.Ordered(this=value)]))


def combined(measure: Measure, partials: exp.Expression) -> exp.Expression | None:
    """The measure's aggregate over ``partials``, each the measure's ``aggregate`` of some of
    the rows; None where partials do not combine exactly (distinct counts, averages,
    percentiles). Why: a cumulative window over days reads each day's partial, not every
    row once per day it reaches."""
    found = aggregation(measure.agg)
    how = found.combine if found is not None else None
    if how == "sum":
        total = exp.Sum(this=partials)
        # a sum of counts is a wider integer in some engines; a count is BIGINT
        return exp.cast(total, "BIGINT", copy=False) if found is not None and found.counts else total
    if how == "min":
        return exp.Min(this=partials)
    if how == "max":
        return exp.Max(this=partials)
    return None


def date_add(value: exp.Expression, window: Window, sign: int = 1, kind: str = "DATE") -> exp.Expression:
    count = exp.Literal.number(window.count)
    unit = exp.var(window.unit.upper())
    node = exp.DateAdd if sign > 0 else exp.DateSub
    return exp.cast(node(this=value, expression=count, unit=unit), kind, copy=False)


def truncate(day: exp.Expression, grain: str) -> exp.Expression:
    """Start of the grain period, as a DATE (a TIMESTAMP below a day). Weeks start on Monday
    in every dialect."""
    if grain == "day":
        return day
    kind = "TIMESTAMP" if grain in SUB_DAILY else "DATE"
    return exp.cast(exp.DateTrunc(this=day, unit=exp.Literal.string(grain.upper())), kind, copy=False)


def spine_period(value: exp.Expression, grain: str, base: str) -> exp.Expression:
    """A spine period at a requested grain: a DATE from a day up, even when the spine steps
    below a day (``base``)."""
    if base in SUB_DAILY and grain not in SUB_DAILY:
        value = exp.cast(value, "DATE", copy=False)
    return truncate(value, grain)
