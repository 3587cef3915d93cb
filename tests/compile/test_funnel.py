"""The funnel: conversion metrics, partition joins and sub-daily grains, against brute
forces in pandas. MetricFlow itself checks the plain cases in ``make parity``; these are the
cases it fails on with DuckDB (a conversion metric's filter, a count_distinct conversion
measure, an offset in hours without an hourly spine), what is refused, and the errors."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from pantry import PantryError, Store
from tests.conftest import FUNNEL_YAML, funnel_frames, write_defs

EXTRA = """
metrics:
  - name: search_buyers_3d
    type: conversion
    filter: "{{ Dimension('visit__referrer') }} = 'search'"
    type_params:
      conversion_type_params:
        entity: visitor
        calculation: conversions
        base_measure: visits
        conversion_measure: buying_users
        window: 3 days
  - name: same_product_any_time
    type: conversion
    type_params:
      conversion_type_params:
        entity: visitor
        base_measure: {name: visits, filter: "{{ Dimension('visit__referrer') }} != 'ad'"}
        conversion_measure: {name: buys, fill_nulls_with: 0}
        constant_properties:
          - {base_property: product, conversion_property: product}
"""


@pytest.fixture(scope="module")
def funnel(tmp_path_factory: pytest.TempPathFactory) -> tuple[Store, dict[str, pd.DataFrame]]:
    root = tmp_path_factory.mktemp("funnel")
    defs = write_defs(root, {"funnel.yaml": FUNNEL_YAML, "extra.yaml": EXTRA})
    (defs / "data").mkdir()
    frames = funnel_frames()
    for name, frame in frames.items():
        frame.to_parquet(defs / "data" / f"{name}.parquet", index=False)
    return Store(defs=defs, home=root / "home"), frames


def credited(frames: dict[str, pd.DataFrame], window_days: int | None, same_product: bool, keep_visit) -> pd.DataFrame:
    """Each buy with the visit it is credited to, found by looping over the buys."""
    visits = frames["visits"].assign(day=frames["visits"]["ds"].dt.normalize())
    visits = visits[visits.apply(keep_visit, axis=1)]
    rows = []
    for buy in frames["buys"].itertuples():
        day = buy.ds.normalize()
        mine = visits[(visits.user_id == buy.user_id) & (visits.day <= day)]
        if window_days is not None:
            mine = mine[mine.day > day - pd.Timedelta(days=window_days)]
        if same_product:
            mine = mine[mine.product_id == buy.product_id]
        if len(mine):
            visit = mine.sort_values("day").iloc[-1]
            rows.append({"buy_id": buy.buy_id, "user_id": buy.user_id, "day": visit.day, "referrer": visit.referrer})
    return pd.DataFrame(rows)


def test_a_metric_filter_and_a_count_distinct_conversion(funnel) -> None:
    store, frames = funnel
    hits = credited(frames, 3, False, lambda v: v.referrer == "search")
    expected = hits.groupby(hits["day"].dt.to_period("M").dt.start_time)["user_id"].nunique()
    got = store.query("search_buyers_3d", group_by="metric_time__month").set_index("metric_time__month")
    got.index = pd.to_datetime(got.index)
    assert len(expected) == 2 and expected.sum() > 5  # the data has something to find
    assert got["search_buyers_3d"].astype(int).to_dict() == expected.to_dict()


def test_constant_properties_no_window_a_base_filter_and_fill(funnel) -> None:
    store, frames = funnel
    keep = lambda v: v.referrer != "ad"  # noqa: E731
    hits = credited(frames, None, True, keep)
    visits = frames["visits"][frames["visits"].apply(keep, axis=1)]
    opportunities = visits.groupby("referrer").size()
    conversions = hits.groupby("referrer").size().reindex(opportunities.index, fill_value=0)
    expected = (conversions / opportunities).to_dict()
    got = store.query("same_product_any_time", group_by="visit__referrer").set_index("visit__referrer")
    assert set(got.index) == set(expected) == {"search", "direct"}
    for referrer, rate in expected.items():
        assert got.loc[referrer, "same_product_any_time"] == pytest.approx(rate)
    # and the credited pairs differ from "any product": the property is really applied
    assert len(credited(frames, None, False, keep)) > len(hits)


@pytest.mark.parametrize(
    ("params", "field", "message"),
    [
        (
            "base_measure: visits, conversion_measure: buys",
            "entity",
            "needs 'type_params.conversion_type_params.entity'",
        ),
        ("base_measure: visits, conversion_measure: buys, entity: buyer", "entity", "'buyer' is not an entity"),
        ("base_measure: visits, conversion_measure: buys, entity: visitor, window: 7 fortnights", "window", ""),
        ("base_measure: visits, conversion_measure: buys, entity: visitor, calculation: rate", "calculation", "rate"),
        ("base_measure: visits, conversion_measure: bys, entity: visitor", "conversion_measure", "did you mean 'buys'"),
        (
            "base_measure: visits, conversion_measure: buys, entity: visitor, "
            "constant_properties: [{base_property: colour, conversion_property: product}]",
            "constant_properties",
            "'colour' is not an entity or dimension of semantic model 'visits'",
        ),
        (
            "base_measure: visits, conversion_measure: {name: buys, filter: \"{{ Dimension('buy__ds') }} > '2024-01-01'\"}, entity: visitor",
            "conversion_measure.filter",
            "not supported",
        ),
    ],
)
def test_wrong_conversion_params_are_named(tmp_path: Path, params: str, field: str, message: str) -> None:
    bad = f"metrics:\n  - name: broken_rate\n    type: conversion\n    type_params:\n      conversion_type_params: {{{params}}}\n"
    defs = write_defs(tmp_path, {"funnel.yaml": FUNNEL_YAML, "bad.yaml": bad})
    (defs / "data").mkdir()
    for name, frame in funnel_frames().items():
        frame.to_parquet(defs / "data" / f"{name}.parquet", index=False)
    with pytest.raises(PantryError) as err:
        Store(defs=defs, home=tmp_path / "home").validate()
    errors = getattr(err.value, "errors", [err.value])
    assert any(e.field == f"type_params.conversion_type_params.{field}" for e in errors), [e.field for e in errors]
    text = str(err.value)
    assert "metric 'broken_rate'" in text and message in text and "bad.yaml" in text


def test_a_sum_conversion_measure_is_refused_as_metricflow_does(tmp_path: Path) -> None:
    yaml = FUNNEL_YAML.replace(
        "{name: buying_users, agg: count_distinct, expr: user_id}", "{name: buying_users, agg: sum, expr: amount}"
    )
    yaml = yaml.replace(
        "conversion_measure: buys\n        window: 3 days", "conversion_measure: buying_users\n        window: 3 days"
    )
    defs = write_defs(tmp_path, {"funnel.yaml": yaml})
    (defs / "data").mkdir()
    for name, frame in funnel_frames().items():
        frame.to_parquet(defs / "data" / f"{name}.parquet", index=False)
    with pytest.raises(PantryError, match=r"buys_3d.*buying_users' is agg 'sum': a conversion counts events"):
        Store(defs=defs, home=tmp_path / "home").validate()


def test_partition_dimensions_are_joined_on_too(funnel) -> None:
    """visits -> visitor_days: both have the partition dimension partition_day, so a visit
    meets its visitor's row of that day only (without it, every day's row: 60 times over)."""
    store, frames = funnel
    visits, days = frames["visits"], frames["visitor_days"]
    joined = visits.assign(day=visits["ds"].dt.normalize()).merge(
        days.rename(columns={"ds": "day"}), on=["user_id", "day"], how="left"
    )
    expected = joined.groupby("plan").size().to_dict()
    got = store.query("visits", group_by="visitor__plan").set_index("visitor__plan")["visits"].to_dict()
    assert got == expected and sum(got.values()) == len(visits)


def test_an_offset_in_hours_at_hour_grain(funnel) -> None:
    """visits_by_minute_vs_hour_before: this hour's visits minus the hour before's, by hand.
    MetricFlow needs an hourly time spine for it; rows are shifted, so Pantry does not."""
    store, frames = funnel
    hours = frames["visits"]["ds"].dt.floor("h").value_counts()
    before = hours.copy()
    before.index = before.index + pd.Timedelta(hours=1)
    got = store.query("visits_by_minute_vs_hour_before", group_by="metric_time__hour")
    got = got.set_index(pd.to_datetime(got["metric_time__hour"]))["visits_by_minute_vs_hour_before"]
    assert set(got.index) == set(hours.index) | set(before.index)
    both = hours.index.intersection(before.index)
    assert len(both) >= 1  # some visit an hour after another: the subtraction is exercised
    for hour in both:
        assert got[hour] == hours[hour] - before[hour]
    assert got.drop(both).isna().all()


CUMULATIVE_BY_HOUR = """
metrics:
  - name: visits_3h
    type: cumulative
    type_params: {measure: visits_by_minute, cumulative_type_params: {window: 3 hours}}
  - name: visits_running
    type: cumulative
    type_params: {measure: visits_by_minute}
"""


@pytest.mark.parametrize(
    ("metrics", "group_by", "message"),
    [
        ("visits_3h", "metric_time__day", r"metric 'visits_3h'.*below a day \(minute\) needs a time spine at minute"),
        ("visits_running", "metric_time__hour", r"below a day \(minute\) needs a time spine at minute grain"),
        ("", "metric_time__minute", r"metric_time__minute without a metric reads a time spine at minute grain"),
    ],
)
def test_what_needs_a_finer_spine_is_refused_by_name(tmp_path: Path, metrics: str, group_by: str, message: str) -> None:
    defs = write_defs(tmp_path, {"funnel.yaml": FUNNEL_YAML, "more.yaml": CUMULATIVE_BY_HOUR})
    (defs / "data").mkdir()
    for name, frame in funnel_frames().items():
        frame.to_parquet(defs / "data" / f"{name}.parquet", index=False)
    store = Store(defs=defs, home=tmp_path / "home")
    with pytest.raises(PantryError, match=message):
        store.query(metrics, group_by=group_by, start_time="2024-01-01", end_time="2024-01-02")


MINUTE_SPINE = """
time_spines:
  - name: minutes
    source: data/minutes.parquet
    primary_column: {name: ts, time_granularity: minute}
"""


def test_a_running_count_at_hour_grain_over_a_minute_spine(tmp_path: Path) -> None:
    """visits_running by hour: each hour's first minute on the spine (period_agg first), the
    count of visits up to it; from the first visit's minute to the last one's, by hand."""
    defs = write_defs(
        tmp_path, {"funnel.yaml": FUNNEL_YAML, "more.yaml": CUMULATIVE_BY_HOUR, "spine.yaml": MINUTE_SPINE}
    )
    (defs / "data").mkdir()
    frames = funnel_frames()
    for name, frame in frames.items():
        frame.to_parquet(defs / "data" / f"{name}.parquet", index=False)
    minutes = pd.date_range("2023-12-31", "2024-03-02", freq="min")
    pd.DataFrame({"ts": minutes}).to_parquet(defs / "data" / "minutes.parquet", index=False)
    got = Store(defs=defs, home=tmp_path / "home").query("visits_running", group_by="metric_time__hour")
    got = got.set_index(pd.to_datetime(got["metric_time__hour"]))["visits_running"]
    visits = frames["visits"]["ds"].dt.floor("min")
    first, last = visits.min(), visits.max()
    hours = pd.date_range(first.floor("h"), last.floor("h"), freq="h")
    expected = {hour: int((visits <= max(hour, first)).sum()) for hour in hours}
    assert len(got) == len(hours) > 1000
    assert got.astype(int).to_dict() == expected
