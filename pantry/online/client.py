"""A Redis connection with bounded retries and a clear error, never a silent null.

Why wrap redis-py: an unreachable Redis must fail in seconds with a sentence that names
the URL, the way every other Pantry error does, whether the caller is the CLI, the HTTP
server or a Dagster run.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import redis
from redis.backoff import ExponentialBackoff
from redis.cluster import RedisCluster
from redis.retry import Retry

from pantry.errors import PantryError
from pantry.online.layout import PREFIX, entity_key

ATTEMPTS = 3
T = TypeVar("T")


def connect(url: str, timeout: float = 2.0) -> redis.Redis | RedisCluster:
    """``timeout`` bounds one reply: 2 s suits a read; a bulk push passes more, since one
    chunk's Lua script may legitimately run for seconds on a loaded machine.

    A URL of any node of a Redis Cluster gives a cluster client, which routes each key to
    its node by slot: the node is asked ``INFO cluster`` once, when the client is made."""
    options = dict(
        socket_timeout=timeout,
        socket_connect_timeout=2.0,
        retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), ATTEMPTS - 1),
        retry_on_error=[redis.ConnectionError, redis.TimeoutError],
    )
    single = redis.Redis.from_url(url, **options)
    try:
        enabled = single.info("cluster").get("cluster_enabled") == 1
    except (redis.ConnectionError, redis.TimeoutError):
        return single  # unreachable now: the first real call says so, with guarded()'s message
    except redis.ResponseError:
        enabled = False  # INFO refused (an ACL): a standalone server is the safe reading
    if not enabled:
        return single
    single.close()
    return RedisCluster.from_url(
        url,
        socket_timeout=timeout,
        socket_connect_timeout=2.0,
        retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), ATTEMPTS - 1),
    )


def is_cluster(client: object) -> bool:
    return isinstance(client, RedisCluster)


def send_packed(client: redis.Redis, commands: list[tuple[Any, ...]] | list[bytes]) -> list[Any]:
    """A pipeline of ``commands`` on one connection of ``client``'s pool, each packed by
    hiredis directly (every argument here is text or a number), or packed already.

    Why not redis-py's pipeline: it inspects each argument in Python first (9,000 of them a
    thousand stream events, a fifth of applying them; 26,000 a chunk of a push of 25
    features). An error reply is raised once every reply is read; a connection whose
    replies could not all be read is dropped, never reused half-read."""
    import hiredis

    connection = client.connection_pool.get_connection()
    read = False
    try:
        packed = [c if isinstance(c, bytes) else hiredis.pack_command(c) for c in commands]
        connection.send_packed_command([b"".join(packed)])
        replies = []
        for _ in commands:
            try:
                replies.append(connection.read_response())
            except redis.exceptions.ResponseError as err:
                replies.append(err)
        read = True
    finally:
        if not read:
            connection.disconnect()
        client.connection_pool.release(connection)
    for reply in replies:
        if isinstance(reply, redis.exceptions.ResponseError):
            raise reply
    return replies


def send_scripts(
    client: redis.Redis, calls: list[tuple[Any, ...]] | list[bytes], load: Callable[[], object]
) -> list[Any]:
    """``send_packed`` of EVALSHA calls; a server that lost its scripts (a restart, SCRIPT
    FLUSH) answers NOSCRIPT, gets them again (``load``) and the calls once more. Safe for
    every Pantry script: each counts an event once and lets the newer value win."""
    try:
        return send_packed(client, calls)
    except redis.exceptions.NoScriptError:
        load()
        return send_packed(client, calls)


class RedisUnavailable(PantryError):
    """Redis could not be reached after bounded retries."""


class RedisRefused(PantryError):
    """Redis answered with an error: in practice, a key under ``pantry:`` that is not a
    hash Pantry wrote (WRONGTYPE)."""


def guarded(url: str, action: Callable[[], T], doing: str = "the call", view: str | None = None) -> T:
    """Run ``action`` against Redis; every Redis failure becomes a PantryError that says
    what failed and how to fix it, whether the caller is a read, a push or the CLI."""
    try:
        return action()
    except (redis.ConnectionError, redis.TimeoutError) as err:
        raise RedisUnavailable(
            f"Redis at {url} is unreachable after {ATTEMPTS} attempts: {err}",
            hint="start redis-server or fix PANTRY_REDIS_URL",
        ) from None
    except (redis.exceptions.ClusterError, redis.exceptions.RedisClusterException) as err:
        raise RedisUnavailable(
            f"the Redis Cluster at {url} cannot serve {doing}: {err}",
            hint="check the nodes with 'redis-cli --cluster check <node>'; every slot needs a live node",
        ) from None
    except redis.ResponseError as err:
        raise RedisRefused(f"Redis refused {doing}: {err}", field="view", hint=_refusal_hint(err, view)) from None


def _refusal_hint(err: redis.ResponseError, view: str | None) -> str:
    """What to do about an error reply, by its real cause."""
    text = str(err)
    cluster = ("CROSSSLOT", "hash to the same slot", "MOVED ", "ASK ", "CLUSTERDOWN")
    if any(word in text for word in cluster):
        return (
            "the Redis Cluster is not in a steady state (a slot moving, or nodes down): check "
            "'redis-cli --cluster check <node>' and retry; Pantry routes every key by its slot"
        )
    if "WRONGTYPE" in text:
        pattern = entity_key(view, "*") if view is not None else f"{PREFIX}:*"
        return (
            f"a key under '{pattern[:-1]}' that Pantry did not write as a hash is in the way: "
            f"find it with redis-cli --scan --pattern '{pattern}' and TYPE, delete it, then try again"
        )
    return "Redis's own message above says why; check the server's configuration (maxmemory, ACLs, scripts)"
