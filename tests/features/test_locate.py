"""Which stamp and partition an engine's training read gives a row at a moment: the latest
materialized stamp at or before it, and the partition of the day before that stamp.

``in_engine._locate`` writes that rule as SQL two ways: arithmetic on the moment's date when
the materialized days have no gap, a join to a table of days when they have. Both are run
here in DuckDB over moments on and around every stamp, against a brute force over the
stamps in Python."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import duckdb
import numpy as np
import pytest

from pantry.compile.view_plan import stamp_of
from pantry.features.in_engine import _locate


def _brute(days: list[date], moment: datetime) -> tuple[datetime | None, date | None]:
    stamps = [stamp_of(d).replace(tzinfo=None) for d in days]
    before = [s for s in stamps if s <= moment]
    if not before:
        return None, None
    latest = max(before)
    return latest, latest.date() - timedelta(days=1)


def _moments(days: list[date], seed: int) -> list[datetime]:
    """Each stamp, a microsecond either side of it, noon of every day from two days before
    the first stamp to two after the last, and random moments across that span."""
    stamps = sorted(stamp_of(d).replace(tzinfo=None) for d in days)
    out = [m for s in stamps for m in (s - timedelta(microseconds=1), s, s + timedelta(microseconds=1))]
    first, span = stamps[0] - timedelta(days=2), (stamps[-1] - stamps[0]).days + 4
    out += [first + timedelta(days=i, hours=12) for i in range(span)]
    rng = np.random.default_rng(seed)
    out += [first + timedelta(seconds=int(s)) for s in rng.integers(0, span * 86_400, 300)]
    return out


@pytest.mark.parametrize(
    "days",
    [
        [date(2013, 6, d) for d in range(5, 11)],  # a backfilled range: arithmetic, no join
        [date(2013, 6, 5)],  # one day
        [date(2013, 6, 1), date(2013, 6, 2), *[date(2013, 6, d) for d in range(5, 11)]],  # a gap: the table of days
        [date(2013, 5, 30), date(2013, 6, 2), date(2013, 6, 2), date(2013, 6, 9)],  # gaps, a day twice
    ],
    ids=["range", "one-day", "gap", "gaps"],
)
def test_each_moment_takes_the_latest_stamp_at_or_before_it(days: list[date]) -> None:
    join, stamp, part = _locate(days, "q.ts", "m")
    contiguous = (max(days) - min(days)).days + 1 == len(set(days))
    assert (join == "") == contiguous  # the two forms are both exercised
    moments = _moments(days, seed=len(days))
    con = duckdb.connect()
    try:
        con.execute("CREATE TABLE q (i BIGINT, ts TIMESTAMP)")
        con.executemany("INSERT INTO q VALUES (?, ?)", list(enumerate(moments)))
        rows = con.execute(f"SELECT q.i, {stamp}, {part} FROM q {join} ORDER BY q.i").fetchall()
    finally:
        con.close()
    assert len(rows) == len(moments)
    for (i, got_stamp, got_part), moment in zip(rows, moments, strict=True):
        assert (got_stamp, got_part) == _brute(days, moment), (i, moment)
