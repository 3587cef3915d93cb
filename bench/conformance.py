"""MetricFlow's own integration suite, run through Pantry: ``make conformance``.

MetricFlow tests its engine with ``tests_metricflow/integration/test_cases/*.yaml``: each
case is a query (metrics, group-bys, a where, a time range, an order and a limit) on one
test manifest, and a hand-written check query over the fixture tables
(``tests_metricflow/fixtures/source_table_snapshots/``). This script takes a local copy of
the MetricFlow repository (a work tree or the bare git directory that the search tool's
``fetch`` brings), and for each test manifest it:

- writes the fixture tables as Parquet and the manifest as a Pantry definitions folder,
  changing only ``node_relation`` into ``source: data/<alias>.parquet``;
- runs every case through ``Store.query``, and its check query, rendered with DuckDB's
  forms of MetricFlow's helpers, on DuckDB;
- compares the two as MetricFlow does (column names, then rows, sorted unless the case
  checks order; floats to 1e-6 relative).

Nothing of MetricFlow is copied into this repository: everything is read from the copy
named on the command line, at run time.

Run: ``.venv/bin/python bench/conformance.py /path/to/metricflow [--model SCD_MODEL] [-k NAME] [-v]``.
It prints, per model, N of M cases equal, and each difference with its reason.
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import subprocess
import sys
import tempfile
import warnings
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import jinja2
import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MANIFESTS = {
    "SIMPLE_MODEL": "simple_manifest",
    "SIMPLE_MODEL_NON_DS": "non_sm_manifest",
    "EXTENDED_DATE_MODEL": "extended_date_manifest",
    "SCD_MODEL": "scd_manifest",
    "UNPARTITIONED_MULTI_HOP_JOIN_MODEL": "multi_hop_join_manifest",
    "PARTITIONED_MULTI_HOP_JOIN_MODEL": "partitioned_multi_hop_join_manifest",
}
YAMLS = "metricflow_semantics/test_helpers/semantic_manifest_yamls"
SNAPSHOTS = "tests_metricflow/fixtures/source_table_snapshots"
CASES = "tests_metricflow/integration/test_cases"
SCHEMA = "mf"
TYPES = {"TIME": "TIMESTAMP", "STRING": "VARCHAR", "INT": "BIGINT", "FLOAT": "DOUBLE", "BOOLEAN": "BOOLEAN"}


class Repo:
    """Files of a MetricFlow copy: a work tree, or a bare git directory (read with git show)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.bare = not (path / CASES).is_dir()
        if self.bare and not (path / "HEAD").exists():
            raise SystemExit(f"{path} is neither a MetricFlow work tree nor a git directory")

    def files(self, folder: str) -> list[str]:
        if not self.bare:
            return sorted(str(p.relative_to(self.path)) for p in (self.path / folder).rglob("*") if p.is_file())
        out = subprocess.run(
            ["git", f"--git-dir={self.path}", "ls-tree", "-r", "--name-only", "HEAD", folder + "/"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        return sorted(out.split())

    def read(self, name: str) -> str:
        return (self.path / name).read_text() if not self.bare else _bare_read(self, name)


def _bare_read(repo: Repo, name: str) -> str:
    """A file at HEAD; a symlink's blob holds its target's path, which is followed."""
    text = subprocess.run(
        ["git", f"--git-dir={repo.path}", "show", f"HEAD:{name}"], check=True, capture_output=True, text=True
    ).stdout
    if "\n" not in text.strip() and text.strip().endswith(".yaml"):
        parts = list(Path(name).parent.parts)
        for piece in Path(text.strip()).parts:
            if piece == "..":
                parts.pop()
            else:
                parts.append(piece)
        return _bare_read(repo, "/".join(parts))
    return text


# -- fixture tables ------------------------------------------------------------------------
def write_tables(repo: Repo, data: Path) -> list[str]:
    """Every fixture table as ``data/<table>.parquet``, typed as its snapshot says."""
    con = duckdb.connect()
    names = []
    for name in repo.files(SNAPSHOTS):
        if not name.endswith(".yaml"):
            continue
        doc = yaml.safe_load(repo.read(name))["table_snapshot"]
        columns = doc["column_definitions"]
        frame = pd.DataFrame(doc.get("rows") or [], columns=[c["name"] for c in columns], dtype=object)
        con.register("raw", frame)
        casts = ", ".join(f'CAST("{c["name"]}" AS {TYPES[c["type"]]}) AS "{c["name"]}"' for c in columns)
        table = doc["table_name"]
        con.execute(f"COPY (SELECT {casts} FROM raw) TO '{data / table}.parquet' (FORMAT parquet)")
        con.unregister("raw")
        names.append(table)
    con.close()
    return names


def pantry_defs(repo: Repo, manifest: str, root: Path, data: Path) -> Path:
    """The manifest as a definitions folder: ``node_relation`` -> ``source:``, nothing else."""
    defs = root / manifest
    defs.mkdir(parents=True)
    (defs / "data").symlink_to(data)
    docs = []
    for name in repo.files(f"{YAMLS}/{manifest}"):
        if name.endswith(".yaml"):
            docs += [d for d in yaml.safe_load_all(repo.read(name)) if d]
    out = []
    for doc in docs:
        if "semantic_model" in doc:
            relation = doc["semantic_model"].pop("node_relation")
            doc["semantic_model"]["source"] = f"data/{relation['alias']}.parquet"
        if "project_configuration" in doc:
            spines = []
            for spine in doc["project_configuration"].get("time_spines", []):
                relation = spine.pop("node_relation")
                spines.append({"name": relation["alias"], "source": f"data/{relation['alias']}.parquet", **spine})
            doc = {"time_spines": spines}
        out.append(doc)
    (defs / "manifest.yaml").write_text(yaml.safe_dump_all(out, sort_keys=False))
    return defs


# -- check queries: MetricFlow's helpers, as its DuckDB renderer writes them ----------------
class _Names:
    """``TimeGranularity.MONTH`` and ``DatePart.DOW`` in the templates: their lower-case names."""

    def __getattr__(self, name: str) -> str:
        return name.lower()


_PARTS = {"dow": "isodow", "doy": "doy"}
_INTERVAL = {"quarter": ("month", 3), "week": ("day", 7)}


def _interval(count: Any, grain: str) -> str:
    unit, times = _INTERVAL.get(grain, (grain, 1))
    return f"INTERVAL ({count} * {times}) {unit}" if times != 1 else f"INTERVAL ({count}) {unit}"


def _time_constraint(expr: str, start_time: str | None = None, stop_time: str | None = None) -> str:
    parts = []
    if start_time:
        parts.append(f"CAST({expr} AS TIMESTAMP) >= CAST('{start_time}' AS TIMESTAMP)")
    if stop_time:
        stop = dt.datetime.fromisoformat(stop_time)
        stop += dt.timedelta(days=1) if len(stop_time) == 10 else dt.timedelta(seconds=1)
        shown = stop.strftime("%Y-%m-%d") if len(stop_time) == 10 else stop.isoformat(sep=" ")
        parts.append(f"CAST({expr} AS TIMESTAMP) < CAST('{shown}' AS TIMESTAMP)")
    return " AND ".join(parts)


def _percentile(expr: str, percentile: float, use_discrete_percentile: bool, use_approximate_percentile: bool) -> str:
    if use_approximate_percentile:
        return f"approx_quantile({expr}, {percentile})"
    kind = "PERCENTILE_DISC" if use_discrete_percentile else "PERCENTILE_CONT"
    return f"{kind}({percentile}) WITHIN GROUP (ORDER BY ({expr}))"


HELPERS: dict[str, Any] = {
    "source_schema": SCHEMA,
    "TimeGranularity": _Names(),
    "DatePart": _Names(),
    "render_date_trunc": lambda expr, g: f"DATE_TRUNC('{g}', CAST({expr} AS TIMESTAMP))",
    "render_extract": lambda expr, p: f"EXTRACT({_PARTS.get(p, p)} FROM CAST({expr} AS TIMESTAMP))",
    "render_date_sub": lambda alias, column, count, g: f"{alias}.{column} - {_interval(count, g)}",
    "render_date_add": lambda date, count, g: f"{date} + {_interval(count, g)}",
    "render_time_constraint": _time_constraint,
    "render_percentile_expr": _percentile,
    "mf_time_spine_source": f"{SCHEMA}.mf_time_spine",
    "double_data_type_name": "DOUBLE",
    "generate_random_uuid": lambda: "gen_random_uuid()",
    "cast_to_ts": lambda s: f"CAST('{s}' AS TIMESTAMP)",
    "render_dimension_template": lambda name, entity_path=(): (
        f"{{{{ Dimension('{name}', entity_path={list(entity_path)!r}) }}}}"
    ),
    "render_entity_template": lambda name, entity_path=(): (
        f"{{{{ Entity('{name}', entity_path={list(entity_path)!r}) }}}}"
    ),
    "render_metric_template": lambda name, group_by=(): f"{{{{ Metric('{name}', group_by={list(group_by)!r}) }}}}",
    "render_time_dimension_template": lambda name, grain=None, entity_path=(): (
        f"{{{{ TimeDimension('{name}', '{grain}', entity_path={list(entity_path)!r}) }}}}"
        if grain
        else f"{{{{ TimeDimension('{name}', entity_path={list(entity_path)!r}) }}}}"
    ),
}


def render(template: str) -> str:
    return jinja2.Template(template, undefined=jinja2.StrictUndefined).render(**HELPERS)


# -- one case ------------------------------------------------------------------------------
@dataclass
class Verdict:
    name: str
    model: str
    outcome: str  # equal | differs | error | not run
    reason: str = ""


def _group_bys(case: dict) -> list[str] | None:
    names = list(case.get("group_bys") or [])
    for obj in case.get("group_by_objs") or []:
        if obj.get("date_part") and obj.get("grain"):
            return None
        if obj.get("date_part"):
            names.append(f"{obj['name']}__extract_{obj['date_part']}")
        elif obj.get("grain"):
            names.append(f"{obj['name']}__{obj['grain']}")
        else:
            names.append(obj["name"])
    return names


def _cell(value: Any) -> Any:
    """A value as MetricFlow's comparison sees it: times as timestamps, floats rounded."""
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, pd.Timestamp):
        value = value.to_pydatetime()
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=None).isoformat(sep=" ")
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day).isoformat(sep=" ")
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return float(f"{float(value):.9g}")
    return str(value)


def _rows(frame: pd.DataFrame, columns: list[str]) -> list[tuple]:
    return [tuple(_cell(v) for v in row) for row in frame[columns].itertuples(index=False)]


def compare(actual: pd.DataFrame, expected: pd.DataFrame, ordered: bool) -> str | None:
    """None when equal, else what differs."""
    actual = actual.rename(columns=str.lower)
    expected = expected.rename(columns=str.lower)
    if sorted(actual.columns) != sorted(expected.columns):
        return f"columns {sorted(actual.columns)} != expected {sorted(expected.columns)}"
    columns = sorted(expected.columns)
    got, want = _rows(actual, columns), _rows(expected, columns)
    if not ordered:
        key = lambda row: tuple((v is None, str(type(v)), str(v)) for v in row)  # noqa: E731
        got, want = sorted(got, key=key), sorted(want, key=key)
    if len(got) != len(want):
        return f"{len(got)} rows != expected {len(want)}"
    for a, b in zip(got, want):
        if a != b:
            return f"row {a} != expected {b} (columns {columns})"
    return None


def run_case(store: Any, con: duckdb.DuckDBPyConnection, case: dict) -> Verdict:
    from pantry.errors import PantryError

    name, model = case["name"], case["model"]
    group_by = _group_bys(case)
    if group_by is None:
        return Verdict(name, model, "not run", "a group-by with both a grain and a date part")
    start, end = (case.get("time_constraint") or [None, None])[:2]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            actual = store.query(
                case.get("metrics") or [],
                group_by=group_by,
                where=render(case["where_filter"]) if case.get("where_filter") else None,
                start_time=start,
                end_time=end,
                order=case.get("order_bys") or None,
                limit=case.get("limit"),
                saved_query=case.get("saved_query_name"),
                min_max_only=bool(case.get("min_max_only")),
                apply_group_by=bool(case.get("apply_group_by", True)),
            )
    except PantryError as err:
        return Verdict(name, model, "error", str(err).splitlines()[0][:300])
    except Exception as err:  # noqa: BLE001 - every failure is a finding
        return Verdict(name, model, "error", f"{type(err).__name__}: {str(err).splitlines()[0][:300]}")
    try:
        expected = con.execute(render(case["check_query"])).df()
    except duckdb.Error as err:
        return Verdict(name, model, "not run", f"the check query fails on DuckDB: {str(err).splitlines()[0][:200]}")
    if expected.empty and not case.get("allow_empty") and actual.empty:
        return Verdict(name, model, "differs", "both empty, and the case does not allow it")
    difference = compare(actual, expected, bool(case.get("check_order")))
    return Verdict(name, model, "differs" if difference else "equal", difference or "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("repo", type=Path, help="a MetricFlow work tree or git directory")
    parser.add_argument("--model", action="append", help="only these models (e.g. SCD_MODEL)")
    parser.add_argument("-k", help="only cases whose name contains this")
    parser.add_argument("-v", action="store_true", help="print every case, not only the differences")
    args = parser.parse_args()
    from pantry import Store

    repo = Repo(args.repo.resolve())
    root = Path(tempfile.mkdtemp(prefix="pantry-conformance-"))
    data = root / "data"
    data.mkdir()
    tables = write_tables(repo, data)
    con = duckdb.connect()
    con.execute(f"CREATE SCHEMA {SCHEMA}")
    for table in tables:
        con.execute(f"CREATE VIEW {SCHEMA}.{table} AS SELECT * FROM read_parquet('{data / table}.parquet')")
    cases = []
    for name in repo.files(CASES):
        if name.endswith(".yaml"):
            cases += [d["integration_test"] for d in yaml.safe_load_all(repo.read(name)) if d]
    verdicts: list[Verdict] = []
    for model, manifest in MANIFESTS.items():
        if args.model and model not in args.model:
            continue
        chosen = [c for c in cases if c["model"] == model and (not args.k or args.k in c["name"])]
        if not chosen:
            continue
        defs = pantry_defs(repo, manifest, root / "defs", data)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            store = Store(defs=defs, home=root / "home" / manifest)
            _ = store.definitions
        for warning in caught:
            print(f"[{model}] {str(warning.message)[:600]}")
        for case in chosen:
            verdict = run_case(store, con, case)
            verdicts.append(verdict)
            if args.v or verdict.outcome != "equal":
                print(f"  {verdict.outcome:8} {model}:{verdict.name}  {verdict.reason}")
    print()
    print("| model | equal | differs | error | not run | cases |")
    print("|---|---:|---:|---:|---:|---:|")
    for model in MANIFESTS:
        counts = Counter(v.outcome for v in verdicts if v.model == model)
        total = sum(counts.values())
        if total:
            print(
                f"| {model} | {counts['equal']} | {counts['differs']} | {counts['error']} | {counts['not run']} | {total} |"
            )
    counts = Counter(v.outcome for v in verdicts)
    print(
        f"| all | {counts['equal']} | {counts['differs']} | {counts['error']} | {counts['not run']} | {len(verdicts)} |"
    )


if __name__ == "__main__":
    main()
