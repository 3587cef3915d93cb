"""``pantry demo``: real data in, Dagster materializations, a metrics table out.

Why through the ``dagster`` CLI: the demo must show the real thing (a Dagster instance in
DAGSTER_HOME, runs and logs the UI will show), and ``pantry`` never imports Dagster.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console

from pantry.api.store import Store
from pantry.api.tables import drift_table, frame_table
from pantry.demo.data import build_demo_data
from pantry.errors import PantryError

if TYPE_CHECKING:
    import pandas as pd

# The days the demo materializes. Why the last month of 2013 and not the whole year: a
# run's cost is Dagster's event log, not Pantry's SQL. Each partition of each asset is a
# planned event, a materialization and an evaluation per check, each a SQLite write of 6
# (tmpfs) to 14 ms (disk, varying by the hour on this VM); the year's 14 flight assets were
# about 20,000 events, 250 s of the demo's 300, against 30 s of Pantry's own work (queries,
# checks, drift). A quarter was still 5,500 events, 55 to 78 s. A month shows every check
# and every partition page, with a week of drift reference before its last day; the rest of
# the year is one backfill away (README, "Metrics as Dagster assets"). Queries read the
# sources, so they cover all of 2013.
DEMO_RANGES: dict[str, tuple[date, date]] = {
    "bar": (date(2022, 1, 3), date(2022, 1, 5)),
    "flights": (date(2013, 12, 1), date(2013, 12, 31)),
}


def _dagster_bin() -> str:
    local = Path(sys.executable).with_name("dagster")
    return str(local) if local.exists() else (shutil.which("dagster") or "dagster")


def materialize_range(project_root: Path, keys: list[str], start: date, end: date, console: Console) -> None:
    """One single-run backfill of ``keys`` over ``start..end`` through the dagster CLI."""
    command = [
        _dagster_bin(),
        "asset",
        "materialize",
        "-f",
        str(project_root / "definitions.py"),
        "--select",
        ",".join(keys),
        "--partition-range",
        f"{start.isoformat()}...{end.isoformat()}",
    ]
    console.print(f"[bold]dagster[/bold] materialize {len(keys)} assets for {start}..{end}")
    with console.status(f"materializing {', '.join(k.split('/')[-1] for k in keys)}"):
        done = subprocess.run(command, cwd=project_root, capture_output=True, text=True, env=os.environ.copy())
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
        raise PantryError(
            f"dagster materialize failed:\n{tail}",
            hint="run the command with --debug, or open the run in the UI (make ui)",
        )
    succeeded = sum("STEP_SUCCESS" in line for line in done.stdout.splitlines() + done.stderr.splitlines())
    console.print(f"  [green]done[/green]: {succeeded} steps succeeded")


def observe_sources(project_root: Path, console: Console) -> None:
    """Record each source's data version, so the UI shows when inputs last changed."""
    command = [_dagster_bin(), "job", "execute", "-f", str(project_root / "definitions.py"), "-j", "observe_sources"]
    with console.status("observing sources"):
        done = subprocess.run(command, cwd=project_root, capture_output=True, text=True, env=os.environ.copy())
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
        raise PantryError(f"dagster job execute observe_sources failed:\n{tail}")
    console.print("[bold]dagster[/bold] observed the sources: [green]done[/green]")


def serve_online(store: Store, console: Console) -> dict[str, pd.DataFrame]:
    """Push each online view's newest partition into Redis and read it back.

    What ``online_push_sensor`` does under ``dagster dev``, run here directly so the demo
    ends with the served values beside the training read at the pushed stamp (parity:
    they are equal). Redis is the development server under PANTRY_HOME unless
    PANTRY_REDIS_URL names another. Returns the served frames, by view.
    """
    import pandas as pd

    from pantry.compile.view_plan import stamp_of
    from pantry.online.layout import expires_at

    console.print(f"online store: {store.online_url}")
    shown: dict[str, pd.DataFrame] = {}
    for view in (v for v in store.definitions.views.values() if v.online and v.stream_tile is None):
        day = store.latest_partition(view.name)
        written = store.push_online(view.name, day)
        stamp = stamp_of(day)
        expiry = expires_at(view.ttl, stamp)
        if expiry is not None and expiry < datetime.now(UTC):
            console.print(
                f"pushed {view.name} partition {day}: {written} keys written; its ttl ({view.ttl}) ended on "
                f"{expiry.date()}, so Redis dropped them at once, as the training read at today's date gives nulls"
            )
            continue
        console.print(f"pushed {view.name} partition {day}: {written} keys written")
        refs = [f"{view.name}:{f.name}" for f in view.features]
        training = store.get_historical_features(None, refs, start_time=stamp, end_time=stamp).head(6)
        key = training.columns[0]
        served = pd.DataFrame(store.get_online_features(refs, [{key: k} for k in training[key].tolist()]))
        names = [f.name for f in view.features]
        agree = [
            all((pd.isna(a) and pd.isna(b)) or a == b for a, b in zip(got, want))
            for got, want in zip(served[names].itertuples(index=False), training[names].itertuples(index=False))
        ]
        console.print(
            frame_table(
                served.assign(**{"same as training": ["yes" if ok else "NO" for ok in agree]}),
                title=f"Served online ({view.name}, stamp {stamp:%Y-%m-%d %H:%M} UTC)",
            )
        )
        shown[view.name] = served
    return shown


def serve_stream(store: Store, console: Console, guest: int = 7) -> None:
    """Push three drinks onto a guest's tab and show the served values change at once.

    The drinks are stamped in the last closed minute, so the view (1-minute tiles) serves
    them as soon as the push returns; the training read at the same moment agrees."""
    import time
    from datetime import timedelta

    import pandas as pd

    view = store.definitions.views["guest_live"]
    refs = [f"guest_live:{f.name}" for f in view.features]
    store.sync_stream("guest_live")  # the declared rows, and any pushed while Redis was away
    before = store.get_online_features(refs, [{"guest_id": guest}])
    closed = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(seconds=20)
    first = int(time.time() * 1000)  # a fresh line id per run: each run's drinks are new events
    drinks = pd.DataFrame(
        {
            "line_id": [first, first + 1, first + 2],
            "guest_id": [guest] * 3,
            "rung_at": [closed.replace(tzinfo=None) + timedelta(seconds=s) for s in (0, 5, 10)],
            "item": ["Aperol Spritz", "Shiny Palace", "Watermelicious"],
            "amount": [15.0, 24.0, 28.0],
        }
    )
    started = time.perf_counter()
    result = store.push("bar_tabs", drinks)
    after = store.get_online_features(refs, [{"guest_id": guest}])
    took = time.perf_counter() - started
    at = pd.Timestamp.now(tz="UTC")
    training = store.get_historical_features(pd.DataFrame({"guest_id": [guest], "event_timestamp": [at]}), refs)
    names = [f.name for f in view.features]
    rows = [
        {"when": "before the push", **{n: before[n][0] for n in names}},
        {"when": f"after ({took * 1000:.0f} ms)", **{n: after[n][0] for n in names}},
        {"when": "training read, same moment", **{n: training[n].iloc[0] for n in names}},
    ]
    console.print(
        f"pushed {result.accepted} drinks onto guest {guest}'s tab (durable in the offline store, then served)"
    )
    console.print(frame_table(pd.DataFrame(rows), title=f"Served live (guest_live, guest {guest}, 1-minute tiles)"))


def run_demo(store: Store, console: Console, materialize: bool = True) -> None:

    written = build_demo_data(store.defs)
    console.print(f"demo data in {store.defs / 'data'} ({len(written)} files written)")
    catalog = store.definitions
    console.print(
        f"validated {len(catalog.semantic_models)} semantic models and {len(catalog.public_metrics())} metrics"
    )
    if materialize:
        root = store.defs.parent
        if not (root / "definitions.py").exists():
            raise PantryError(f"no definitions.py next to {store.defs}", hint="run 'pantry demo' from the project root")
        os.environ.setdefault("DAGSTER_HOME", str(store.home / "dagster"))
        Path(os.environ["DAGSTER_HOME"]).mkdir(parents=True, exist_ok=True)
        observe_sources(root, console)
        # the flights' metrics and features share their partitions, so one run does both:
        # one dagster process to start, one plan, one import of Evidently for the drift checks
        groups: dict[str, list[str]] = {}
        for metric in catalog.public_metrics():
            groups.setdefault("bar" if metric.origin.path.stem == "bar" else "flights", []).append(
                f"metrics/{metric.name}"
            )
        groups.setdefault("flights", []).extend(
            f"features/{v.name}/{f.name}" for v in catalog.views.values() if v.stream_tile is None for f in v.features
        )
        for group, keys in groups.items():
            if keys:
                materialize_range(root, keys, *DEMO_RANGES[group], console)
    console.print(
        frame_table(
            store.query(
                ["bar_revenue", "revenue_per_signature_cocktail", "revenue_per_classic_drink"],
                group_by=["metric_time__day"],
            ),
            title="The bar, per day",
        )
    )
    console.print(
        frame_table(
            store.query(
                ["flights", "on_time_ratio", "distinct_planes", "flights_mtd"], group_by=["metric_time__month"]
            ),
            title="New York flights, 2013, per month",
        )
    )
    console.print(
        frame_table(
            store.query(["avg_departure_delay"], group_by=["carrier__name"], order=["-avg_departure_delay"], limit=5),
            title="Worst average departure delay by carrier",
        )
    )
    if "plane_activity" in store.definitions.views:
        import pandas as pd

        entity_df = pd.DataFrame(
            {
                "tailnum": ["N14228", "N24211", "N619AA", "N0000X"],
                "event_timestamp": pd.to_datetime(
                    ["2013-12-29", "2013-12-15 12:00", "2013-12-30", "2013-12-20"], format="ISO8601"
                ),
            }
        )
        frame = store.get_historical_features(
            entity_df, [f"plane_activity:{f.name}" for f in store.definitions.views["plane_activity"].features]
        )
        console.print(frame_table(frame, title="Point-in-time training rows (plane_activity)"))
    if materialize and "plane_activity" in store.definitions.views:
        from pantry.monitor.drift import view_drift

        drift = view_drift(store, "plane_activity", store.latest_partition("plane_activity"))
        console.print(drift_table(drift))
        console.print(
            f"Evidently report: {drift.report}\n(the same verdicts are the 'drift' checks on each feature in the "
            "Dagster UI; 'pantry drift plane_activity --partition D' judges any day)"
        )
    if materialize and any(v.online for v in store.definitions.views.values()):
        serve_online(store, console)
    if materialize and "guest_live" in store.definitions.views:
        serve_stream(store, console)
    console.print("\nOpen the Dagster UI (lineage, backfills, runs): [bold]make ui[/bold], then http://localhost:3000")
    console.print(
        "Query from the shell: [bold].venv/bin/pantry query --metrics flights --group-by metric_time__week --limit 5[/bold]"
    )
