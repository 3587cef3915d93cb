"""Numbers read from the environment (``PANTRY_*``), refused clearly when they are wrong.

Why one helper: the HTTP server's limits and the ingestion's (field size, event skew,
deliveries) are all positive numbers an operator sets; a typo must give one sentence that
names the variable, not a ValueError traceback on the first push.
"""

from __future__ import annotations

import os

from pantry.errors import PantryError


def env_number(name: str, default: float, kind: type = float) -> float:
    """A positive number from the environment, or ``default`` when it is unset."""
    text = os.environ.get(name)
    if not text:
        return default
    try:
        value = kind(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise PantryError(f"{name}={text!r} is not a positive number", field=name, hint=f"unset it for {default:g}")
    return value


def collect_rows() -> int:
    """The most entity rows a training read on a writing engine brings back into the client
    (``PANTRY_COLLECT_ROWS``, 1,000,000); past it the answer is written on the cluster as
    Parquet and its path returned.

    Why a default and not only ``to=``: a read of 1M rows already costs the client about
    200 MB for a 31 MB answer, and a notebook that asks for ten times that should get a
    path, not an out-of-memory kill. A team with a large driver raises it."""
    return int(env_number("PANTRY_COLLECT_ROWS", 1_000_000, int))


def sensor_seconds() -> int:
    """How often the alert and online-push sensors tick (``PANTRY_SENSOR_SECONDS``, 30 s).

    Why a setting: an alert or a push waits up to one tick, and a team may want them sooner
    (or a busy instance, later); the end-to-end test under ``dagster dev`` ticks every few
    seconds instead of waiting out 30-second ticks."""
    return int(env_number("PANTRY_SENSOR_SECONDS", 30, int))
