"""Online reads: one pipelined round trip for every entity of every view in a request."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import redis
from redis.cluster import RedisCluster

from pantry.online.layout import entity_key


def read_many(
    client: redis.Redis, requests: Sequence[tuple[str, Sequence[str], Sequence[Any]]]
) -> list[list[list[Any]]]:
    """For each ``(view, fields, keys)``: one list of field values per key (None when missing)."""
    cluster = isinstance(client, RedisCluster)  # a cluster pipeline sends each node its keys
    pipe = client.pipeline(transaction=False)
    for view, fields, keys in requests:
        wanted = list(fields)  # one list per view, shared by its keys' commands
        for key in keys:
            pipe.hmget(entity_key(view, key, cluster), wanted)
    replies = pipe.execute()
    # every stored value is a JSON scalar: decode the whole batch with one json.loads
    flat = [v if v is not None else b"null" for reply in replies for v in reply]
    values = json.loads(b"[" + b",".join(flat) + b"]") if flat else []
    out: list[list[list[Any]]] = []
    position = 0
    for _, fields, keys in requests:
        width = len(fields)
        rows = []
        for _ in keys:
            rows.append(values[position : position + width])
            position += width
        out.append(rows)
    return out
