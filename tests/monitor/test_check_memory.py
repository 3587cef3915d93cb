"""The checks of a range cost memory in proportion to what they report, not to the data:
judging 10 partitions of a 16,000-customer view peaks about as high as judging 2.

Measured in a subprocess each (peak RSS, ``ru_maxrss``), on the same view and store. Before
the checks summarized each stamp in SQL, a chunk of 31 partitions read every value of every
stamp into pandas: the seeds' churn lab (2M customers, 25 features) grew past 23 GB."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from datetime import date, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from pantry import Store
from tests.conftest import REPO
from tests.features.test_historical_oracle import materialize_days

pytestmark = pytest.mark.end_to_end  # two processes each importing Evidently: scheduled first (tests/conftest.py)

START = date(2024, 1, 1)
DAYS = 17  # 10 partitions judged and the 7 reference days before them
CUSTOMERS = 16_000
YAML = """
project: {name: wide, partitions: {start: 2024-01-01}}
semantic_models:
  - name: events
    source: data/events.parquet
    defaults: {agg_time_dimension: at}
    entities:
      - {name: event, type: primary, expr: event_id}
      - {name: customer, type: foreign, expr: customer_id}
    dimensions: [{name: at, type: time, type_params: {time_granularity: day}}]
    measures:
      - {name: amount, agg: sum, expr: amount}
      - {name: events, agg: count, expr: event_id}
      - {name: biggest, agg: max, expr: amount}
feature_views:
  - name: wide
    entity: customer
    ttl: 3650 days
    drift: {sample_rows: 2000}
    features:
      - {name: amount_1d, measure: events.amount, window: 1 day}
      - {name: amount_7d, measure: events.amount, window: 7 days}
      - {name: events_7d, measure: events.events, window: 7 days}
      - {name: biggest_7d, measure: events.biggest, window: 7 days}
"""

PROBE = """
import json, resource, sys, tracemalloc
from datetime import date, timedelta
from pantry import Store
from pantry.monitor.checks import view_range_checks
store = Store(defs=sys.argv[1], home=sys.argv[2])
last, n = date.fromisoformat(sys.argv[3]), int(sys.argv[4])
days = [last - timedelta(days=n - 1 - i) for i in range(n)]
store.definitions  # loaded before measuring
import evidently  # noqa: F401 - imported before tracing: tracing its import took most of the test's time
tracemalloc.start()
verdicts, _, figures = view_range_checks(store, "wide", days)
traced = tracemalloc.get_traced_memory()[1]
print(json.dumps({"peak_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, "traced_kb": traced // 1024,
                  "verdicts": len(verdicts), "rows": figures[last]["amount_7d"]["rows"]}))
"""


@pytest.fixture(scope="module")
def wide(tmp_path_factory: pytest.TempPathFactory) -> Store:
    root = tmp_path_factory.mktemp("wide")
    defs = root / "metrics_defs"
    (defs / "data").mkdir(parents=True)
    (defs / "defs.yaml").write_text(textwrap.dedent(YAML))
    rng = np.random.default_rng(7)
    n = CUSTOMERS * DAYS
    days = np.repeat([datetime(2024, 1, 1, 12) + timedelta(days=i) for i in range(DAYS)], CUSTOMERS)
    pd.DataFrame(
        {
            "event_id": np.arange(n),
            "customer_id": np.tile(np.arange(CUSTOMERS), DAYS),
            "at": days,
            "amount": rng.gamma(2.0, 10.0, n).round(2),
        }
    ).to_parquet(defs / "data" / "events.parquet", index=False)
    store = Store(defs=defs, home=root / "home")
    materialize_days(store, [(START, START + timedelta(days=DAYS - 1))])
    return store


def _probe(store: Store, partitions: int) -> dict:
    last = START + timedelta(days=DAYS - 1)
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(store.defs), str(store.home), last.isoformat(), str(partitions)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_peak_memory_does_not_grow_with_the_partitions_judged(wide: Store) -> None:
    few, many = _probe(wide, 2), _probe(wide, 10)
    assert few["rows"] == many["rows"] == CUSTOMERS  # every customer is present at the last stamp
    assert many["verdicts"] > 4 * few["verdicts"]  # 5 times the partitions were judged
    growth_mb = (many["traced_kb"] - few["traced_kb"]) / 1024
    print(
        f"peak Python memory: {few['traced_kb'] / 1024:.0f} MB for 2 partitions, {many['traced_kb'] / 1024:.0f} MB for 10; "
        f"peak RSS {few['peak_kb'] / 1024:.0f} and {many['peak_kb'] / 1024:.0f} MB"
    )
    # 10 x 16,000 entities x 4 features read into pandas at once is over 40 MB (16 partitions
    # measured 70 MB before the checks summarized each stamp in SQL); the summaries of 17
    # stamps (2,000 values each in the sample) are a few MB
    assert growth_mb < 20, f"peak Python memory grew by {growth_mb:.0f} MB from 2 to 10 partitions"
    assert many["peak_kb"] - few["peak_kb"] < 100 * 1024  # and DuckDB's, capped per stamp, with it
