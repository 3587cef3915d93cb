"""The streaming view's Redis scripts on their own, on a real redis-server: what the tiles
hash holds as events arrive (pruning, the kept read), worked out by hand per event."""

from __future__ import annotations

import redis

from pantry.online.layout import entity_key
from pantry.online.stream_tiles import (
    StreamFeature,
    StreamLayout,
    StreamScripts,
    apply_events,
    decode_rows,
    prune_step,
)
from tests.conftest import RedisServer

# 10-second tiles, an 80-second window: a prune every 10 seconds of the window's start
LAYOUT = StreamLayout(
    view="v",
    tile=10,
    window=80,
    models=("clicks",),
    features=(StreamFeature(name="spend", code="sum", model=1, seconds=80, kind="int", part=2),),
)
BASE = 1_800_000_000  # a multiple of 10: tile starts are BASE + 10k


def _event(i: int, at: int, amount: int) -> list[str]:
    return [str(i), str(at - at % 10), str(at), "1", str(amount)]


def _read(client: redis.Redis, scripts: StreamScripts, stamp: int) -> list:
    reply = client.evalsha(scripts.read_sha, 1, entity_key("v", 7), stamp)
    return decode_rows(LAYOUT, reply)[0]


def _tiles(client: redis.Redis) -> list[int]:
    return sorted(int(f) for f in client.hkeys(entity_key("v", 7)) if f.decode().isdigit())


def test_old_tiles_go_once_the_window_start_moved_a_step_and_reads_stay_exact(redis_server: RedisServer) -> None:
    client = redis.Redis.from_url(redis_server.url)
    scripts = StreamScripts(LAYOUT)
    scripts.load(client)
    assert prune_step(LAYOUT) == 20
    amounts = {}
    for k in range(30):  # one event per tile, tiles BASE .. BASE + 290, amount k + 1
        at = BASE + 10 * k + 3
        apply_events(client, scripts, {"7": [_event(k, at, k + 1)]})
        amounts[BASE + 10 * k] = k + 1
        newest = BASE + 10 * k
        kept = _tiles(client)
        # never older than the window's start minus one step, never a tile missing inside it
        assert kept[0] >= newest - 80 - 20, (k, kept)
        assert [t for t in amounts if t >= newest - 80] == [t for t in kept if t >= newest - 80]
    # at stamp BASE + 300 the window is [BASE + 220, BASE + 300): tiles 22..29 -> 23 + ... + 30
    assert _read(client, scripts, BASE + 300) == [sum(range(23, 31))]
    assert len(client.hkeys(entity_key("v", 7) + ":seen")) <= 11  # ids of tiles newest - 100 .. newest


def test_a_repeated_batch_changes_nothing_and_keeps_the_read(redis_server: RedisServer) -> None:
    """Every event of a call already counted (a redelivered batch): no tile is touched, the
    kept answer stays, and the script does not fail on having nothing to do."""
    client = redis.Redis.from_url(redis_server.url)
    scripts = StreamScripts(LAYOUT)
    scripts.load(client)
    events = {"7": [_event(1, BASE + 5, 4), _event(2, BASE + 15, 6)]}
    apply_events(client, scripts, events)
    assert _read(client, scripts, BASE + 20) == [10]
    memo = client.hget(entity_key("v", 7), "__memo")
    assert memo is not None
    apply_events(client, scripts, events)
    assert client.hget(entity_key("v", 7), "__memo") == memo
    assert _read(client, scripts, BASE + 20) == [10]
    apply_events(client, scripts, {"7": [_event(3, BASE + 7, 100)]})  # late: inside the window at BASE + 20
    assert client.hget(entity_key("v", 7), "__memo") is None
    assert _read(client, scripts, BASE + 20) == [110]


def test_a_kept_read_serves_every_stamp_until_a_tile_enters_or_leaves(redis_server: RedisServer) -> None:
    """Tiles at BASE + 0 and BASE + 30, window 80 s, tile 10 s. Read at BASE + 40: the sum is
    4 + 6, and it stays so until BASE + 81 (the BASE + 0 tile leaves [s - 80, s) at stamp
    BASE + 90, the first stamp past BASE + 80). Reads at 50..80 return the kept answer (its
    stamp stays BASE + 40); at 90 it is combined again (4 left); an event at BASE + 100
    (a newer tile) ends the range at BASE + 110, where it enters."""
    client = redis.Redis.from_url(redis_server.url)
    scripts = StreamScripts(LAYOUT)
    scripts.load(client)
    key = entity_key("v", 7)
    apply_events(client, scripts, {"7": [_event(1, BASE + 5, 4), _event(2, BASE + 35, 6)]})
    assert _read(client, scripts, BASE + 40) == [10]
    assert client.hmget(key, "__at", "__until") == [str(BASE + 40).encode(), str(BASE + 81).encode()]
    for stamp in (BASE + 50, BASE + 60, BASE + 80):
        assert _read(client, scripts, stamp) == [10]
        assert client.hget(key, "__at") == str(BASE + 40).encode()  # served from the kept answer
    assert _read(client, scripts, BASE + 90) == [6]  # the BASE + 0 tile left the window
    assert client.hget(key, "__at") == str(BASE + 90).encode()
    # the BASE + 30 tile leaves at BASE + 111; an event at BASE + 100 enters at BASE + 110
    apply_events(client, scripts, {"7": [_event(3, BASE + 101, 5)]})
    assert client.hmget(key, "__at", "__until") == [str(BASE + 90).encode(), str(BASE + 110).encode()]
    assert _read(client, scripts, BASE + 100) == [6]
    assert client.hget(key, "__at") == str(BASE + 90).encode()
    assert _read(client, scripts, BASE + 110) == [11]
    assert _read(client, scripts, BASE + 120) == [5]
    assert _read(client, scripts, BASE + 200) == [None]  # every tile left: no row in the window


def test_both_keys_outlive_every_window_and_the_expiry_moves_once_a_step(redis_server: RedisServer) -> None:
    """Tiles of 10 s, window 80 s, step 20 s: after the newest tile t both keys live at least
    until t + 10 + 80 (when every window is empty) and at most one step more; an event in a
    tile still covered keeps the expiry where it was, one in a tile past it moves it to that
    tile's."""
    client = redis.Redis.from_url(redis_server.url)
    scripts = StreamScripts(LAYOUT)
    scripts.load(client)
    key, seen = entity_key("v", 7), entity_key("v", 7) + ":seen"
    apply_events(client, scripts, {"7": [_event(1, BASE + 3, 1)]})
    assert client.expiretime(key) == client.expiretime(seen) == BASE + 10 + 80 + 20
    apply_events(client, scripts, {"7": [_event(2, BASE + 7, 1)]})  # same tile: still covered
    assert client.expiretime(key) == client.expiretime(seen) == BASE + 110
    apply_events(client, scripts, {"7": [_event(3, BASE + 14, 1), _event(4, BASE + 25, 1)]})
    # newest tile BASE + 20 needs BASE + 110: still covered
    assert client.expiretime(key) == client.expiretime(seen) == BASE + 110
    apply_events(client, scripts, {"7": [_event(5, BASE + 33, 1)]})
    # newest tile BASE + 30 needs BASE + 120: moved to BASE + 140
    assert client.expiretime(key) == client.expiretime(seen) == BASE + 140
    assert _read(client, scripts, BASE + 40) == [5]
