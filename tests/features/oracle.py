"""A brute-force point-in-time oracle, written from docs/features.md and nothing else.

It loops over raw rows in Python. It shares no code with ``pantry.features``.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any


@dataclass(frozen=True)
class Row:
    key: int
    at: datetime  # naive UTC
    amount: float | None
    status: str
    position: int  # order in the source file


@dataclass(frozen=True)
class Spec:
    name: str
    agg: str  # sum | count | count_distinct | average | min | max | median | p90 | sum_boolean | last
    days: int = 0


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def _aggregate(agg: str, rows: list[Row]) -> Any:
    values = [r.amount for r in rows if r.amount is not None]
    if agg == "sum":
        return sum(values) if rows else 0
    if agg == "count":
        return len(values)
    if agg == "sum_boolean":
        return sum(1 for v in values if v >= 50)
    if not rows:
        return None
    if agg == "count_distinct":
        return len({r.status for r in rows})
    if not values:
        return None
    if agg == "average":
        return sum(values) / len(values)
    if agg == "min":
        return min(values)
    if agg == "max":
        return max(values)
    if agg == "median":
        return statistics.median(values)
    if agg == "p90":
        return _quantile(values, 0.9)
    raise ValueError(agg)


def expected(
    rows: list[Row], days: list[date], ttl: timedelta, specs: list[Spec], key: int, at: datetime
) -> dict[str, Any]:
    nulls = {s.name: None for s in specs}
    stamps = sorted(datetime(d.year, d.month, d.day) + timedelta(days=1) for d in days)
    earlier = [s for s in stamps if s <= at]
    if not earlier:
        return nulls
    stamp = earlier[-1]
    if at - stamp > ttl:
        return nulls
    mine = [r for r in rows if r.key == key]
    widest = max(s.days for s in specs if s.days)
    if not any(stamp - timedelta(days=widest) <= r.at < stamp for r in mine):
        return nulls
    out: dict[str, Any] = {}
    for spec in specs:
        if spec.agg == "last":
            before = [r for r in mine if r.at < stamp]
            out[spec.name] = max(before, key=lambda r: (r.at, r.position)).status
        else:
            inside = [r for r in mine if stamp - timedelta(days=spec.days) <= r.at < stamp]
            out[spec.name] = _aggregate(spec.agg, inside)
    return out
