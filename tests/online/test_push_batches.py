"""A push spread over many batches and writer threads: every value lands, and a batch
Redis refuses raises instead of vanishing, with no entity left half written."""

from __future__ import annotations

import json

import pytest
import redis

from pantry.online.push import BATCH, CHUNK, push_rows
from tests.conftest import RedisServer

FIELDS = ["a", "b"]
COUNT = 3 * BATCH * CHUNK + 123  # more batches than the writers and the queue hold at once


def rows() -> list[tuple[int, tuple[str, str]]]:
    return [(k, (json.dumps(k * 0.5), json.dumps(f"n{k}"))) for k in range(COUNT)]


def stored(client: redis.Redis, skip: int = -1) -> dict[int, dict[bytes, bytes]]:
    keys = [k for k in range(COUNT) if k != skip]
    pipe = client.pipeline(transaction=False)
    for k in keys:
        pipe.hgetall(f"pantry:v:{k}")
    return dict(zip(keys, pipe.execute()))


def test_every_entity_of_a_many_batch_push_lands(redis_server: RedisServer) -> None:
    client = redis.Redis.from_url(redis_server.url)
    answered: list[int] = []
    assert push_rows(client, "v", 1_700_000_000, None, FIELDS, rows(), encoded=True, progress=answered.append) == COUNT
    batch = BATCH * CHUNK
    assert answered == [batch, 2 * batch, 3 * batch, COUNT]  # entities answered so far, batch by batch
    for k, fields in stored(client).items():
        assert fields == {b"__stamp": b"1700000000", b"a": json.dumps(k * 0.5).encode(), b"b": f'"n{k}"'.encode()}


def test_a_refused_batch_raises_and_a_rerun_completes(redis_server: RedisServer) -> None:
    client = redis.Redis.from_url(redis_server.url)
    stray = 2 * BATCH * CHUNK + 5  # in the third batch
    client.set(f"pantry:v:{stray}", "not a hash")
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        push_rows(client, "v", 1_700_000_000, None, FIELDS, rows(), encoded=True)
    for k, fields in stored(client, skip=stray).items():  # all of an entity or none of it
        assert fields in (
            {},
            {b"__stamp": b"1700000000", b"a": json.dumps(k * 0.5).encode(), b"b": f'"n{k}"'.encode()},
        )
    assert client.get(f"pantry:v:{stray}") == b"not a hash"  # a script never half-writes
    client.delete(f"pantry:v:{stray}")
    assert push_rows(client, "v", 1_700_000_000, None, FIELDS, rows(), encoded=True) == COUNT
    assert all(len(fields) == 3 for fields in stored(client).values())


def test_a_server_that_loses_its_scripts_mid_push_gets_them_again(redis_server: RedisServer) -> None:
    """The push sends its script by hash (EVALSHA, packed by hiredis): a server that forgets
    its scripts in the middle (a restart, SCRIPT FLUSH) answers NOSCRIPT, and the push loads
    the script again and sends the batch again; newer-wins makes the repeat harmless."""
    client = redis.Redis.from_url(redis_server.url)

    def flushing() -> object:
        for i, row in enumerate(rows()):
            if i == BATCH * CHUNK + 10:  # the first batch is sent, the second one is being filled
                client.script_flush()
            yield row

    assert push_rows(client, "v", 1_700_000_000, None, FIELDS, flushing(), encoded=True) == COUNT
    for k, fields in stored(client).items():
        assert fields == {b"__stamp": b"1700000000", b"a": json.dumps(k * 0.5).encode(), b"b": f'"n{k}"'.encode()}
