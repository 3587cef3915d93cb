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
