"""Durations and windows, parsed in one place.

Why one parser: metric windows (``7 days``), offsets (``1 month``), feature windows,
ttl and freshness all use the same words, and two parsers would disagree on ``1 week``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

# finest first: "the finest grain" is the one with the lowest index
SUB_DAILY: tuple[str, ...] = ("millisecond", "second", "minute", "hour")
GRAINS: tuple[str, ...] = (*SUB_DAILY, "day", "week", "month", "quarter", "year")
_UNITS = {
    "millisecond": "millisecond",
    "second": "second",
    "minute": "minute",
    "hour": "hour",
    "day": "day",
    "week": "week",
    "month": "month",
    "quarter": "quarter",
    "year": "year",
}
_PATTERN = re.compile(r"^\s*(\d+)\s*([a-zA-Z]+?)s?\s*$")


@dataclass(frozen=True)
class Window:
    """A count of calendar units, such as 90 days or 1 month."""

    count: int
    unit: str

    def __str__(self) -> str:
        return f"{self.count} {self.unit}{'s' if self.count != 1 else ''}"

    def as_timedelta(self) -> timedelta:
        """Exact length; months and years have none, so they are refused here."""
        seconds = {"millisecond": 0.001, "second": 1, "minute": 60, "hour": 3600, "day": 86400, "week": 7 * 86400}
        if self.unit not in seconds:
            raise ValueError(f"'{self}' has no fixed length; use days or weeks")
        return timedelta(seconds=self.count * seconds[self.unit])


def parse_window(text: object) -> Window:
    """``'90 days'`` -> Window(90, 'day'). Raises ValueError with the accepted forms."""
    match = _PATTERN.match(str(text)) if text is not None else None
    unit = _UNITS.get(match.group(2).lower()) if match else None
    if not match or unit is None:
        raise ValueError(
            f"'{text}' is not a window; write a count and a unit, such as '7 days', '1 week', '1 month' or '26 hours'"
        )
    return Window(int(match.group(1)), unit)


def parse_offset(text: object) -> Window:
    """An ``offset_window``: a window, or a count of a custom granularity of the time spine
    (``1 alien_day``, checked against the spine at validation)."""
    try:
        return parse_window(text)
    except ValueError:
        match = re.match(r"^\s*(\d+)\s+([A-Za-z_][A-Za-z0-9_]*)\s*$", str(text)) if text is not None else None
        if match is None:
            raise
        return Window(int(match.group(1)), match.group(2))


def parse_grain(text: object) -> str:
    """A time granularity name, lower-cased and checked."""
    grain = str(text).lower()
    if grain not in GRAINS:
        raise ValueError(f"'{text}' is not a time grain; use one of {', '.join(GRAINS)}")
    return grain
