"""The definitions folder is read for Pantry's YAML only, and every metric and feature has
column lineage (issue 13, section 4)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pantry import PantryError
from pantry.spec.load import read_catalog
from pantry_dagster.assets.location import build_definitions
from pantry_dagster.assets.metrics import metric_key


@pytest.fixture
def defs_with_a_dagster_home(demo_defs: Path, tmp_path: Path) -> Path:
    """The demo's folder with what tools leave inside it: Dagster's telemetry and instance,
    a hidden tool folder, and a YAML file of some other tool."""
    defs = tmp_path / "metrics_defs"
    shutil.copytree(demo_defs, defs, symlinks=True)
    home = defs / ".pantry" / "dagster"
    (home / ".telemetry").mkdir(parents=True)
    (home / ".telemetry" / "id.yaml").write_text("instance_id: 2f0c5d1e\n")
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    (defs / ".git").mkdir()
    (defs / ".git" / "config.yml").write_text("core: {bare: false}\n")
    (defs / "pre-commit.yaml").write_text("repos:\n  - repo: local\n    hooks: []\n")
    return defs


def test_hidden_folders_and_foreign_yaml_are_skipped(defs_with_a_dagster_home: Path) -> None:
    catalog = read_catalog(defs_with_a_dagster_home)
    assert set(catalog.metrics) >= {"flights", "bar_revenue"}
    assert "metrics_defs/pre-commit.yaml: no Pantry definitions in it" in catalog.skipped
    assert not any(".pantry" in s or ".git" in s for s in catalog.skipped)


def test_a_typo_in_a_top_level_key_is_still_reported(defs_with_a_dagster_home: Path) -> None:
    (defs_with_a_dagster_home / "more.yaml").write_text("metircs:\n  - name: x\n")
    with pytest.raises(PantryError, match=r"unknown top-level key 'metircs'.*did you mean 'metrics'"):
        read_catalog(defs_with_a_dagster_home)


def test_the_cli_works_with_dagster_home_inside_the_definitions(defs_with_a_dagster_home: Path, tmp_path: Path) -> None:
    env = {
        "PANTRY_DEFS": str(defs_with_a_dagster_home),
        "PANTRY_HOME": str(tmp_path / "home"),
        "DAGSTER_HOME": str(defs_with_a_dagster_home / ".pantry" / "dagster"),
        "PATH": "/usr/bin:/bin",
    }
    pantry = str(Path(sys.executable).parent / "pantry")
    done = subprocess.run([pantry, "validate"], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "id.yaml" not in done.stdout + done.stderr


def test_every_metric_and_feature_has_column_lineage(demo_defs: Path, tmp_path: Path) -> None:
    defs = build_definitions(str(demo_defs), str(tmp_path / "home"))
    graph = defs.resolve_asset_graph()

    def deps(key, column: str) -> list[tuple[str, str]]:
        lineage = graph.get(key).metadata["dagster/column_lineage"].deps_by_column
        return [(d.asset_key.to_user_string(), d.column_name) for d in lineage[column]]

    # counts of rows: the value is bucketed by the flight date, and the cumulative days too
    for name in ("flights_7d", "flights_mtd"):
        assert deps(metric_key(name), name) == [("sources/flights", "flight_date")]
        assert deps(metric_key(name), "metric_time__day") == [("sources/flights", "flight_date")]
    catalog = read_catalog(demo_defs)
    for metric in catalog.public_metrics():
        node = graph.get(metric_key(metric.name))
        lineage = node.metadata["dagster/column_lineage"].deps_by_column
        assert all(lineage[c] for c in lineage), (metric.name, lineage)
    for view in catalog.views.values():
        for feature in view.features:
            node = next(n for n in graph.asset_nodes if n.key.path == ["features", view.name, feature.name])
            lineage = node.metadata["dagster/column_lineage"].deps_by_column
            assert all(lineage[c] for c in lineage), (view.name, feature.name, lineage)


def test_make_ui_builds_the_demo_data_first() -> None:
    """``make ui`` on a fresh clone: the recipe builds the sources before ``dagster dev``."""
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(["make", "-n", "ui"], cwd=root, capture_output=True, text=True, timeout=60)
    lines = done.stdout.splitlines()
    build = next(i for i, line in enumerate(lines) if "build_demo_data('metrics_defs')" in line)
    dagster = next(i for i, line in enumerate(lines) if "dagster dev" in line)
    assert build < dagster
