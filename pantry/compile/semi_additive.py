"""Semi-additive measures (``non_additive_dimension``): a balance is summed over entities
but not over time, so each group keeps only the rows at the first or last time of the
window (per window grouping when given), as MetricFlow filters them before aggregating.

``SemiAdditive`` is inherited by ``query.Compiler`` (a room of the compiler).
"""

from __future__ import annotations

from sqlglot import exp

from pantry.compile.sql import (
    col,
    ident,
    qualified,
)
from pantry.spec.model import Measure, SemanticModel
from pantry.spec.names import (
    metric_time_grain,
)


class SemiAdditive:
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
