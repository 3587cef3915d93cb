"""The aggregations a measure may declare, and what each one allows, in one table.

Why one table: an aggregation's name used to be spelled out wherever a rule depended on it
(which ones add up across days, which give 0 over no rows, which a streaming view keeps,
which share a scan, which return integers, their SQL for the definition check), so a new
aggregation meant finding every list. Each rule is a field here; the code asks the field.
An aggregation whose parts combine (``combine``) is kept in a tile as its own SQL over the
tile's rows; the compiler builds its sqlglot form (``compile/sql.py``), and the Redis tile
script its Lua (``online/stream_tiles.py``, by ``stream_code``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlglot import exp


@dataclass(frozen=True)
class Aggregation:
    name: str
    duckdb: str  # DuckDB's SQL of it over one value (``{}``): what the definition check binds
    build: Callable[[exp.Expression], exp.Expression] | None  # its sqlglot form over one value (not quantiles)
    combine: str | None  # how partial results combine exactly ("sum", "min", "max"), or None
    # (a tile's part is its own SQL over the tile's rows; parts are combined with that function)
    adds_up: bool = False  # a total is the sum of its parts' totals, 0 where no part has rows
    counts: bool = False  # a count: 0, not null, over no rows
    quantile: bool = False  # a quantile (median, percentile): kept as the values themselves
    stream_code: str | None = None  # how the Redis tile script keeps it, where a streaming view may
    integer: bool = False  # its result is an integer whatever the value's type
    # A tile's partials of an aggregation whose parts do not combine by one function: each
    # part's name and its SQL over the tile's rows (``{v}`` the value), and the SQL merging
    # a window's tiles (``{inside}`` the window's condition, ``{<part>}`` each part's column,
    # ``{kind}`` and ``{p}`` a quantile's function and fraction). Lists are sorted so that a
    # tile's bytes depend on its rows alone (a day rewritten unchanged keeps its S3 ETag).
    tile_parts: tuple[tuple[str, str], ...] = ()
    merge: str | None = None
    ordered_sum: bool = False  # a streaming view adds its "sum" part in arrival order (float sums)
    percentile: float | None = None  # a quantile's fraction when ``agg_params`` gives none (None: required)
    dense: str | None = None  # how the window figures lay it out densely, over numbers ("average", "min", "max")

    @property
    def parts(self) -> tuple[str, ...]:
        """The names of its partial columns in a tile (``<feature>__<part>``)."""
        return tuple(name for name, _ in self.tile_parts) or ("part",)

    @property
    def shares_scan(self) -> bool:
        """Its aggregate takes FILTER (WHERE ...): simple metrics of it share a scan."""
        return not self.quantile

    @property
    def streams(self) -> bool:
        return self.stream_code is not None


AGGREGATIONS: dict[str, Aggregation] = {
    a.name: a
    for a in (
        Aggregation(
            "sum", "SUM({})", lambda v: exp.Sum(this=v), "sum", adds_up=True, stream_code="sum", ordered_sum=True
        ),
        Aggregation(
            "count",
            "COUNT({})",
            lambda v: exp.Count(this=v),
            "sum",
            adds_up=True,
            counts=True,
            stream_code="count",
            integer=True,
        ),
        Aggregation(
            "sum_boolean",
            "SUM(CAST({} AS INTEGER))",
            lambda v: exp.Sum(this=exp.cast(v, "INT", copy=False)),
            "sum",
            adds_up=True,
            stream_code="sum",
            integer=True,
        ),
        Aggregation(
            "average",
            "AVG({})",
            lambda v: exp.Avg(this=v),
            None,
            stream_code="avg",
            tile_parts=(("sum", "SUM({v})"), ("count", "COUNT({v})")),
            merge="SUM({sum}) FILTER (WHERE {inside}) / NULLIF(SUM({count}) FILTER (WHERE {inside}), 0)",
            ordered_sum=True,
            dense="average",
        ),
        Aggregation("min", "MIN({})", lambda v: exp.Min(this=v), "min", stream_code="min", dense="min"),
        Aggregation("max", "MAX({})", lambda v: exp.Max(this=v), "max", stream_code="max", dense="max"),
        Aggregation(
            "count_distinct",
            "COUNT(DISTINCT {})",
            lambda v: exp.Count(this=exp.Distinct(expressions=[v])),
            None,
            counts=True,
            integer=True,
            tile_parts=(("part", "LIST_SORT(LIST(DISTINCT {v}) FILTER (WHERE {v} IS NOT NULL))"),),
            merge="LENGTH(LIST_DISTINCT(FLATTEN(LIST({part}) FILTER (WHERE {inside}))))",
        ),
        *(
            Aggregation(
                name,
                duckdb,
                None,
                None,
                quantile=True,
                tile_parts=(("part", "LIST_SORT(LIST({v}) FILTER (WHERE {v} IS NOT NULL))"),),
                merge="LIST_AGGREGATE(FLATTEN(LIST({part}) FILTER (WHERE {inside})), '{kind}', {p})",
                percentile=fraction,
            )
            for name, duckdb, fraction in (
                ("median", "MEDIAN({})", 0.5),
                ("percentile", "QUANTILE_CONT({}, 0.5)", None),
            )
        ),
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
