"""A cumulative metric grouped or filtered by its measure's own agg-time dimension
(``order__ordered_at__...``) behaves as with metric_time, as in MetricFlow's
``grain_to_date_metric_with_non_default_grains`` and ``cumulative_metric_with_agg_time_dimension``:
windows run on the daily spine, a coarser grain takes the period's first day, and a where on
that dimension narrows the output days, not the rows the window reaches back to.
Oracle: pandas, day by day."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from pantry import Store


@pytest.fixture(scope="module", params=["entity", "primary_entity"])
def store(request, shop: tuple[Path, dict[str, pd.DataFrame]], tmp_path_factory: pytest.TempPathFactory) -> Store:
    """The shop as written, and with ``order`` named by ``primary_entity:`` instead of an
    entity entry (MetricFlow's revenue model: ``revenue_instance__ds__quarter``)."""
    if request.param == "entity":
        return Store(defs=shop[0], home=tmp_path_factory.mktemp("home"))
    defs = tmp_path_factory.mktemp("primary") / "metrics_defs"
    shutil.copytree(shop[0], defs)
    text = (defs / "shop.yaml").read_text()
    text = text.replace(
        "    entities:\n      - {name: order, type: primary, expr: order_id}\n",
        "    primary_entity: order\n    entities:\n",
    )
    assert "primary_entity: order" in text
    (defs / "shop.yaml").write_text(text)
    return Store(defs=defs, home=tmp_path_factory.mktemp("home"))


def _daily(shop) -> pd.Series:
    orders = shop[1]["orders"]
    return orders.groupby(pd.to_datetime(orders["ordered_at"]).dt.normalize())["amount"].sum()


def test_month_to_date_by_the_agg_time_dimensions_quarter_is_the_quarters_first_day(store: Store, shop) -> None:
    daily = _daily(shop)
    first = daily.index.min()
    expected = daily[(daily.index >= first.to_period("M").start_time) & (daily.index <= first)].sum()
    got = store.query(["revenue_mtd"], group_by=["order__ordered_at__quarter", "order__ordered_at__year"])
    assert len(got) == 1 and float(got["revenue_mtd"].iloc[0]) == pytest.approx(expected)
    assert pd.Timestamp(got["order__ordered_at__quarter"].iloc[0]) == first.to_period("Q").start_time


def test_a_where_on_the_agg_time_dimension_narrows_days_not_the_window(store: Store, shop) -> None:
    daily = _daily(shop)
    got = store.query(
        ["revenue_7d"],
        group_by=["order__ordered_at__day"],
        where="order__ordered_at__day >= '2024-01-10' AND order__ordered_at__day <= '2024-01-20'",
    )
    days = pd.date_range("2024-01-10", "2024-01-20")
    expected = {d: daily[(daily.index > d - pd.Timedelta(days=7)) & (daily.index <= d)].sum() for d in days}
    have = {pd.Timestamp(r.order__ordered_at__day): float(r.revenue_7d) for r in got.itertuples()}
    assert list(have) == list(days)  # every day of the range, windows reaching back before it
    assert have == pytest.approx(expected)
