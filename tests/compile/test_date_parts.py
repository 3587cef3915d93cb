"""Date parts, as MetricFlow names them (``metric_time__extract_dow``,
``order__ordered_at__extract_month``): the part of each row's day, the day of the week
being ISO's (Monday 1 .. Sunday 7). Oracle: pandas over the shop's orders."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from pantry import PantryError, Store


@pytest.fixture(scope="module")
def store(shop: tuple[Path, dict[str, pd.DataFrame]], tmp_path_factory: pytest.TempPathFactory) -> Store:
    return Store(defs=shop[0], home=tmp_path_factory.mktemp("home"))


def _by(frame: pd.DataFrame, key: str) -> dict[int, float]:
    return {int(k): float(v) for k, v in zip(frame[key], frame["revenue"])}


def test_revenue_by_day_of_week_and_month_number(store: Store, shop) -> None:
    orders = shop[1]["orders"]
    day = pd.to_datetime(orders["ordered_at"])
    got = store.query(["revenue"], group_by=["metric_time__extract_dow"])
    assert list(got.columns) == ["metric_time__extract_dow", "revenue"]
    assert _by(got, "metric_time__extract_dow") == pytest.approx(
        orders.groupby(day.dt.isocalendar().day)["amount"].sum().to_dict()
    )
    month = store.query(
        ["revenue"], group_by=["order__ordered_at__extract_month"], where="order__ordered_at__extract_month = 2"
    )
    assert _by(month, "order__ordered_at__extract_month") == pytest.approx(
        {2: orders[day.dt.month == 2]["amount"].sum()}
    )


def test_a_date_part_without_a_metric_reads_the_spine(store: Store) -> None:
    got = store.query(group_by=["metric_time__extract_dow"], start_time="2024-01-01", end_time="2024-01-03")
    assert sorted(got["metric_time__extract_dow"].tolist()) == [1, 2, 3]  # Monday, Tuesday, Wednesday


def test_an_unknown_date_part_is_named(store: Store) -> None:
    with pytest.raises(PantryError, match="metric_time__extract_fortnight"):
        store.query(["revenue"], group_by=["metric_time__extract_fortnight"])
