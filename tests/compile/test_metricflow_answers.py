"""Pantry against MetricFlow's own answers, recorded by ``bench/metricflow_parity.py --record``.

MetricFlow (dbt-metricflow, dbt-duckdb, in bench/.mf-venv) ran each query in ``queries.yaml``
on a dbt project holding the same shop and accounts definitions and data as
``tests/conftest.py``; its CSV output is the oracle here. Re-record after changing the data
or the queries.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from pantry import Store
from tests.conftest import (
    ACCOUNTS_YAML,
    FUNNEL_YAML,
    SHOP_EXTRAS_YAML,
    TIME_SPINE_YAML,
    accounts_frame,
    funnel_frames,
    time_spine_frame,
)

ANSWERS = Path(__file__).parent / "metricflow_answers"
QUERIES = yaml.safe_load((ANSWERS / "queries.yaml").read_text())
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from metricflow_parity import ask, canonical  # noqa: E402


@pytest.fixture(scope="module")
def store(shop: tuple[Path, dict[str, pd.DataFrame]], tmp_path_factory: pytest.TempPathFactory) -> Store:
    """The shop, and beside it the accounts (semi-additive) and the funnel (conversions), as the
    parity project has them."""
    defs = tmp_path_factory.mktemp("mf") / "metrics_defs"
    shutil.copytree(shop[0], defs)
    (defs / "accounts.yaml").write_text(ACCOUNTS_YAML)
    accounts_frame().to_parquet(defs / "data" / "accounts.parquet", index=False)
    (defs / "funnel.yaml").write_text(FUNNEL_YAML)
    (defs / "extras.yaml").write_text(SHOP_EXTRAS_YAML)
    (defs / "spine.yaml").write_text(TIME_SPINE_YAML)
    time_spine_frame().to_parquet(defs / "data" / "time_spine.parquet", index=False)
    for name, frame in funnel_frames().items():
        frame.to_parquet(defs / "data" / f"{name}.parquet", index=False)
    return Store(defs=defs, home=tmp_path_factory.mktemp("home"))


@pytest.mark.parametrize(
    "index", range(len(QUERIES)), ids=[" ".join(f"{k}={v}" for k, v in q.items() if v) for q in QUERIES]
)
def test_same_answer_as_metricflow(store: Store, index: int) -> None:
    query = QUERIES[index]
    expected = pd.read_csv(ANSWERS / f"{index:02d}.csv")
    got = ask(store, query)
    assert len(expected) > 0
    assert canonical(got) == canonical(expected)
