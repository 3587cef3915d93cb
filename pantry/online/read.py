"""Online reads: one pipelined round trip for every entity of every view in a request."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import redis

from pantry.online.layout import decode, entity_key


def read_many(
    client: redis.Redis, requests: Sequence[tuple[str, Sequence[str], Sequence[Any]]]
) -> list[list[list[Any]]]:
    """For each ``(view, fields, keys)``: one list of field values per key (None when missing)."""
    pipe = client.pipeline(transaction=False)
    for view, fields, keys in requests:
        for key in keys:
            pipe.hmget(entity_key(view, key), list(fields))
    replies = iter(pipe.execute())
    out: list[list[list[Any]]] = []
    for _, _fields, keys in requests:
        out.append([[decode(v) for v in next(replies)] for _ in keys])
    return out
