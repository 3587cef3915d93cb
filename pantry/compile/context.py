"""What a metric is compiled within: the query's day range, and the filters and offset its
parents pass down. A leaf module, so the rooms of the compiler (``query.py``, ``on_top.py``)
share these without importing each other."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from sqlglot import exp

from pantry.spec.windows import Window


@dataclass(frozen=True)
class Range:
    """An inclusive day range on metric time, widened to the grain as MetricFlow does."""

    lo: date | None
    hi: date | None
    whole_days: bool = False
    # below a day, with a time of day given: [lo_at, hi_at) at the query's finest grain
    lo_at: datetime | None = None
    hi_at: datetime | None = None
    fine: str | None = None


@dataclass
class Context:
    """The filters a metric's rows must pass (the query's, its parents' and its own) and
    the offset its parents shift it by."""

    filters: list[exp.Expression] = field(default_factory=list)
    offset: Window | None = None


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
