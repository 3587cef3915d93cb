"""The record of every check's verdict and of every alert sent, in ``PANTRY_HOME/monitor.sqlite``.

Why SQLite beside the offline store and not in it: Dagster runs hold the DuckDB file's
single write lock while they materialize, and a sensor, ``pantry drift`` or the push must
read and write verdicts at the same moment. SQLite takes short writes from many processes.
Why keep alert state here and not in memory: "once per failure, then one recovery" must
survive sensor ticks, reruns and daemon restarts.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS verdicts (
  asset TEXT, partition TEXT, check_name TEXT, passed INTEGER, blocking INTEGER, severity TEXT,
  summary TEXT, details TEXT, recorded_at REAL, PRIMARY KEY (asset, partition, check_name));
CREATE TABLE IF NOT EXISTS alerts (
  asset TEXT, partition TEXT, check_name TEXT, state TEXT, sent_at REAL,
  PRIMARY KEY (asset, partition, check_name));
CREATE TABLE IF NOT EXISTS source_schemas (model TEXT, column_name TEXT, type TEXT, PRIMARY KEY (model, column_name));
"""


@dataclass(frozen=True)
class Verdict:
    """One check on one asset partition: passed or not, why, and the evidence."""

    asset: str  # "features/<view>/<feature>", "metrics/<name>", "sources/<model>", "runs/<job>"
    partition: str  # a day, or "" for a check that is not per partition
    check: str
    passed: bool
    summary: str
    blocking: bool = False
    severity: str = "ERROR"  # ERROR or WARN (a passing check may still warn)
    details: dict[str, Any] = field(default_factory=dict)


def _path(home: Path) -> Path:
    return Path(home) / "monitor.sqlite"


@contextmanager
def _db(home: Path) -> Iterator[sqlite3.Connection]:
    Path(home).mkdir(parents=True, exist_ok=True)
    con = sqlite3.connect(_path(home), timeout=30)
    try:
        con.executescript(SCHEMA)
        yield con
        con.commit()
    finally:
        con.close()


def record(home: Path, verdicts: list[Verdict]) -> None:
    """Keep each verdict; a newer verdict on the same asset, partition and check replaces the older."""
    with _db(home) as con:
        con.executemany(
            "INSERT OR REPLACE INTO verdicts VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    v.asset,
                    v.partition,
                    v.check,
                    int(v.passed),
                    int(v.blocking),
                    v.severity,
                    v.summary,
                    json.dumps(v.details, default=str),
                    time.time(),
                )
                for v in verdicts
            ],
        )


def _verdict(row: tuple) -> Verdict:
    return Verdict(row[0], row[1], row[2], bool(row[3]), row[6], bool(row[4]), row[5], json.loads(row[7] or "{}"))


def verdicts_for(home: Path, asset_prefix: str, partition: str | None = None) -> list[Verdict]:
    if not _path(home).exists():
        return []
    with _db(home) as con:
        sql = "SELECT * FROM verdicts WHERE (asset = ? OR asset LIKE ?)"
        args: list[Any] = [asset_prefix, asset_prefix.rstrip("/") + "/%"]
        if partition is not None:
            sql += " AND partition = ?"
            args.append(partition)
        return [_verdict(r) for r in con.execute(sql + " ORDER BY asset, partition, check_name", args)]


def blocking_failures(home: Path, assets: list[str], partition: str) -> list[Verdict]:
    """Failed blocking checks on these assets for ``partition`` (or for no partition: schemas)."""
    failed = []
    for asset in assets:
        failed += [
            v for v in verdicts_for(home, asset) if v.blocking and not v.passed and v.partition in (partition, "")
        ]
    return failed


def to_alert(home: Path) -> tuple[list[Verdict], list[Verdict]]:
    """(new failures, recoveries): failures not yet alerted, and alerted failures that now pass."""
    if not _path(home).exists():
        return [], []
    with _db(home) as con:
        rows = con.execute(
            "SELECT v.*, a.state FROM verdicts v LEFT JOIN alerts a "
            "ON a.asset = v.asset AND a.partition = v.partition AND a.check_name = v.check_name"
        ).fetchall()
    failures = [_verdict(r[:9]) for r in rows if not r[3] and r[9] != "failing"]
    recoveries = [_verdict(r[:9]) for r in rows if r[3] and r[9] == "failing"]
    return failures, recoveries


def mark_sent(home: Path, verdict: Verdict, state: str) -> None:
    with _db(home) as con:
        con.execute(
            "INSERT OR REPLACE INTO alerts VALUES (?, ?, ?, ?, ?)",
            (verdict.asset, verdict.partition, verdict.check, state, time.time()),
        )


def known_schema(home: Path, model: str) -> dict[str, str]:
    with _db(home) as con:
        rows = con.execute("SELECT column_name, type FROM source_schemas WHERE model = ?", (model,)).fetchall()
    return dict(rows)


def remember_schema(home: Path, model: str, columns: dict[str, str]) -> None:
    with _db(home) as con:
        con.execute("DELETE FROM source_schemas WHERE model = ?", (model,))
        con.executemany("INSERT INTO source_schemas VALUES (?, ?, ?)", [(model, c, t) for c, t in columns.items()])
