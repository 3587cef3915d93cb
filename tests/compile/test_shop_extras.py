"""offset_to_grain and metric filters: the answers are MetricFlow's (``make parity``, replayed
from ``metricflow_answers``); here, hand-computed cases and what is refused, by name."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from pantry import PantryError, Store
from tests.conftest import SHOP_EXTRAS_YAML


@pytest.fixture(scope="module")
def store(shop: tuple[Path, dict[str, pd.DataFrame]], tmp_path_factory: pytest.TempPathFactory) -> Store:
    defs = tmp_path_factory.mktemp("offsets") / "metrics_defs"
    shutil.copytree(shop[0], defs)
    (defs / "extras.yaml").write_text(SHOP_EXTRAS_YAML)
    return Store(defs=defs, home=tmp_path_factory.mktemp("home"))


def test_every_day_gets_its_month_starts_revenue(store: Store, shop) -> None:
    orders = shop[1]["orders"]
    day = pd.to_datetime(orders["ordered_at"]).dt.normalize()
    daily = orders.groupby(day)["amount"].sum()
    got = store.query(
        "revenue_since_month_start", group_by="metric_time__day", start_time="2024-02-01", end_time="2024-02-29"
    )
    got["metric_time__day"] = pd.to_datetime(got["metric_time__day"])
    first = daily.get(pd.Timestamp("2024-02-01"))
    assert first is not None  # the shop has orders on Feb 1st, so every day of February answers
    for row in got.itertuples():
        today = daily.get(row.metric_time__day)
        expected = None if today is None else today - first
        if expected is None:
            assert pd.isna(row.revenue_since_month_start)
        else:
            assert row.revenue_since_month_start == pytest.approx(expected)
    assert len(got) == 29


def test_a_week_or_a_year_reads_the_month_start_of_its_first_day(store: Store, shop) -> None:
    """As MetricFlow: a week (or a year) answers with the value on the first day of the month
    its own first day falls in (the week of Monday Jan 29th reads January 1st)."""
    orders = shop[1]["orders"]
    daily = orders.groupby(pd.to_datetime(orders["ordered_at"]).dt.normalize())["amount"].sum()
    weeks = store.query("revenue_month_start", group_by="metric_time__week")
    for row in weeks.itertuples():
        start = pd.Timestamp(row.metric_time__week)
        assert row.revenue_month_start == pytest.approx(daily[start.replace(day=1)])
    assert len(weeks) > 4
    years = store.query("revenue_month_start", group_by="metric_time__year")
    assert years["revenue_month_start"].tolist() == pytest.approx([daily[pd.Timestamp("2024-01-01")]])


@pytest.mark.parametrize(
    ("group_by", "message"),
    [
        ("customer__segment", "needs metric time"),
    ],
)
def test_what_is_refused_is_named(store: Store, group_by: str, message: str) -> None:
    with pytest.raises(PantryError, match=message) as err:
        store.query("revenue_month_start", group_by=group_by)
    assert err.value.definition == "metric 'revenue_month_start'"
    assert err.value.field == "type_params.metrics.offset_to_grain"


def test_an_unknown_grain_fails_validation(store: Store, tmp_path: Path) -> None:
    defs = tmp_path / "metrics_defs"
    shutil.copytree(store.defs, defs)
    (defs / "extras.yaml").write_text(SHOP_EXTRAS_YAML.replace("offset_to_grain: quarter", "offset_to_grain: quater"))
    with pytest.raises(PantryError, match=r"offset_to_grain 'quater' is not a time grain \(did you mean 'quarter'\?\)"):
        Store(defs=defs, home=tmp_path / "home").validate()


def test_a_metric_filter_matches_a_brute_force(store: Store, shop) -> None:
    """repeat_customer_revenue: revenue of customers with at least 14 orders, by hand."""
    orders = shop[1]["orders"]
    counts = orders.groupby("customer_id").size()
    repeat = orders[orders["customer_id"].isin(counts[counts >= 14].index)]
    got = store.query("repeat_customer_revenue")
    assert 0 < len(counts[counts >= 14]) < len(counts)
    assert got["repeat_customer_revenue"].iloc[0] == pytest.approx(repeat["amount"].sum())


@pytest.mark.parametrize(
    ("where", "message"),
    [
        ("{{ Metric('orders') }} > 2", "needs group_by with one entity"),
        ("{{ Metric('orders', group_by=['customer', 'order']) }} > 2", "needs group_by with one entity"),
        ("{{ Metric('ordrs', group_by=['customer']) }} > 2", "'customer__ordrs' is not a dimension"),
    ],
)
def test_wrong_metric_filters_are_named(store: Store, where: str, message: str) -> None:
    with pytest.raises(PantryError, match=message):
        store.query("revenue", where=where)


def test_a_metric_filtered_by_itself_is_an_error_not_a_hang(store: Store, tmp_path: Path) -> None:
    defs = tmp_path / "metrics_defs"
    shutil.copytree(store.defs, defs)
    loop = "metrics:\n  - name: loop\n    type: simple\n    type_params: {measure: revenue}\n    filter: \"{{ Metric('loop', group_by=['customer']) }} > 1\"\n"
    (defs / "loop.yaml").write_text(loop)
    with pytest.raises(PantryError, match=r"metrics form a cycle: loop -> loop"):
        Store(defs=defs, home=tmp_path / "home").validate()
    # and a store that loads the sound part leaves it out, naming why
    with pytest.warns(UserWarning), pytest.raises(PantryError, match=r"left out.*cycle"):
        Store(defs=defs, home=tmp_path / "home").query("loop")


def test_an_offset_of_a_month_by_month_is_the_previous_months_whole_value(store: Store, shop) -> None:
    """As MetricFlow joins an offset at the query's grain when the offset is whole periods of
    it: February's "1 month ago" is all of January (a day-by-day shift loses January 30th and
    31st, which no day of February reaches: jaffle-sl-template's revenue_growth_mom)."""
    orders = shop[1]["orders"]
    month = pd.to_datetime(orders["ordered_at"]).dt.to_period("M").dt.start_time
    totals = orders.groupby(month)["amount"].sum()
    for start in (None, "2024-02-10"):
        got = store.query("revenue_1_month_ago", group_by="metric_time__month", start_time=start)
        have = {pd.Timestamp(r.metric_time__month): r.revenue_1_month_ago for r in got.itertuples()}
        assert have[pd.Timestamp("2024-02-01")] == pytest.approx(totals[pd.Timestamp("2024-01-01")])
        assert have[pd.Timestamp("2024-03-01")] == pytest.approx(totals[pd.Timestamp("2024-02-01")])
    by_week = store.query("revenue_1_month_ago", group_by="metric_time__week")
    mondays = [pd.Timestamp(w) for w in by_week["metric_time__week"]]
    assert all((m - pd.DateOffset(months=1)).weekday() == 0 for m in mondays)  # only weeks a month back lands on
