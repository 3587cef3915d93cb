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


def response_json(columns: Sequence[tuple[str, Sequence[Any] | list[list[bytes | None]], int | None]]) -> bytes:
    """``{"name": [...], ...}`` from ``(name, values, field)``: with ``field`` None the values
    are Python (an entity key column, encoded here); else they are the raw replies, and the
    column is each reply's ``field``-th value."""
    parts = []
    for name, values, field in columns:
        if field is None:
            encoded = json.dumps(list(values), separators=(",", ":")).encode()
        else:
            encoded = b"[" + b",".join(reply[field] or b"null" for reply in values) + b"]"  # type: ignore[index]
        parts.append(json.dumps(name).encode() + b":" + encoded)
    return b"{" + b",".join(parts) + b"}"
