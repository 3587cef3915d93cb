"""Online reads: one pipelined round trip for every entity of every view in a request."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import redis
from redis.cluster import RedisCluster

from pantry.errors import PantryError
from pantry.online.layout import entity_key
from pantry.online.stream_tiles import StreamScripts, decode_rows

PER_SCRIPT = 250  # entities per read-script call: one call per request, yet short enough not to stall Redis


def read_many(
    client: redis.Redis,
    requests: Sequence[tuple[str, Sequence[str], Sequence[Any]]],
    streams: dict[str, tuple[StreamScripts, int]] | None = None,
) -> list[list[list[Any]]]:
    """For each ``(view, fields, keys)``: one list of field values per key (None when missing).

    A streaming view named in ``streams`` (its scripts, the stamp) is read by its script,
    in the same pipeline: a request over daily and streaming views is one round trip."""
    if not streams:
        return _read_hashes(client, requests)
    try:
        replies = _send(client, requests, streams)
    except redis.exceptions.NoScriptError:  # Redis restarted since the scripts were loaded
        for scripts, _ in streams.values():
            scripts.load(client)
        replies = _send(client, requests, streams)
    out: list[list[list[Any]]] = []
    position = 0
    for view, fields, keys in requests:
        if view in streams:
            calls = -(-len(keys) // PER_SCRIPT)
            mine = [row for reply in replies[position : position + calls] for row in reply]
            position += calls
            layout = streams[view][0].layout
            rows = decode_rows(layout, mine)
            where = [[f.name for f in layout.features].index(name) for name in fields]
            out.append([[row[i] for i in where] for row in rows])
        else:
            mine = replies[position : position + len(keys)]
            position += len(keys)
            out.append(_decode_hashes([(view, fields, keys)], mine)[0])
    return out


def _send(
    client: redis.Redis,
    requests: Sequence[tuple[str, Sequence[str], Sequence[Any]]],
    streams: dict[str, tuple[StreamScripts, int]],
) -> list[Any]:
    if isinstance(client, RedisCluster):
        raise PantryError(
            "streaming views are served from a standalone Redis for now, not a Redis Cluster",
            field="view",
            hint="point PANTRY_REDIS_URL at a standalone Redis (with replicas) for streaming views",
        )
    pipe = client.pipeline(transaction=False)
    for view, fields, keys in requests:
        if view in streams:
            scripts, stamp = streams[view]
            names = [entity_key(view, key) for key in keys]
            for start in range(0, len(names), PER_SCRIPT):
                chunk = names[start : start + PER_SCRIPT]
                pipe.evalsha(scripts.read_sha, len(chunk), *chunk, stamp)
        else:
            wanted = list(fields)
            for key in keys:
                pipe.hmget(entity_key(view, key), wanted)
    return pipe.execute()


def _read_hashes(
    client: redis.Redis, requests: Sequence[tuple[str, Sequence[str], Sequence[Any]]]
) -> list[list[list[Any]]]:
    cluster = isinstance(client, RedisCluster)  # a cluster pipeline sends each node its keys
    pipe = client.pipeline(transaction=False)
    for view, fields, keys in requests:
        wanted = list(fields)  # one list per view, shared by its keys' commands
        for key in keys:
            pipe.hmget(entity_key(view, key, cluster), wanted)
    return _decode_hashes(requests, pipe.execute())


def _decode_hashes(
    requests: Sequence[tuple[str, Sequence[str], Sequence[Any]]], replies: Sequence[Any]
) -> list[list[list[Any]]]:
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
