"""A folder judged sound is not judged again until its YAML or its source files change
(``pantry/verify/memo.py``); every change that could change the verdict is seen."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

from pantry import Store
from tests.conftest import write_defs

YAML = """semantic_models:
  - name: orders
    source: data/orders.csv
    defaults: {agg_time_dimension: ordered_at}
    entities: [{name: order, type: primary, expr: id}]
    dimensions: [{name: ordered_at, type: time, type_params: {time_granularity: day}}]
    measures: [{name: revenue, agg: sum, expr: amount}]
metrics:
  - {name: revenue, type: simple, type_params: {measure: revenue}}
"""


def _folder(tmp_path: Path) -> Path:
    defs = write_defs(tmp_path, {"orders.yaml": YAML})
    (defs / "data").mkdir()
    (defs / "data" / "orders.csv").write_text("id,ordered_at,amount\n1,2024-01-01,10\n2,2024-01-02,5\n")
    return defs


def _catalog(defs: Path, home: Path):  # noqa: ANN202 - a Catalog
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Store(defs=defs, home=home).definitions


def test_an_unchanged_folder_is_judged_once(tmp_path: Path) -> None:
    defs = _folder(tmp_path)
    first = _catalog(defs, tmp_path / "home")
    assert _catalog(defs, tmp_path / "other_home") is first  # the same verdict, not a new one


def test_a_yaml_edit_of_the_same_size_and_time_is_seen(tmp_path: Path) -> None:
    defs = _folder(tmp_path)
    path = defs / "orders.yaml"
    first = _catalog(defs, tmp_path / "home")
    assert first.semantic_models["orders"].measure("revenue").agg == "sum"
    before = path.stat()
    path.write_text(YAML.replace("agg: sum", "agg: max"))  # as long, and the clock put back
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    again = _catalog(defs, tmp_path / "home")
    assert again is not first and again.semantic_models["orders"].measure("revenue").agg == "max"


def test_a_source_rewritten_is_judged_again(tmp_path: Path) -> None:
    defs = _folder(tmp_path)
    first = _catalog(defs, tmp_path / "home")
    assert "revenue" in first.metrics and not first.broken
    (defs / "data" / "orders.csv").write_text("id,ordered_at,price\n1,2024-01-01,10\n")  # 'amount' is gone
    again = _catalog(defs, tmp_path / "home")
    assert "revenue" not in again.metrics
    assert any("amount" in str(e) for e in again.broken), again.broken


def test_a_source_that_appears_brings_its_model_back(tmp_path: Path) -> None:
    defs = _folder(tmp_path)
    source = defs / "data" / "orders.csv"
    text = source.read_text()
    source.unlink()
    missing = _catalog(defs, tmp_path / "home")
    assert "revenue" not in missing.metrics and "does not exist" in str(missing.broken[0])
    assert _catalog(defs, tmp_path / "home") is missing  # still missing: the same verdict
    source.write_text(text)
    assert "revenue" in _catalog(defs, tmp_path / "home").metrics


def test_sources_that_cannot_be_stamped_are_judged_every_time(tmp_path: Path) -> None:
    """A table source (the offline store's, or a warehouse's) has no file to stamp: two loads
    are two verdicts, where a file source's second load is the first's."""
    defs = _folder(tmp_path)
    assert _catalog(defs, tmp_path / "home") is _catalog(defs, tmp_path / "home")
    (defs / "orders.yaml").write_text(YAML.replace("data/orders.csv", "orders_table"))
    first = _catalog(defs, tmp_path / "home")
    assert first.broken and "orders_table" in str(first.broken[0])  # no such table in the store: named
    assert _catalog(defs, tmp_path / "home") is not first
