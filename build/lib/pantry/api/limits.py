"""Every limit a client can meet, with its setting and default, read in one place.

Why one module: a limit that is not written down is found by an attacker first. Each one
here is named in the error that enforces it and listed in docs/http.md, so an operator
who meets it knows which variable to change. A bad value is refused when the server
starts, not on the first request.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from pantry.errors import PantryError
from pantry.settings import env_number

_UNITS = {"": 1, "B": 1, "KB": 1000, "MB": 1000**2, "GB": 1000**3, "TB": 1000**4}
_UNITS |= {"KIB": 1024, "MIB": 1024**2, "GIB": 1024**3, "TIB": 1024**4}


def memory_bytes(text: str, name: str = "PANTRY_QUERY_MEMORY") -> int:
    """``2GB``, ``512MiB``, ``1.5 GB`` -> bytes, as DuckDB reads its ``memory_limit``."""
    found = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*", text)
    unit = found.group(2).upper() if found else ""
    if not found or unit not in _UNITS or float(found.group(1)) <= 0:
        raise PantryError(f"{name}={text!r} is not an amount of memory", field=name, hint="write it as 2GB or 512MB")
    return int(float(found.group(1)) * _UNITS[unit])


def worker_data_cap(memory_limit: str) -> int:
    """The worker process's RLIMIT_DATA: what DuckDB's ``memory_limit`` does not track (a
    string function's results) cannot grow past it either; an allocation beyond fails as
    DuckDB's out-of-memory error, and the worker lives on. Twice the query's limit, plus a
    gigabyte for Python, the libraries and the answer being encoded."""
    return 2 * memory_bytes(memory_limit) + 1024**3


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
        memory_bytes(memory)  # refused at start, not on the first query
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
