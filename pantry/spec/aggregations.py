"""The aggregations a measure may declare, and what each one allows, in one table.

Why one table: an aggregation's name used to be spelled out wherever a rule depended on it
(which ones add up across days, which give 0 over no rows, which a streaming view keeps,
which share a scan, which return integers, their SQL for the definition check), so a new
aggregation meant finding every list. Each rule is a field here; the code asks the field.
The SQL that computes an aggregation, its tiles and their merge still live with the code
that builds each (``compile/sql.py``, ``features/tiles.py``, ``online/stream_tiles.py``).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Aggregation:
    name: str
    duckdb: str  # DuckDB's SQL of it over one value (``{}``): what the definition check binds
    combine: str | None  # how partial results combine exactly ("sum", "min", "max"), or None
    adds_up: bool = False  # a total is the sum of its parts' totals, 0 where no part has rows
    counts: bool = False  # a count: 0, not null, over no rows
    shares_scan: bool = True  # its aggregate takes FILTER (WHERE ...): metrics of it share a scan
    streams: bool = False  # a streaming view keeps it in tiles in Redis
    integer: bool = False  # its result is an integer whatever the value's type


AGGREGATIONS: dict[str, Aggregation] = {
    a.name: a
    for a in (
        Aggregation("sum", "SUM({})", "sum", adds_up=True, streams=True),
        Aggregation("count", "COUNT({})", "sum", adds_up=True, counts=True, streams=True, integer=True),
        Aggregation("sum_boolean", "SUM(CAST({} AS INTEGER))", "sum", adds_up=True, streams=True, integer=True),
        Aggregation("average", "AVG({})", None, streams=True),
        Aggregation("min", "MIN({})", "min", streams=True),
        Aggregation("max", "MAX({})", "max", streams=True),
        Aggregation("count_distinct", "COUNT(DISTINCT {})", None, counts=True, integer=True),
        Aggregation("median", "MEDIAN({})", None, shares_scan=False),
        Aggregation("percentile", "QUANTILE_CONT({}, 0.5)", None, shares_scan=False),
    )
}
ALIASES = {"avg": "average"}  # MetricFlow's other spellings, read as the name they stand for
NAMES = set(AGGREGATIONS) | set(ALIASES)  # what ``agg:`` accepts


def aggregation(name: str | None) -> Aggregation | None:
    """The aggregation named (an alias too), or None (a dimension feature's ``last``)."""
    return AGGREGATIONS.get(ALIASES.get(name or "", name or ""))


def adds_up(name: str | None) -> bool:
    found = aggregation(name)
    return found is not None and found.adds_up


def counts(name: str | None) -> bool:
    found = aggregation(name)
    return found is not None and found.counts
