"""MetricFlow's own test manifest (``simple_manifest``) through ``mf query`` and Pantry.

The yardstick of issue 13: the semantic manifest MetricFlow's integration tests run on
loads into Pantry unchanged but for ``source:``. It is read from the MetricFlow package
installed in ``bench/.mf-venv`` (nothing of it is copied into this repository), and each
``node_relation: {alias: fct_bookings}`` becomes ``source: data/fct_bookings.parquet``.

Its fixture tables are not shipped with the package, so rows are generated here from the
manifest itself: every column an entity, dimension or measure reads, typed by its role
(ids from one pool per entity name, so joins meet; times at their dimension's grain;
``is_*`` as booleans), seeded. The same Parquet files feed a dbt-duckdb project for
MetricFlow and the definitions folder for Pantry. Then every metric is queried by
``metric_time__day`` and every saved query is run, on both sides.

Run: ``.venv/bin/python bench/metricflow_manifest.py`` (``make parity`` runs it after the
shop). It prints what Pantry left out and why, each query's verdict, and N of M identical.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import sqlglot
import yaml
from sqlglot import exp

ROOT = Path(__file__).resolve().parents[1]
MF_BIN = ROOT / "bench" / ".mf-venv" / "bin"
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from metricflow_parity import canonical  # noqa: E402

DAYS = pd.date_range("2019-12-01", "2020-01-31", freq="D")
SUB_DAILY = {"hour": "h", "minute": "min", "second": "s", "millisecond": "ms"}


def manifest_dir() -> Path:
    found = list((ROOT / "bench" / ".mf-venv" / "lib").glob("python*/site-packages/metricflow_semantics"))
    if not found:
        raise SystemExit("MetricFlow is not installed in bench/.mf-venv; see bench/metricflow_parity.py")
    return found[0] / "test_helpers" / "semantic_manifest_yamls" / "simple_manifest"


def documents() -> list[dict]:
    docs = []
    for path in sorted(manifest_dir().rglob("*.yaml")):
        docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


def columns_of(text: object) -> list[str]:
    if text is None or str(text).strip() in ("1", ""):
        return []
    tree = sqlglot.parse_one(str(text), read="duckdb")
    return [c.name for c in tree.find_all(exp.Column)] or ([str(text)] if re.fullmatch(r"\w+", str(text)) else [])


def generate(models: list[dict], rng: np.random.Generator) -> dict[str, pd.DataFrame]:
    """One table per semantic model's alias, with the columns its definitions read."""
    pools: dict[str, int] = {}
    tables: dict[str, dict[str, str]] = {}  # alias -> column -> role
    for model in models:
        roles = tables.setdefault(model["node_relation"]["alias"], {})
        for entity in model.get("entities", []):
            for column in columns_of(entity.get("expr") or entity["name"]):
                roles[column] = f"entity:{entity['name']}:{entity['type']}"
                pools.setdefault(entity["name"], 12)
        for dimension in model.get("dimensions", []):
            grain = (dimension.get("type_params") or {}).get("time_granularity", "day")
            for column in columns_of(dimension.get("expr") or dimension["name"]):
                if dimension["type"] == "time":
                    roles[column] = f"time:{grain}"
                else:
                    roles.setdefault(column, "bool" if column.startswith("is_") else "category")
        for measure in model.get("measures", []):
            for column in columns_of(measure.get("expr") or measure["name"]):
                if not roles.get(column, "").startswith(("entity", "time")):
                    roles[column] = "bool" if column.startswith("is_") else "number"
    frames = {}
    for alias, roles in tables.items():
        primary = [c for c, r in roles.items() if r.endswith(":primary")]
        rows = pools[roles[primary[0]].split(":")[1]] if primary and alias.startswith("dim_") else 240
        data: dict[str, object] = {}
        for column, role in roles.items():
            if role.startswith("entity"):
                _, name, kind = role.split(":")
                if kind == "primary" and alias.startswith("dim_"):
                    data[column] = np.arange(1, rows + 1)
                elif kind == "primary":
                    data[column] = np.arange(1, rows + 1)
                else:
                    data[column] = rng.integers(1, pools[name] + 1, rows)
            elif role.startswith("time"):
                grain = role.split(":")[1]
                days = pd.to_datetime(rng.choice(DAYS, rows))
                if grain in SUB_DAILY:
                    days = days + pd.to_timedelta(rng.integers(0, 86_400_000, rows), unit="ms")
                    days = days.floor(SUB_DAILY[grain])
                elif grain == "month":
                    days = days.to_period("M").to_timestamp()
                data[column] = days
            elif role == "bool":
                data[column] = rng.random(rows) < 0.4
            elif role == "category":
                data[column] = rng.choice(["us", "ca", "mx", "fr"], rows)
            else:
                data[column] = rng.integers(1, 100, rows).astype(float)
        frames[alias] = pd.DataFrame(data)
    return frames


def spine_frames(config: dict) -> dict[str, pd.DataFrame]:
    """The day spine with MetricFlow's test grains (alien_day: 3 days, martian_day: 5), and
    the sub-daily spines its configuration names."""
    days = pd.date_range("2019-01-01", "2020-12-31", freq="D")
    frames = {}
    for spine in config["time_spines"]:
        alias, column = spine["node_relation"]["alias"], spine["primary_column"]["name"]
        grain = spine["primary_column"]["time_granularity"]
        if grain == "day":
            frame = pd.DataFrame({column: days.date})
            for i, custom in enumerate(spine.get("custom_granularities", [])):
                span = 3 + 2 * i
                frame[custom.get("column_name") or custom["name"]] = (
                    days - pd.to_timedelta((days - days[0]).days % span, unit="D")
                ).date
            frames[alias] = frame
        elif grain in ("hour",):
            frames[alias] = pd.DataFrame({column: pd.date_range("2019-12-01", "2020-02-01", freq="h")})
    return frames


def pantry_defs(docs: list[dict], root: Path, spines: dict[str, pd.DataFrame]) -> Path:
    defs = root / "pantry" / "metrics_defs"
    (defs / "data").mkdir(parents=True)
    out = []
    for doc in docs:
        doc = yaml.safe_load(yaml.safe_dump(doc))
        if "semantic_model" in doc:
            relation = doc["semantic_model"].pop("node_relation")
            doc["semantic_model"]["source"] = f"data/{relation['alias']}.parquet"
        if "project_configuration" in doc:
            spines_yaml = []
            for spine in doc["project_configuration"].get("time_spines", []):
                alias = spine["node_relation"]["alias"]
                if alias not in spines:
                    continue
                spines_yaml.append(
                    {
                        "name": alias,
                        "source": f"data/{alias}.parquet",
                        "primary_column": spine["primary_column"],
                        "custom_granularities": spine.get("custom_granularities", []),
                    }
                )
            doc = {"time_spines": spines_yaml}
        out.append(doc)
    (defs / "manifest.yaml").write_text(yaml.safe_dump_all(out, sort_keys=False))
    return defs


def dbt_project(docs: list[dict], root: Path, data: Path, spines: dict[str, pd.DataFrame]) -> Path:
    project = root / "mf_dbt"
    (project / "models").mkdir(parents=True)
    (project / "dbt_project.yml").write_text(
        "name: mfm\nversion: '1.0'\nprofile: mfm\nconfig-version: 2\nmodel-paths: [models]\n"
    )
    (project / "profiles.yml").write_text(
        f"mfm:\n  target: dev\n  outputs:\n    dev:\n      type: duckdb\n      path: {root / 'mf.duckdb'}\n      threads: 1\n"
    )
    for path in data.glob("*.parquet"):
        (project / "models" / f"{path.stem}.sql").write_text(f"select * from read_parquet('{path}')")
    semantic_models, metrics, saved = [], [], []
    spine_models = []
    for doc in docs:
        doc = yaml.safe_load(yaml.safe_dump(doc))
        if "semantic_model" in doc:
            model = doc["semantic_model"]
            model["model"] = f"ref('{model.pop('node_relation')['alias']}')"
            semantic_models.append(model)
        elif "metric" in doc:
            metric = doc["metric"]
            metric.setdefault("label", metric["name"])
            metrics.append(metric)
        elif "saved_query" in doc:
            query = doc["saved_query"]
            query.pop("exports", None)
            saved.append(query)
        elif "project_configuration" in doc:
            for spine in doc["project_configuration"].get("time_spines", []):
                alias = spine["node_relation"]["alias"]
                if alias not in spines:
                    continue
                primary = spine["primary_column"]
                customs = spine.get("custom_granularities", [])
                spine_models.append(
                    {
                        "name": alias,
                        "time_spine": {"standard_granularity_column": primary["name"], "custom_granularities": customs},
                        "columns": [{"name": primary["name"], "granularity": primary["time_granularity"]}]
                        + [{"name": c.get("column_name") or c["name"]} for c in customs],
                    }
                )
    (project / "models" / "spines.yml").write_text(yaml.safe_dump({"models": spine_models}, sort_keys=False))
    (project / "models" / "manifest.yml").write_text(
        yaml.safe_dump(
            {"semantic_models": semantic_models, "metrics": metrics, "saved_queries": saved}, sort_keys=False
        )
    )
    env = {"DBT_PROFILES_DIR": str(project), "PATH": f"{MF_BIN}:/usr/bin:/bin"}
    for command in ("build", "parse"):
        done = subprocess.run(
            [str(MF_BIN / "dbt"), command, "--quiet"], cwd=project, env=env, capture_output=True, text=True
        )
        if done.returncode != 0:
            raise SystemExit(f"dbt {command} failed:\n{done.stdout[-3000:]}{done.stderr[-2000:]}")
    return project


def mf(project: Path, args: list[str], out: Path) -> pd.DataFrame:
    env = {"DBT_PROFILES_DIR": str(project), "PATH": f"{MF_BIN}:/usr/bin:/bin", "HOME": str(project)}
    done = subprocess.run(
        [str(MF_BIN / "mf"), "query", "--csv", str(out), *args], cwd=project, env=env, capture_output=True, text=True
    )
    if "empty result set" in done.stdout + done.stderr:
        return pd.DataFrame()  # MetricFlow writes no CSV for no rows
    if done.returncode != 0 or not out.exists():
        tail = (done.stdout + done.stderr).strip().splitlines()
        raise RuntimeError(
            next((line for line in tail if "ERROR" in line or "Error" in line), tail[-1] if tail else "?")
        )
    return pd.read_csv(out)


def main() -> int:
    from pantry import PantryError, Store

    docs = documents()
    rng = np.random.default_rng(13)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        config = next(d["project_configuration"] for d in docs if "project_configuration" in d)
        spines = spine_frames(config)
        tables = generate([d["semantic_model"] for d in docs if "semantic_model" in d], rng)
        defs = pantry_defs(docs, root, spines)
        for alias, frame in {**tables, **spines}.items():
            frame.to_parquet(defs / "data" / f"{alias}.parquet", index=False)
        project = dbt_project(docs, root, defs / "data", spines)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            store = Store(defs=defs, home=root / "home")
            catalog = store.definitions
        left_out = [str(w.message) for w in caught]
        print(
            "Pantry loaded",
            len(catalog.semantic_models),
            "semantic models,",
            len(catalog.metrics),
            "metrics,",
            len(catalog.saved_queries),
            "saved queries",
        )
        for line in left_out:
            print(textwrap.fill(line, 110, subsequent_indent="    "))
        metrics = [d["metric"]["name"] for d in docs if "metric" in d]
        metrics += [
            m["name"]
            for d in docs
            if "semantic_model" in d
            for m in d["semantic_model"].get("measures", [])
            if m.get("create_metric")
        ]
        runs = [
            (
                f"metric {m}",
                ["--metrics", m, "--group-by", "metric_time__day"],
                {"metrics": m, "group_by": "metric_time__day"},
            )
            for m in metrics
        ]
        # the metrics of a measure timed by the hour, at hour grain too
        hourly = [m for m in metrics if m.startswith(("subdaily_", "archived_users"))]
        runs += [
            (
                f"metric {m} by hour",
                ["--metrics", m, "--group-by", "metric_time__hour"],
                {"metrics": m, "group_by": "metric_time__hour"},
            )
            for m in hourly
        ]
        runs += [
            (
                f"saved query {d['saved_query']['name']}",
                ["--saved-query", d["saved_query"]["name"]],
                {"saved_query": d["saved_query"]["name"]},
            )
            for d in docs
            if "saved_query" in d
        ]
        same = mf_failed = 0
        rows = []
        only = sys.argv[sys.argv.index("--only") + 1].split(",") if "--only" in sys.argv else None
        for i, (label, args, query) in enumerate(runs):
            if only is not None and label.split()[1 if label.startswith("metric ") else 2] not in only:
                continue
            try:
                theirs = mf(project, args, root / f"mf_{i}.csv")
            except RuntimeError as err:
                mf_failed += 1
                rows.append((label, "mf failed", str(err)[:150]))
                continue
            try:
                ours = store.query(
                    query.get("metrics", ""), group_by=query.get("group_by") or (), saved_query=query.get("saved_query")
                )
            except PantryError as err:
                rows.append((label, "pantry refused", str(err).splitlines()[0][:150]))
                continue
            ok = canonical(theirs) == canonical(ours)
            same += ok
            if not ok and only is not None:
                a, b = set(canonical(theirs)), set(canonical(ours))
                print(label, "only in mf:", sorted(a - b)[:6], "\n  only in pantry:", sorted(b - a)[:6])
            rows.append((label, "identical" if ok else "DIFFERENT", f"{len(theirs)} rows mf, {len(ours)} pantry"))
        for label, verdict, note in rows:
            print(f"| {label:<58} | {verdict:<15} | {note}")
        answered = len(rows) - mf_failed
        print(f"\n{same} of {answered} identical to MetricFlow ({mf_failed} more failed in MetricFlow itself)")
        return 0 if same == answered else 1


if __name__ == "__main__":
    sys.exit(main())
