"""Rich tables of frames and drift verdicts, for the CLI and the demo.

Why a module of their own: the demo prints the same tables as the CLI, and the CLI runs the
demo; with the printers inside ``cli.py`` the two imported each other.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd
from rich.table import Table

if TYPE_CHECKING:
    from pantry.monitor.drift import ViewDrift


def frame_table(frame: pd.DataFrame, title: str | None = None) -> Table:
    table = Table(title=title, show_lines=False)
    for name in frame.columns:
        justify = "right" if pd.api.types.is_numeric_dtype(frame[name]) else "left"
        table.add_column(str(name), justify=justify)
    for row in frame.itertuples(index=False):
        table.add_row(*["" if v is None or (isinstance(v, float) and v != v) or v is pd.NA else cell(v) for v in row])
    return table


def cell(value: object) -> str:
    """A value as a person reads it in a table."""
    if isinstance(value, float):
        # cents stay cents (135,145.27, not 135,145); float noise (…0000002) goes; a ratio
        # below one keeps six significant digits
        if value != value or value in (float("inf"), float("-inf")):
            return str(value)
        return f"{value:,.6g}" if abs(value) < 1 else f"{round(value, 6):,}".removesuffix(".0")
    if isinstance(value, pd.Timestamp):
        return value.date().isoformat() if value == value.normalize() else value.isoformat()
    return str(value)


def drift_table(result: ViewDrift) -> Table:
    """Feature, test, its value (a distance or a p-value, named), threshold and verdict of one
    view partition; under ``auto`` also the p-value of the change and where it is significant."""
    reference = f"{result.reference[0]}..{result.reference[-1]}" if result.reference else "none yet"
    table = Table(title=f"Drift of {result.view} {result.partition} against {reference}")
    for column in ("feature", "test", "value", "limit", "p-value", "verdict"):
        table.add_column(column, justify="right" if column in ("value", "limit", "p-value") else "left")
    colour = {"drifted": "red", "ok": "green", "skipped": "yellow"}
    for f in result.features:
        table.add_row(
            f.feature,
            f"{(f.method or '-').split(' ')[0]} {f.score_name}" if f.method else "-",
            f"{f.score:.4g}" if f.score is not None else "-",
            f"{f.threshold:g}",
            f"{f.p_value:.3g}" if f.p_value is not None else "-",
            f"[{colour[f.verdict]}]{f.verdict}[/]" + (f": {f.skipped}" if f.skipped else ""),
        )
    significant = next((f.threshold_p for f in result.features if f.threshold_p is not None), None)
    if significant is not None:
        table.caption = f"drifted: a distance at its limit or more, and a p-value below {significant:.3g}"
    return table
