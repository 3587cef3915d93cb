"""The HTTP API's online read: raw HMGET replies assembled into the response's JSON bytes.

Why a second read path: the Python API decodes every stored value (``read.py``) and the
HTTP API then encodes them again; and redis-py's pipeline packs each command argument by
argument. For 10 entities x 25 features that was most of the ~0.66 ms of CPU a request cost.
Every value in Redis is already the JSON text of a scalar (the push writes ``json.dumps``'s
text, or DuckDB's identical text), so the response is those bytes, joined: nothing is
decoded, nothing re-encoded, and the commands are packed once per feature list.

Only a standalone Redis and daily views take this path; a Redis Cluster (keys spread over
nodes) and streaming views (read by script) keep ``read.py``'s.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import redis

from pantry.online.layout import entity_key


def _bulk(value: bytes) -> bytes:
    return b"$%d\r\n%s\r\n" % (len(value), value)


@lru_cache(maxsize=256)
def _fields(fields: tuple[str, ...]) -> tuple[bytes, bytes]:
    """An HMGET's fixed parts for these fields: its header and its field arguments."""
    head = b"*%d\r\n$5\r\nHMGET\r\n" % (len(fields) + 2)
    return head, b"".join(_bulk(f.encode()) for f in fields)


def read_raw(
    client: redis.Redis, requests: Sequence[tuple[str, Sequence[str], Sequence[Any]]]
) -> list[list[list[bytes | None]]]:
    """For each ``(view, fields, keys)``, per key the stored JSON text of each field (None
    where missing): one round trip for all, with the client's connection pool and retry
    policy (a failed attempt drops its connection)."""
    commands = []
    for view, fields, keys in requests:
        head, tail = _fields(tuple(fields))
        commands += [head + _bulk(entity_key(view, key).encode()) + tail for key in keys]
    packed = b"".join(commands)
    pool = client.connection_pool
    connection = pool.get_connection()

    def exchange() -> list[list[list[bytes | None]]]:
        connection.send_packed_command([packed], check_health=False)
        out = []
        for view, fields, keys in requests:
            replies = []
            for key in keys:
                try:
                    replies.append(connection.read_response())
                except redis.ResponseError as err:  # name the command, as redis-py's pipeline does
                    shown = " ".join([entity_key(view, key), *fields[:3]])
                    raise redis.ResponseError(f"HMGET {shown} ... caused error: {err}") from None
            out.append(replies)
        return out

    try:
        return connection.retry.call_with_retry(exchange, lambda _: connection.disconnect())
    except BaseException:
        connection.disconnect()  # unread replies may be waiting: the connection starts afresh
        raise
    finally:
        pool.release(connection)


@lru_cache(maxsize=4096)
def _label(name: str) -> bytes:
    return json.dumps(name).encode() + b":"


def response_json(columns: Sequence[tuple[str, Sequence[Any], bool]]) -> bytes:
    """``{"name": [...], ...}`` from ``(name, values, raw)``: raw values are stored JSON text
    (None where missing), joined as they are; other values are Python (an entity key column),
    encoded here. Lists are joined, not generators: this runs once per column per request."""
    parts = []
    for name, values, raw in columns:
        if raw:
            encoded = b"[" + b",".join([v or b"null" for v in values]) + b"]"  # an empty text is no JSON: null
        else:
            encoded = json.dumps(list(values), separators=(",", ":")).encode()
        parts.append(_label(name) + encoded)
    return b"{" + b",".join(parts) + b"}"


def columns_of(replies: Sequence[Sequence[bytes | None]], width: int) -> list[Sequence[bytes | None]]:
    """Per-key HMGET replies as per-field columns (``width`` of them, also with no keys)."""
    return list(zip(*replies)) if replies else [() for _ in range(width)]
