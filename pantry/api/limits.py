"""Every limit a client can meet, with its setting and default, read in one place.

Why one module: a limit that is not written down is found by an attacker first. Each one
here is named in the error that enforces it and listed in docs/http.md, so an operator
who meets it knows which variable to change. A bad value is refused when the server
starts, not on the first request.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

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


@dataclass(frozen=True)
class Limits:
    query_timeout: float = 30.0  # PANTRY_QUERY_TIMEOUT: seconds from arrival to answer
    max_rows: int = 100_000  # PANTRY_MAX_ROWS: rows a metric query returns
    query_workers: int = 2  # PANTRY_QUERY_WORKERS: metric queries running at once
    query_queue: int = 8  # PANTRY_QUERY_QUEUE: metric queries waiting for a worker; more get 429
    query_memory: str = "2GB"  # PANTRY_QUERY_MEMORY: DuckDB's memory_limit for one query
    max_body_bytes: int = 16 * 1024 * 1024  # PANTRY_MAX_BODY_BYTES: a request's body
    max_push_rows: int = 50_000  # PANTRY_MAX_PUSH_ROWS: rows in one POST /push
    max_entities: int = 10_000  # PANTRY_MAX_ENTITIES: entities in one online read

    @classmethod
    def from_env(cls) -> Limits:
        default = cls()
        memory = os.environ.get("PANTRY_QUERY_MEMORY") or default.query_memory
        return cls(
            query_timeout=env_number("PANTRY_QUERY_TIMEOUT", default.query_timeout),
            max_rows=int(env_number("PANTRY_MAX_ROWS", default.max_rows, int)),
            query_workers=int(env_number("PANTRY_QUERY_WORKERS", default.query_workers, int)),
            query_queue=int(env_number("PANTRY_QUERY_QUEUE", default.query_queue, int)),
            query_memory=memory,
            max_body_bytes=int(env_number("PANTRY_MAX_BODY_BYTES", default.max_body_bytes, int)),
            max_push_rows=int(env_number("PANTRY_MAX_PUSH_ROWS", default.max_push_rows, int)),
            max_entities=int(env_number("PANTRY_MAX_ENTITIES", default.max_entities, int)),
        )
