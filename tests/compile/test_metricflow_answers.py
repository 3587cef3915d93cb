"""Pantry against MetricFlow's own answers, recorded by ``bench/metricflow_parity.py --record``.

MetricFlow 0.211 (dbt-metricflow 0.13, dbt-duckdb) ran each query in ``queries.yaml`` on a
dbt project holding the same shop definitions and data as ``tests/conftest.py``; its CSV
output is the oracle here. Re-record after changing the shop data or the queries.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from pantry import Store

ANSWERS = Path(__file__).parent / "metricflow_answers"
QUERIES = yaml.safe_load((ANSWERS / "queries.yaml").read_text())
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from metricflow_parity import canonical  # noqa: E402


@pytest.fixture(scope="module")
def store(shop: tuple[Path, dict[str, pd.DataFrame]], tmp_path_factory: pytest.TempPathFactory) -> Store:
    return Store(defs=shop[0], home=tmp_path_factory.mktemp("home"))


@pytest.mark.parametrize(
    "index", range(len(QUERIES)), ids=[" ".join(f"{k}={v}" for k, v in q.items() if v) for q in QUERIES]
)
def test_same_answer_as_metricflow(store: Store, index: int) -> None:
    query = QUERIES[index]
    expected = pd.read_csv(ANSWERS / f"{index:02d}.csv")
    got = store.query(
        query["metrics"],
        group_by=query.get("group_by") or (),
        where=query.get("where"),
        start_time=query.get("start_time"),
        end_time=query.get("end_time"),
    )
    assert len(expected) > 0
    assert canonical(got) == canonical(expected)
