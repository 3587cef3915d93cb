"""A single-run backfill of every daily partition of a TPC-H SF1 feature view, through Dagster.

``customer_spend`` over TPC-H orders: 2,406 daily partitions (1992-01-01..1998-08-02),
1.5M orders, 100k customers with orders. Reports the Dagster wall time of one
``dagster.materialize()`` over the whole range, and the part of it that is Pantry's own
work (tiles computed and written, stats of the last stamp), measured in the same run.

Run: ``.venv/bin/python bench/backfill.py [DAGSTER_HOME]`` (default: a temporary
directory on disk, as ``make demo`` uses). ``--postgres`` runs the same backfill a second
time on a Dagster instance in a real PostgreSQL server (deploy/dagster.yaml, a cluster
started for the run), and prints both.
"""

from __future__ import annotations

import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import dagster as dg

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent))

from pantry import Store  # noqa: E402
from pantry.compile.view_plan import plan_view, stamp_of  # noqa: E402
from pantry.features.tiles import materialize  # noqa: E402
from pantry.offline.sources import connect  # noqa: E402
from pantry_dagster.assets.features import feature_key  # noqa: E402
from pantry_dagster.assets.location import build_definitions  # noqa: E402

DEFS = ROOT / "tpch_defs"
START, END = date(1992, 1, 1), date(1998, 8, 2)


def pantry_only() -> float:
    store = Store(defs=DEFS, home=Path(tempfile.mkdtemp()))
    store.home.mkdir(parents=True, exist_ok=True)
    plan = plan_view(store.definitions, store.definitions.views["customer_spend"])
    began = time.perf_counter()
    source = connect(store.definitions, models=plan.models)
    materialize(source, store.offline, plan, START, END)
    store.get_historical_features(
        None,
        [f"customer_spend:{f.feature.name}" for f in plan.features],
        start_time=stamp_of(END),
        end_time=stamp_of(END),
    )
    return time.perf_counter() - began


def through_dagster(home: str) -> float:
    defs = build_definitions(str(DEFS), tempfile.mkdtemp())
    view = defs.resolve_assets_def(feature_key("customer_spend", "spend_90d"))
    with dg.DagsterInstance.from_config(home) as instance:
        began = time.perf_counter()
        result = dg.materialize(
            [view],
            instance=instance,
            tags={
                "dagster/asset_partition_range_start": START.isoformat(),
                "dagster/asset_partition_range_end": END.isoformat(),
            },
        )
        assert result.success
        return time.perf_counter() - began


def postgres_home() -> tuple[object, str]:
    """A DAGSTER_HOME with deploy/dagster.yaml on a PostgreSQL cluster started for this run."""
    import os
    import shutil

    from tests.conftest import PostgresServer  # the test suite's real, non-root cluster

    server = PostgresServer()
    os.environ.update(server.env)
    home = tempfile.mkdtemp()
    shutil.copy(ROOT.parent / "deploy" / "dagster.yaml", Path(home) / "dagster.yaml")
    return server, home


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    home = args[0] if args else tempfile.mkdtemp()
    ours = pantry_only()
    days = (END - START).days + 1
    rows = [(f"SQLite (DAGSTER_HOME={home})", through_dagster(home))]
    if "--postgres" in sys.argv:
        server, pg_home = postgres_home()
        try:
            rows.append(("PostgreSQL 15 (deploy/dagster.yaml, same machine)", through_dagster(pg_home)))
        finally:
            server.stop()  # type: ignore[attr-defined]
    print()
    print(f"single-run backfill of {days} partitions x 2 features; Pantry's own work: {ours:.1f} s")
    print("| instance storage | Pantry's work (s) | Dagster wall time (s) | target |")
    print("|---|---:|---:|---|")
    for name, total in rows:
        print(f"| {name} | {ours:.1f} | {total:.1f} | <= 120 s |")


if __name__ == "__main__":
    main()
