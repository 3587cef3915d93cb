"""A new user's first hour, from a wheel in a fresh virtualenv and no checkout of Pantry:
``pantry init``, validate, ``dagster asset materialize`` from the new folder, a query, the
project's own test, and ``dagster dev`` loading the code location named after the project.

Oracle: pandas over the sample orders the project was created with."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from tests.conftest import REPO, free_port, stop_group

pytestmark = pytest.mark.end_to_end  # a minute or so: scheduled first (tests/conftest.py)

DAY = "2026-11-30"


def _run(args: list[str], cwd: Path, env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess:
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{' '.join(args)}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


@pytest.fixture(scope="module")
def fresh(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """The wheel built from this checkout, installed with its dependencies into a new venv."""
    root = tmp_path_factory.mktemp("wheel")
    dist, source = root / "dist", root / "source"
    # built from a copy: an in-tree build leaves build/ in the checkout, whose stale files
    # the next wheel would carry
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    for package in ("pantry", "pantry_dagster"):
        shutil.copytree(REPO / package, source / package, ignore=shutil.ignore_patterns("__pycache__"))
    uv = shutil.which("uv", path=str(Path(sys.executable).parent))
    if uv:  # 0.9 CPU s where pip's build took 2.4
        _run([uv, "build", "-q", "--wheel", "-o", str(dist), str(source)], root, dict(os.environ))
    else:
        _run(
            [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(dist), str(source)],
            root,
            dict(os.environ),
        )
    (wheel,) = dist.glob("pantry-*.whl")
    venv = root / "venv"
    if uv:  # seconds, from uv's cache; pip takes a minute
        _run([uv, "venv", "-q", "-p", sys.executable, str(venv)], root, dict(os.environ))
        _run(
            [uv, "pip", "install", "-q", "--python", str(venv / "bin" / "python"), str(wheel), "pytest"],
            root,
            dict(os.environ),
        )
    else:
        _run([sys.executable, "-m", "venv", str(venv)], root, dict(os.environ))
        _run([str(venv / "bin" / "pip"), "install", "-q", str(wheel), "pytest"], root, dict(os.environ))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PANTRY_", "DAGSTER_", "PYTHON", "VIRTUAL_ENV"))}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return venv, env


def test_the_wheel_installs_no_top_level_assets_resources_or_sensors(fresh: tuple[Path, dict[str, str]]) -> None:
    venv, env = fresh
    (site,) = venv.glob("lib/python3*/site-packages")
    assert (site / "pantry").is_dir() and (site / "pantry_dagster").is_dir()
    for name in ("assets", "resources", "sensors", "definitions.py"):
        assert not (site / name).exists(), name


def test_a_new_project_runs_under_dagster_from_its_own_folder(
    fresh: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    venv, env = fresh
    bin_dir = venv / "bin"
    created = _run([str(bin_dir / "pantry"), "init", "my-shop"], tmp_path, env)
    project = tmp_path / "my-shop"
    assert "created" in created.stdout and (project / "definitions.py").is_file()
    # the user's own module named like Pantry's old top-level packages: no collision
    (project / "assets.py").write_text("SHOP = 'mine'\n")
    ok = _run([str(bin_dir / "pantry"), "validate"], project, env)
    assert "1 semantic model, 2 metrics, 1 feature view (3 features)" in ok.stdout

    orders = pd.read_csv(project / "metrics_defs" / "data" / "orders.csv", parse_dates=["ordered_at"])
    day = orders[orders["ordered_at"].dt.strftime("%Y-%m-%d") == DAY]
    revenue = round(float(day.loc[day["status"] == "completed", "amount"].sum()), 2)
    assert len(day) > 20 and revenue > 0  # the oracle has something to say

    env_d = {**env, "DAGSTER_HOME": str(tmp_path / "dagster_home")}
    Path(env_d["DAGSTER_HOME"]).mkdir()
    done = _run(
        [str(bin_dir / "dagster"), "asset", "materialize", "-f", "definitions.py", "--select", "*", "--partition", DAY],
        project,
        env_d,
    )
    assert "RUN_SUCCESS" in done.stderr + done.stdout
    # Pantry's own use of Dagster's beta and superseded APIs stays quiet (27 lines before);
    # what Dagster's CLI says about itself (`*`, `asset materialize`) still shows
    warned = [line for line in done.stderr.splitlines() if "Warning:" in line]
    assert len(warned) <= 2, warned
    for ours in ("CodeReferences", "backfill_policy", "observable_source_asset", "owners", "freshness_checks"):
        assert ours not in done.stderr, ours
    con = duckdb.connect(str(project / ".pantry" / "pantry.duckdb"), read_only=True)
    try:
        stored = con.execute(f"select revenue from metrics.revenue where metric_time__day = DATE '{DAY}'").fetchall()
    finally:
        con.close()
    assert stored and abs(stored[0][0] - revenue) < 1e-6

    out = tmp_path / "q.csv"
    _run(
        [str(bin_dir / "pantry"), "query", "--metrics", "revenue,orders", "--group-by", "metric_time__day"]
        + ["--start-time", DAY, "--end-time", DAY, "--csv", str(out)],
        project,
        env,
    )
    answer = pd.read_csv(out)
    assert answer["revenue"].round(2).tolist() == [revenue] and answer["orders"].tolist() == [len(day)]

    # the project's own test passes in the fresh environment
    _run([str(bin_dir / "python"), "-m", "pytest", "-q", "-p", "no:cacheprovider"], project, env)

    # `dagster dev` loads the code location, named after the project
    port = free_port()
    log = (tmp_path / "dev.log").open("w")
    dev = subprocess.Popen(
        [str(bin_dir / "dagster"), "dev", "-p", str(port), "-h", "127.0.0.1"],
        cwd=project,
        env=env_d,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        query = {"query": "{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus } } } }"}
        deadline, entries = time.monotonic() + 120, []
        while time.monotonic() < deadline:
            try:
                request = urllib.request.Request(
                    f"http://127.0.0.1:{port}/graphql",
                    data=json.dumps(query).encode(),
                    headers={"content-type": "application/json"},
                )
                with urllib.request.urlopen(request, timeout=5) as response:
                    entries = json.loads(response.read())["data"]["workspaceOrError"]["locationEntries"]
                if entries and entries[0]["loadStatus"] == "LOADED":
                    break
            except OSError:
                pass
            time.sleep(1)
        assert entries == [{"name": "my_shop", "loadStatus": "LOADED"}], (tmp_path / "dev.log").read_text()[-3000:]
    finally:
        stop_group(dev)
