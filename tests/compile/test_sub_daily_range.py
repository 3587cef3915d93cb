"""A time range with a time of day, below a day, as MetricFlow adjusts it (its
test_subdaily_time_constraint cases): from the start of the start's period to the end of the
end's, at the query's grain, over the user's sub-daily spine; and metric_time__hour without
a metric reads that spine. Oracle: pandas."""

from __future__ import annotations

import pandas as pd
import pytest

from pantry import Store
from tests.conftest import write_defs

YAML = """
semantic_models:
  - name: logins
    source: data/logins.csv
    defaults: {agg_time_dimension: at}
    entities: [{name: login, type: primary, expr: login_id}]
    dimensions: [{name: at, type: time, type_params: {time_granularity: second}}]
    measures: [{name: logins, agg: sum, expr: "1"}]
metrics:
  - name: logins_on_spine
    type: simple
    type_params: {measure: {name: logins, join_to_timespine: true}}
time_spines:
  - name: hours
    source: data/hours.csv
    primary_column: {name: ts, time_granularity: hour}
"""

AT = pd.to_datetime(
    ["2024-01-01 01:59:59", "2024-01-01 02:10:00", "2024-01-01 02:50:00", "2024-01-01 05:30:00", "2024-01-01 06:00:00"]
)


@pytest.fixture
def store(tmp_path) -> Store:
    defs = write_defs(tmp_path, {"logins.yaml": YAML})
    (defs / "data").mkdir()
    pd.DataFrame({"login_id": range(len(AT)), "at": AT}).to_csv(defs / "data" / "logins.csv", index=False)
    hours = pd.date_range("2024-01-01", "2024-01-02", freq="h", inclusive="left")
    pd.DataFrame({"ts": hours}).to_csv(defs / "data" / "hours.csv", index=False)
    return Store(defs=defs, home=tmp_path / "home")


def test_a_range_with_times_is_adjusted_to_the_hour(store: Store) -> None:
    got = store.query(
        ["logins_on_spine"],
        group_by=["metric_time__hour"],
        start_time="2024-01-01 02:00:25",
        end_time="2024-01-01 05:00:53",
    )
    hours = pd.date_range("2024-01-01 02:00", "2024-01-01 05:00", freq="h")
    brute = {h: int(((AT >= h) & (AT < h + pd.Timedelta(hours=1))).sum()) or None for h in hours}
    have = {
        pd.Timestamp(r.metric_time__hour): (None if pd.isna(r.logins_on_spine) else int(r.logins_on_spine))
        for r in got.itertuples()
    }
    assert have == brute == {hours[0]: 2, hours[1]: None, hours[2]: None, hours[3]: 1}


def test_metric_time_by_the_hour_without_a_metric_reads_the_users_spine(store: Store) -> None:
    got = store.query(group_by=["metric_time__hour"], start_time="2024-01-01 22:15:00", end_time="2024-01-01 23:59:59")
    assert [pd.Timestamp(v).hour for v in got["metric_time__hour"]] == [22, 23]
    whole = store.query(group_by=["metric_time__hour"])
    assert len(whole) == 24
