"""One bad definition is not a dead store: the rest answers from Python, the CLI and Dagster,
the broken part is named, and `pantry validate` still fails."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from pantry import PantryError, Store
from pantry.api.store import BrokenDefinitions
from pantry_dagster.assets.location import build_definitions
from tests.conftest import dagster_instance

BAR_METRICS = {"bar_revenue", "signature_revenue", "revenue_per_signature_cocktail", "revenue_per_classic_drink"}


@pytest.fixture
def broken_defs(demo_defs: Path, tmp_path: Path) -> Path:
    """The demo with one typo: the bar's revenue measure does not parse."""
    defs = tmp_path / "metrics_defs"
    shutil.copytree(demo_defs, defs, symlinks=True)
    text = (defs / "bar.yaml").read_text()
    (defs / "bar.yaml").write_text(text.replace("expr: price * quantity,", "expr: price * * quantity,", 1))
    return defs


def test_the_sound_part_answers_and_the_broken_part_is_named(broken_defs: Path, tmp_path: Path) -> None:
    store = Store(defs=broken_defs, home=tmp_path / "home")
    with pytest.warns(
        BrokenDefinitions,
        match=r"in metrics_defs/bar.yaml; left out: measure 'drink_revenue' of semantic model 'bar_transactions'",
    ):
        catalog = store.definitions
    # left out: the measure and every metric built on it; kept: everything else, by hand
    assert BAR_METRICS.isdisjoint(catalog.metrics)
    assert {"signature_drinks_sold", "flights", "flights_7d", "on_time_ratio"} <= set(catalog.metrics)
    assert catalog.semantic_models["bar_transactions"].measure("drinks_sold") is not None
    assert catalog.semantic_models["bar_transactions"].measure("drink_revenue") is None
    assert sorted(catalog.views) == ["carrier_ops", "guest_live", "plane_activity"]
    # a query that does not touch it answers: the signature drinks, counted from the CSV here
    import csv

    rows = list(csv.DictReader((broken_defs / "data" / "bar_transactions.csv").open()))
    by_hand = sum(int(r["quantity"]) for r in rows if r["signature"] == "1")
    sold = store.query("signature_drinks_sold")
    assert int(sold["signature_drinks_sold"].sum()) == by_hand == 11
    # a query that does is told why, with the root cause
    with pytest.raises(PantryError) as err:
        store.query("bar_revenue")
    message = str(err.value)
    assert "metric 'bar_revenue' is left out" in message and "price * * quantity" in message
    assert message.startswith("metrics_defs/bar.yaml") or "bar.yaml" in message


def test_validate_still_fails_and_the_cli_warns_once(broken_defs: Path, tmp_path: Path) -> None:
    env = {"PANTRY_DEFS": str(broken_defs), "PANTRY_HOME": str(tmp_path / "home"), "PATH": "/usr/bin:/bin"}
    run = lambda *args: subprocess.run(  # noqa: E731
        [sys.executable, "-m", "pantry.api.cli", *args], capture_output=True, text=True, env=env, timeout=120
    )
    checked = run("validate")
    assert checked.returncode == 1 and "price * * quantity" in checked.stderr and "[line 19]" in checked.stderr
    answered = run("query", "--metrics", "signature_drinks_sold", "--csv", str(tmp_path / "out.csv"))
    assert answered.returncode == 0, answered.stderr
    assert answered.stderr.count("warning:") == 1 and "left out" in answered.stderr
    assert "Traceback" not in answered.stderr
    refused = run("query", "--metrics", "bar_revenue")
    assert refused.returncode == 1 and "is left out because" in refused.stderr and "Traceback" not in refused.stderr


def test_the_code_location_loads_and_shows_the_broken_definitions(broken_defs: Path, tmp_path: Path) -> None:
    with pytest.warns(BrokenDefinitions):
        defs = build_definitions(str(broken_defs), str(tmp_path / "home"))
    keys = {k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()}
    assert "metrics/flights" in keys and "metrics/signature_drinks_sold" in keys
    assert "metrics/bar_revenue" not in keys
    broken = sorted(k for k in keys if k.startswith("broken/"))
    assert "broken/measure_drink_revenue_of_semantic_model_bar_transactions" in broken
    assert "broken/metric_bar_revenue" in broken and "broken/saved_query_signature_share_by_day" in broken
    assert len(broken) == 6
    node = defs.resolve_assets_def(dg.AssetKey(["broken", "metric_bar_revenue"]))
    assert "measure 'drink_revenue' is not a measure" in (node.descriptions_by_key[node.key] or "")
    with dagster_instance() as instance:
        result = dg.materialize([node], instance=instance, raise_on_error=False)
    assert not result.success


def test_nothing_to_isolate_is_still_an_error(demo_defs: Path, tmp_path: Path) -> None:
    """Two metrics with one name: no sound part can be told apart, so loading fails."""
    defs = tmp_path / "metrics_defs"
    shutil.copytree(demo_defs, defs, symlinks=True)
    (defs / "dup.yaml").write_text(
        "metrics:\n  - {name: bar_revenue, type: simple, type_params: {measure: drinks_sold}}\n"
    )
    with pytest.raises(PantryError, match="bar_revenue"):
        Store(defs=defs, home=tmp_path / "home").definitions  # noqa: B018
