"""MetricFlow's ``saved_queries:``: loaded, listed in the catalog, run from Python, the CLI and HTTP.

The oracle is the bar's CSV, summed here by hand."""

from __future__ import annotations

import csv
import shutil
from collections import defaultdict
from pathlib import Path

import pandas as pd
import pytest

from pantry import PantryError, Store
from pantry.api.store import BrokenDefinitions
from tests.conftest import Server


def by_hand(defs: Path, skip_item: str = "Pale Ale", only_day: str | None = None) -> dict[str, list[int]]:
    """Day -> [signature revenue, all revenue] from the CSV, leaving out one item."""
    sums: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for row in csv.DictReader((defs / "data" / "bar_transactions.csv").open()):
        if row["item"] == skip_item or (only_day and row["date"] != only_day):
            continue
        value = int(row["price"]) * int(row["quantity"])
        sums[row["date"]][1] += value
        sums[row["date"]][0] += value if row["signature"] == "1" else 0
    return dict(sums)


def test_a_saved_query_runs_as_written(demo_defs: Path, tmp_path: Path) -> None:
    store = Store(defs=demo_defs, home=tmp_path)
    got = store.query(saved_query="signature_share_by_day")
    assert list(got.columns) == ["metric_time__day", "signature_revenue", "bar_revenue"]
    want = by_hand(demo_defs)
    assert {pd.Timestamp(d).date().isoformat(): [int(s), int(b)] for d, s, b in got.itertuples(index=False)} == want
    assert want == {"2022-01-03": [119, 153], "2022-01-04": [81, 129], "2022-01-05": [80, 159]}
    # an extra where narrows it; limit and order given here replace the saved ones
    narrowed = store.query(
        saved_query="signature_share_by_day", where="metric_time__day = '2022-01-04'", order="-bar_revenue"
    )
    assert [int(v) for v in narrowed["bar_revenue"]] == [by_hand(demo_defs, only_day="2022-01-04")["2022-01-04"][1]]
    with pytest.raises(PantryError, match="names its own metrics"):
        store.query("bar_revenue", saved_query="signature_share_by_day")
    with pytest.raises(PantryError, match="did you mean 'signature_share_by_day'"):
        store.query(saved_query="signature_share")
    with pytest.raises(PantryError, match="no metrics given"):
        store.query()


def test_the_catalog_lists_it_and_http_runs_it(demo_defs: Path, tmp_path: Path) -> None:
    store = Store(defs=demo_defs, home=tmp_path)
    [entry] = [e for e in store.catalog("signature_share") if e["kind"] == "saved_query"]
    assert entry["metrics"] == ["signature_revenue", "bar_revenue"]
    assert entry["group_by"] == ["metric_time__day"]
    assert entry["run"] == "pantry query --saved-query signature_share_by_day"
    with Server(store) as http:
        answer = http.get("/metrics/query", params={"saved_query": "signature_share_by_day"})
        assert answer.status_code == 200, answer.text
        rows = answer.json()["rows"]
        assert {r[0][:10]: [r[1], r[2]] for r in rows} == by_hand(demo_defs)
        missing = http.get("/metrics/query", params={"saved_query": "nope"})
        assert missing.status_code == 422 and "'nope' is not a saved query" in missing.json()["detail"]


def test_a_broken_saved_query_is_named_and_left_out(demo_defs: Path, tmp_path: Path) -> None:
    defs = tmp_path / "metrics_defs"
    shutil.copytree(demo_defs, defs, symlinks=True)
    (defs / "more.yaml").write_text(
        "saved_queries:\n"
        "  - name: typo\n"
        "    query_params: {metrics: [bar_revenu], group_by: [\"Dimension('transaction__item')\"]}\n"
        "  - name: bad_group\n"
        "    query_params: {metrics: [bar_revenue], group_by: [\"Dimension('x').__class__\"]}\n"
    )
    store = Store(defs=defs, home=tmp_path / "home")
    with pytest.raises(PantryError) as err:
        store.validate()
    text = str(err.value)  # the shape error comes first: the file does not load as written
    assert "more.yaml: saved query 'bad_group': group_by" in text and "[line 4]" in text
    with pytest.warns(BrokenDefinitions, match="saved query 'bad_group', saved query 'typo'"):
        assert sorted(store.definitions.saved_queries) == ["signature_share_by_day"]
    [typo] = [e for e in store.definitions.broken if e.definition == "saved query 'typo'"]
    assert str(typo).startswith("metrics_defs/more.yaml: saved query 'typo': does not compile")
    assert "bar_revenue" in str(typo)  # the nearest metric, as a hint
    with pytest.raises(PantryError, match="saved query 'typo' is left out because its definition is broken"):
        store.query(saved_query="typo")
    assert len(store.query(saved_query="signature_share_by_day")) == 3
