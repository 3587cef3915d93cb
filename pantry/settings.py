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


def sensor_seconds() -> int:
    """How often the alert and online-push sensors tick (``PANTRY_SENSOR_SECONDS``, 30 s).

    Why a setting: an alert or a push waits up to one tick, and a team may want them sooner
    (or a busy instance, later); the end-to-end test under ``dagster dev`` ticks every few
    seconds instead of waiting out 30-second ticks."""
    return int(env_number("PANTRY_SENSOR_SECONDS", 30, int))
