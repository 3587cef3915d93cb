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
