"""The plan between name resolution and SQL (issue 27 part 1): what ``Compiler.plan``
resolves, checked by hand, and a step an engine's compiler renders its own way."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd
from sqlglot import exp

from pantry import Store
from pantry.compile.context import QueryRequest
from pantry.compile.query import Compiler, QueryPlan


def test_the_plan_resolves_names_grains_and_the_range(shop: tuple[Path, dict[str, pd.DataFrame]]) -> None:
    defs, _ = shop
    compiler = Compiler(Store(defs=defs).definitions)
    plan = compiler.plan(
        QueryRequest(
            metrics=("revenue", "orders"),
            group_by=("metric_time", "customer__segment"),
            order=("-metric_time",),
            start_time=date(2024, 1, 10),
            end_time=date(2024, 2, 5),
        )
    )
    # a bare metric_time is the metrics' default grain (the orders' day); the order follows it
    assert plan.names == ["metric_time__day", "customer__segment"]
    assert plan.request.order == ("-metric_time__day",)
    assert [m.name for m in plan.metrics] == ["revenue", "orders"]
    assert plan.window is not None and (plan.window.lo, plan.window.hi) == (date(2024, 1, 10), date(2024, 2, 5))
    monthly = compiler.plan(
        QueryRequest(metrics=("revenue",), group_by=("metric_time__month",), start_time=date(2024, 1, 10))
    )
    assert monthly.window is not None and monthly.window.lo == date(2024, 1, 1)  # widened to the month's start
    values = compiler.plan(QueryRequest(metrics=(), group_by=("customer__segment",)))
    assert values.metrics == () and values.window is None


def test_an_engine_renders_one_step_its_own_way(shop: tuple[Path, dict[str, pd.DataFrame]]) -> None:
    """A compiler that renders the fills its own way changes that step only: the rest of the
    tree (the parts, their join, the order) is the standard compiler's, to the letter."""
    defs, _ = shop
    catalog = Store(defs=defs).definitions

    class MarkedFills(Compiler):
        def render_fills(self, plan: QueryPlan, query: exp.Select) -> exp.Select:
            return exp.select("*", copy=False).from_(query.subquery("engine_filled", copy=False), copy=False)

    request = QueryRequest(metrics=("revenue",), group_by=("metric_time__month",))
    standard = Compiler(catalog).compile(request).sql("duckdb")
    marked = MarkedFills(catalog).compile(request).sql("duckdb")
    assert "engine_filled" in marked and "engine_filled" not in standard
    inner = Compiler(catalog)
    parts = inner.render_metrics(inner.plan(request)).sql("duckdb")
    assert parts in standard and parts in marked
