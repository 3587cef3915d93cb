"""The bar from "Metrics Stores vs Feature Stores", with values worked out by hand.

Signature revenue per day: 01-03: 24*4 + 23*1 = 119 over 5 drinks; 01-04: 28*2 + 25*1 = 81
over 3; 01-05: 26*2 + 28*1 = 80 over 3. Classic: 01-03: 17*2 + 7*3 = 55 over 5; 01-04:
6*3 + 15*2 = 48 over 5; 01-05: 17*3 + 7*4 = 79 over 7.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from pantry import Store
from tests.conftest import cli_run

DAYS = [date(2022, 1, 3), date(2022, 1, 4), date(2022, 1, 5)]
SIGNATURE = [119 / 5, 81 / 3, 80 / 3]
CLASSIC = [55 / 5, 48 / 5, 79 / 7]
REVENUE = [174, 129, 159]


@pytest.fixture(scope="module")
def store(demo_defs: Path, tmp_path_factory: pytest.TempPathFactory) -> Store:
    return Store(defs=demo_defs, home=tmp_path_factory.mktemp("home"))


def test_daily_values_by_hand(store: Store) -> None:
    frame = store.query(
        ["revenue_per_signature_cocktail", "revenue_per_classic_drink", "bar_revenue"], group_by=["metric_time"]
    )
    assert [d.date() for d in pd.to_datetime(frame["metric_time__day"])] == DAYS
    assert list(frame["revenue_per_signature_cocktail"]) == pytest.approx(SIGNATURE)
    assert list(frame["revenue_per_classic_drink"]) == pytest.approx(CLASSIC)
    assert list(frame["bar_revenue"]) == REVENUE


def test_ratio_over_the_whole_period_is_a_ratio_of_sums(store: Store) -> None:
    frame = store.query(["revenue_per_signature_cocktail", "revenue_per_classic_drink"], group_by=["metric_time__week"])
    # 2022-01-03 is a Monday: one week; 280 / 11 and 182 / 17, not the mean of the days
    assert list(frame["revenue_per_signature_cocktail"]) == pytest.approx([280 / 11])
    assert list(frame["revenue_per_classic_drink"]) == pytest.approx([182 / 17])


def _pantry(demo_defs: Path, *args: str, home: Path) -> subprocess.CompletedProcess[str]:
    """``pantry <args>`` in a process of its own, as a user runs it."""
    env = {"PANTRY_DEFS": str(demo_defs), "PANTRY_HOME": str(home), "PATH": "/usr/bin:/bin", "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "pantry.api.cli", *args], capture_output=True, text=True, env=env, timeout=120
    )


@pytest.fixture
def pantry_here(
    demo_defs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> Callable[..., subprocess.CompletedProcess[str]]:
    """``pantry <args>`` through the CLI's ``main`` in this process (``tests.conftest.cli_run``)."""

    def run(*args: str, columns: int = 200) -> subprocess.CompletedProcess[str]:
        env = {"PANTRY_DEFS": str(demo_defs), "PANTRY_HOME": str(tmp_path / "home"), "COLUMNS": str(columns)}
        return cli_run(monkeypatch, capsys, list(args), env)

    return run


def test_cli_query_table_csv_and_explain(
    pantry_here: Callable[..., subprocess.CompletedProcess[str]], tmp_path: Path
) -> None:
    shown = pantry_here(
        "query",
        "--metrics",
        "revenue_per_classic_drink",
        "--group-by",
        "metric_time__day",
        "--order",
        "-revenue_per_classic_drink",
        "--limit",
        "2",
    )
    assert shown.returncode == 0, shown.stderr
    assert "2022-01-05" in shown.stdout and "11.2857" in shown.stdout and "2022-01-04" not in shown.stdout
    out = tmp_path / "out.csv"
    written = pantry_here("query", "--metrics", "bar_revenue", "--group-by", "metric_time", "--csv", str(out))
    assert written.returncode == 0, written.stderr
    assert pd.read_csv(out)["bar_revenue"].tolist() == REVENUE
    sql = pantry_here(
        "query",
        "--metrics",
        "bar_revenue",
        "--group-by",
        "metric_time__week",
        "--explain",
        "--dialect",
        "bigquery",
    )
    assert "WEEK(MONDAY)" in sql.stdout


def test_cli_error_is_a_sentence_not_a_traceback(demo_defs: Path, tmp_path: Path) -> None:
    done = _pantry(demo_defs, "query", "--metrics", "bar_revenu", home=tmp_path)
    assert done.returncode == 1
    assert "'bar_revenu' is not a metric (did you mean 'bar_revenue'?)" in done.stderr
    assert "Traceback" not in done.stderr


def test_cli_validate(pantry_here: Callable[..., subprocess.CompletedProcess[str]]) -> None:
    done = pantry_here("validate")
    assert done.returncode == 0, done.stderr
    assert "6 semantic models, 12 metrics" in done.stdout


def test_catalog_search_matches_names_descriptions_and_tags(store: Store) -> None:
    names = lambda search: sorted(e["name"] for e in store.catalog(search))  # noqa: E731
    assert names("classic") == ["revenue_per_classic_drink"]
    assert names("month-to-date") == ["flights_mtd"]
    assert names("gold") == [
        "bar_revenue",
        "flights",
        "on_time_ratio",
        "revenue_per_classic_drink",
        "revenue_per_signature_cocktail",
    ]
    entry = store.catalog("revenue_per_classic_drink")[0]
    assert entry["owner"] == "bar" and entry["type"] == "ratio"
    assert entry["source_columns"] == ["bar_transactions.date", "bar_transactions.price", "bar_transactions.quantity"]
    assert entry["partitions"]["start"] == "2022-01-03"
    assert entry["last_materialized_at"] is None


def test_catalog_fits_a_narrow_terminal_and_json_for_scripts(
    pantry_here: Callable[..., subprocess.CompletedProcess[str]],
) -> None:
    import json

    def run(*args: str, columns: int) -> str:
        done = pantry_here("catalog", *args, columns=columns)
        assert done.returncode == 0, done.stderr
        return done.stdout

    narrow = run("revenue", columns=80)
    header = next(line for line in narrow.splitlines() if "name" in line and "owner" in line)
    assert [c.strip() for c in header.strip("┃│ ").split("┃")] == ["name", "type", "owner", "description"]
    assert max(len(line) for line in narrow.splitlines()) <= 80
    assert "bar_revenue" in narrow  # a name is never broken into pieces at 80 columns
    wide = run("revenue", columns=200)
    assert "partitions" in wide and "version" in wide and "2022-01-03..2022-01-05" in wide
    entries = json.loads(run("revenue", "--json", columns=80))
    assert {e["name"] for e in entries} >= {"bar_revenue", "signature_revenue"}
    assert all(e["partitions"]["end"] == "2022-01-05" for e in entries if e["name"].endswith("revenue"))
