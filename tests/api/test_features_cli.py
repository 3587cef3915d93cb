"""``pantry features history`` against the oracle, through a real process."""

from __future__ import annotations

import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import pandas as pd

from tests.features.oracle import expected
from tests.features.test_historical_oracle import SPECS, TTL, build, generated_rows, materialize_days


def test_history_from_a_csv_of_entities(tmp_path: Path) -> None:
    rows = generated_rows()
    store = build(tmp_path, rows)
    materialize_days(store, [(date(2024, 1, 1), date(2024, 1, 10))])
    entities = tmp_path / "entities.csv"
    pd.DataFrame(
        {
            "customer_id": [1, 2, 5, 9],
            "event_timestamp": [
                "2024-01-04T00:00:00",
                "2024-01-06T12:00:00",
                "2024-01-11T00:00:00",
                "2024-01-05T00:00:00",
            ],
        }
    ).to_csv(entities, index=False)
    out = tmp_path / "train.parquet"
    env = {"PANTRY_DEFS": str(store.defs), "PANTRY_HOME": str(store.home), "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pantry.api.cli",
            "features",
            "history",
            "--entities",
            str(entities),
            "--features",
            "shopper:revenue_7d,shopper:status_last",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    frame = pd.read_parquet(out)
    days = [date(2024, 1, 1) + timedelta(days=i) for i in range(10)]
    for key, at, revenue, status in zip(
        frame["customer_id"], frame["event_timestamp"], frame["revenue_7d"], frame["status_last"]
    ):
        want = expected(rows, days, TTL, SPECS, int(key), pd.Timestamp(at).to_pydatetime())
        assert (pd.isna(revenue) and want["revenue_7d"] is None) or revenue == want["revenue_7d"]
        assert (status is None and want["status_last"] is None) or status == want["status_last"]
    bad = subprocess.run(
        [
            sys.executable,
            "-m",
            "pantry.api.cli",
            "features",
            "history",
            "--entities",
            str(entities),
            "--features",
            "shopper:revenue",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert (
        bad.returncode == 1 and "'shopper:revenue' is not a feature (did you mean 'shopper:revenue_7d'?)" in bad.stderr
    )
