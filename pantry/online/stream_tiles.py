"""A streaming view in Redis: per-entity tiles, combined at read time by a script.

The choice, and why. A streaming view serves at wall-clock ``t`` the value at stamp
``s = floor(t, tile)``: aggregates over ``[s - window, s)``. The two ways to keep that in
Redis are running aggregates updated on every event, or per-entity tiles combined when
read. Running aggregates are one HMGET to read, but a window must also *shrink* when no
event comes: an entity whose last purchase left the 5-minute window must read 0 (or
null) at once, with no timer running anywhere. Only the tiles know when a value leaves
the window. So each entity keeps one hash of tiles, and a read combines the tiles of
``[s - W, s)``. The combining runs inside Redis, in a script, pipelined with the request's other
reads: a read is still one round trip, and the reply is the few finished values rather than every
tile (the raw alternative, HGETALL of the same hash, ships all of them to the client).

Layout, per view and entity (``entity_key``, so a Redis Cluster keeps both in one slot):

- ``pantry:<view>:<key>``: a hash, one field per tile start (epoch seconds) holding the
  tile's partial aggregates packed with Lua's ``struct`` (``part_codes``): rows per model,
  then per feature its partials (a sum; a sum and a count for an average; a min or max; the
  latest row's order key and value for a dimension). ``__newest`` is the newest tile. Why
  binary: a read unpacks every tile of the window, and one ``struct.unpack`` per tile is
  about twice as fast as splitting text, which kept reads over 3x a raw HGETALL.
- ``pantry:<view>:<key>:seen``: event ids already counted, each with its tile. Why: a
  stream redelivers, and a client pushes twice; the offline store keeps the first row of
  an event id, so the online tiles must count it once too. The script adds an event only
  if its id is new (HSETNX), all in one atomic step per entity.

- ``__at``, ``__until`` and ``__memo`` in the tiles hash: a read's finished values and the
  stamps ``[__at, __until)`` they hold for. Why: a read combines up to ``W / tile`` tiles
  per entity (3,600 for an hour of 1-second tiles), 4.9x the daily read's single HMGET, yet
  the answer changes only when a tile enters a window or leaves one. So a read that combines
  the tiles also works out the first stamp where that happens (the next tile after ``s``
  enters at its end; each window's oldest tile leaves ``window`` later) and keeps its
  answer; reads at stamps in the range return it (one HMGET inside the script). The write
  script keeps it true: an event in a tile older than ``__at`` (a late event) drops it, an
  event of a newer tile ends the range where that tile enters. Why not running sums
  corrected as tiles leave the window: subtracting a float is not exact, and a served double
  must be the training read's double to the last bit; this keeps the combine's own output.

Both keys live at least until ``newest + tile + W``, when every window is empty anyway: the
expiry is set ``prune_step`` beyond that and kept in ``__exp``, so it is moved once a step, not
at every event (two calls of the few a write makes per entity, issue 26). Tiles and ids
older than ``newest - W`` are dropped when a new tile starts and the window's start has moved
by ``prune_step`` (a quarter of the window) since the last prune (``__cut``), so memory stays
bounded by 5/4 of the window. An event older than ``newest - W`` is late for every read
from now on and skipped.

Both scripts are generated per view and unrolled (a feature's code is its own lines, with
no per-feature lookups), and one read call combines up to ``read.PER_SCRIPT`` entities: a read of
100 entities is one script call, not 100. Numbers are doubles inside Redis, so an integer
sum is exact below 2^53; replies are text (digits for whole numbers, else 17 significant
digits, which round-trip a double), and the client restores each feature's type (int,
float, or the JSON text of a dimension value).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import chain
from typing import TYPE_CHECKING, Any

import redis

from pantry.errors import PantryError
from pantry.online.client import is_cluster, send_scripts
from pantry.online.layout import entity_key, key_text
from pantry.spec.aggregations import AGGREGATIONS, aggregation

if TYPE_CHECKING:
    from pantry.compile.view_plan import ViewPlan

ORDER_OFFSET = 2**62  # order keys are zero-padded from here, so earlier sorts first as text

# how the tile script keeps each aggregation (spec/aggregations.py), and a dimension's latest value
AGG_CODE = {a.name: a.stream_code for a in AGGREGATIONS.values() if a.stream_code is not None} | {"last": "last"}


def part_codes(code: str, kind: str) -> list[str]:
    """A feature's parts in a tile, as struct codes: ``d`` a double, ``B`` a flag, ``s`` text.

    A numeric min or max keeps a flag beside its double: no double can mean "no value yet"
    (NaN is a value, and DuckDB orders it above every number)."""
    if code in ("sum", "count"):
        return ["d"]
    if code in ("avg",):
        return ["d", "d"]
    if code == "last":
        return ["s", "s"]  # the latest row's order key and value
    return ["s"] if kind == "text" else ["B", "d"]


@dataclass(frozen=True)
class StreamFeature:
    name: str
    code: str  # sum | count | avg | min | max | last
    model: int  # 1-based index of its model in the view's models
    seconds: int  # its window; W for a dimension feature
    kind: str  # int | float | text (JSON text, compared as text for min and max)
    part: int  # 1-based index of its first partial in a tile


@dataclass(frozen=True)
class StreamLayout:
    """What the scripts and the client agree on for one view."""

    view: str
    tile: int
    window: int
    models: tuple[str, ...]
    features: tuple[StreamFeature, ...]

    @property
    def width(self) -> int:
        return len(self.models) + sum(len(part_codes(f.code, f.kind)) for f in self.features)


def layout_for(plan: ViewPlan, kinds: dict[str, str]) -> StreamLayout:
    """The view's layout; ``kinds`` gives each feature's value type (int, float or text)."""
    assert plan.tile is not None
    models = tuple(m.name for m in plan.models)
    features = []
    part = len(models) + 1
    for planned in plan.features:
        code = AGG_CODE[planned.agg]
        kind = kinds[planned.feature.name]
        if (found := aggregation(planned.agg)) is not None and found.integer:
            kind = "int"
        elif code == "avg":
            kind = "float"
        seconds = planned.seconds or plan.window_seconds
        features.append(
            StreamFeature(planned.feature.name, code, models.index(planned.model.name) + 1, seconds, kind, part)
        )
        part += len(part_codes(code, kind))
    return StreamLayout(plan.view.name, plan.tile, plan.window_seconds, models, tuple(features))


def seen_key(view: str, key: object, cluster: bool = False) -> str:
    return entity_key(view, key, cluster) + ":seen"


def _struct_codes(layout: StreamLayout) -> list[str]:
    codes = ["d"] * len(layout.models)  # each model's rows in the tile
    for f in layout.features:
        codes += part_codes(f.code, f.kind)
    return codes


_FRESH = {"d": "0", "B": "0", "s": "''"}

_LUA_FMT = """
local function fmt(x)
  if x == math.floor(x) and math.abs(x) < 9007199254740992 then return string.format('%d', x) end
  return string.format('%.17g', x)
end
"""


def _better(code: str, new: str, old: str) -> str:
    """Lua: ``new`` replaces ``old`` in a numeric min or max, ordering NaN above every number
    (as DuckDB does, so a NaN wins a max and loses a min)."""
    if code == "max":
        return f"({new} > {old} or ({new} ~= {new} and {old} == {old}))"
    return f"({new} < {old} or ({old} ~= {old} and {new} == {new}))"


def prune_step(layout: StreamLayout) -> int:
    """How far the window's start moves between two prunes of an entity's tiles and ids.

    Why not at every new tile: a prune reads the entity's whole hash of tiles and ids, and
    with 1-second tiles nearly every event starts a tile, so pruning each time was most of
    the write's cost. Tiles older than the window are ignored by reads and skipped by
    writes, so only memory waits: at most a quarter of the window more. Why a quarter and
    not an eighth: a prune scans the whole hash to drop a step's worth of it, so its cost per
    event goes as window / step; at an eighth it was a quarter of the script's time in Redis,
    and the drain ran at 0.38-0.42 of the raw limit against 0.47-0.49 at a quarter (issue 26)."""
    return max(layout.tile, layout.window // 4)


def write_script(layout: StreamLayout) -> str:
    """Apply events to many entities' tiles, each event once (KEYS: per entity its tiles
    and its seen ids).

    ARGV: the entity count, then per entity its event count and per event its id, tile,
    order key, model index and one value per feature (empty: null). Generated per view,
    unrolled: no per-feature lookups, each touched tile unpacked once and written back once.
    Many entities per call: one call per entity cost about 60 us an event (issue 26)."""
    codes = _struct_codes(layout)
    width, nf = len(codes), len(layout.features)
    blocks = []
    for m in range(1, len(layout.models) + 1):
        lines = [f"p[{m}] = p[{m}] + 1"]
        for index, f in enumerate(layout.features, start=1):
            if f.model != m:
                continue
            k, v = f.part, f"ARGV[i + {3 + index}]"
            if f.code == "last":
                lines.append(f"if p[{k}] == '' or order > p[{k}] then p[{k}] = order; p[{k + 1}] = {v} end")
            elif f.code == "sum":
                lines.append(f"v = {v}; if v ~= '' then p[{k}] = p[{k}] + tonumber(v) end")
            elif f.code == "count":
                lines.append(f"if {v} ~= '' then p[{k}] = p[{k}] + 1 end")
            elif f.code == "avg":
                lines.append(f"v = {v}; if v ~= '' then p[{k}] = p[{k}] + tonumber(v); p[{k + 1}] = p[{k + 1}] + 1 end")
            elif f.kind == "text":
                op = "<" if f.code == "min" else ">"
                lines.append(f"v = {v}; if v ~= '' and (p[{k}] == '' or v {op} p[{k}]) then p[{k}] = v end")
            else:
                better = _better(f.code, "x", f"p[{k + 1}]")
                lines.append(
                    f"v = {v}; if v ~= '' then x = tonumber(v); "
                    f"if p[{k}] == 0 or {better} then p[{k}] = 1; p[{k + 1}] = x end end"
                )
        keyword = "if" if m == 1 else "elseif"
        blocks.append(f"    {keyword} m == '{m}' then\n      " + "\n      ".join(lines))
    fresh = "{" + ", ".join(_FRESH[c] for c in codes) + "}"
    return (
        f"""
local T, W, FMT = {layout.tile}, {layout.window}, '<{"".join(codes)}'
local STEP = {prune_step(layout)}
local spack, sunpack = struct.pack, struct.unpack
local function drop(K, all, cut, by_value)  -- fields of tiles (or ids of events in tiles) before cut, few HDELs
  local gone = {{}}
  for j = 1, #all, 2 do
    local t = tonumber(by_value and all[j + 1] or all[j])
    if t and t < cut then gone[#gone + 1] = all[j] end
    if #gone == 4000 then redis.call('HDEL', K, unpack(gone)); gone = {{}} end
  end
  if #gone > 0 then redis.call('HDEL', K, unpack(gone)) end
end
local function apply(K1, K2, n, i)
local fields, slot = {{'__newest', '__cut', '__at', '__until', '__exp'}}, {{}}
for j = i + 1, i + n * {4 + nf}, {4 + nf} do  -- the head and every tile the events touch: one HMGET
  local field = ARGV[j]
  if slot[field] == nil then fields[#fields + 1] = field; slot[field] = #fields end
end
local head = redis.call('HMGET', K1, unpack(fields))
local newest = tonumber(head[1] or '')
local started = false
local tiles, dirty, low = {{}}, {{}}, nil
local v, x
for e = 1, n do
  local field = ARGV[i + 1]
  local tile = tonumber(field)
  if (newest == nil or tile >= newest - W) and redis.call('HSETNX', K2, ARGV[i], tile) == 1 then
    local p = tiles[field]
    if p == nil then
      local raw = head[slot[field]]
      if raw then
        p = {{sunpack(FMT, raw)}}
      else
        p = {fresh}
        if newest == nil or tile > newest then newest = tile; started = true end
      end
      tiles[field] = p
      dirty[#dirty + 1] = field
      if low == nil or tile < low then low = tile end
    end
    local order, m = ARGV[i + 2], ARGV[i + 3]
"""
        + "\n".join(blocks)
        + f"""
    end
  end
  i = i + {4 + nf}
end
if newest ~= nil then
  local args = {{'__newest', newest}}
  for j = 1, #dirty do
    args[#args + 1] = dirty[j]
    args[#args + 1] = spack(FMT, unpack(tiles[dirty[j]], 1, {width}))
  end
  local cut, last = newest - W, tonumber(head[2] or '')
  local prune = started and (last == nil or cut - last >= STEP)
  if prune then args[#args + 1] = '__cut'; args[#args + 1] = cut end
  local at, valid = tonumber(head[3] or ''), tonumber(head[4] or '')
  if at and low then  -- the kept read: a tile at or after its stamp enters at low + T, an older one changes it
    if low < at then redis.call('HDEL', K1, '__at', '__until', '__memo')
    elseif low + T < valid then args[#args + 1] = '__until'; args[#args + 1] = string.format('%d', low + T) end
  end
  local exp = tonumber(head[5] or '')
  local extend = exp == nil or exp < newest + T + W
  if extend then args[#args + 1] = '__exp'; args[#args + 1] = newest + T + W + STEP end
  redis.call('HSET', K1, unpack(args))
  if prune then
    drop(K1, redis.call('HGETALL', K1), cut, false)
    drop(K2, redis.call('HGETALL', K2), cut, true)
  end
  if extend then
    redis.call('EXPIREAT', K1, newest + T + W + STEP)
    redis.call('EXPIREAT', K2, newest + T + W + STEP)
  end
end
return i
end
local i = 2
for g = 1, tonumber(ARGV[1]) do
  local n = tonumber(ARGV[i])
  i = apply(KEYS[2 * g - 1], KEYS[2 * g], n, i + 1)
end
return 0
"""
    )


def read_script(layout: StreamLayout) -> str:
    """Many entities' values at stamp ARGV[1] (KEYS: their tiles hashes): per entity a list
    of values, or false when it has no row in the window.

    Generated per view, unrolled: each tile is unpacked once into locals, and each feature
    adds its part with no lookups. Tiles are combined oldest first, so a float sum adds in
    the order the training read adds it, to the same double; they are sorted only when the
    hash does not already hold them in that order (a late event opened an older tile).
    The answer is kept with the stamps it holds for (``__at``, ``__until``, ``__memo``: see the
    module docstring); an entity with no hash gets none, so a read never makes a key without
    its expiry."""
    codes = _struct_codes(layout)
    width = len(codes)
    # Lua allows 200 locals per function: a wide view keeps its parts and sums in tables
    wide = width + 3 * len(layout.features) > 150
    x = [f"p[{k}]" if wide else f"x{k}" for k in range(1, width + 1)]
    unpacked = "local p = {sunpack(FMT, vs[j])}" if wide else f"local {', '.join(x)} = sunpack(FMT, vs[j])"
    local, r = ("", "r.") if wide else ("local ", "")
    setup, body, finish = (["local r = {}"] if wide else []), [], []
    rows = " + ".join(x[: len(layout.models)])
    for index, f in enumerate(layout.features, start=1):
        k = f.part - 1  # 0-based into x
        a, b, h, o, start = (f"{r}{name}{index}" for name in ("a", "b", "h", "o", "c"))
        setup.append(f"{local}{start} = s - {f.seconds}")
        if f.code in ("sum", "count"):
            setup.append(f"{local}{a} = 0")
            body.append(f"if t >= {start} then {a} = {a} + {x[k]} end")
            finish.append(f"fmt({a})")
        elif f.code == "avg":
            setup.append(f"{local}{a}, {b} = 0, 0")
            body.append(f"if t >= {start} then {a} = {a} + {x[k]}; {b} = {b} + {x[k + 1]} end")
            finish.append(f"({b} > 0 and string.format('%.17g', {a} / {b}) or '')")
        elif f.code == "last":
            setup.append(f"{local}{o} = ''")
            body.append(f"if {x[f.model - 1]} > 0 then {o} = {x[k + 1]} end")
            finish.append(o)
        elif f.kind == "text":
            op = "<" if f.code == "min" else ">"
            setup.append(f"{local}{o} = ''")
            body.append(f"if t >= {start} and {x[k]} ~= '' and ({o} == '' or {x[k]} {op} {o}) then {o} = {x[k]} end")
            finish.append(o)
        else:
            setup.append(f"{local}{h}, {o} = false, 0")
            better = _better(f.code, x[k + 1], o)
            body.append(
                f"if t >= {start} and {x[k]} == 1 and (not {h} or {better}) then {h} = true; {o} = {x[k + 1]} end"
            )
            finish.append(f"({h} and fmt({o}) or '')")
    return (
        _LUA_FMT
        + f"""
local T, W, FMT = {layout.tile}, {layout.window}, '<{"".join(codes)}'
local NEVER = 4000000000000000  -- a stamp no clock reaches: nothing after s, nothing to leave
local SECONDS = {{{", ".join(str(x) for x in sorted({f.seconds for f in layout.features} | {layout.window}))}}}
local sunpack = struct.unpack
local s = tonumber(ARGV[1])
local lo = s - W
local function before(p, q) return p[1] < q[1] end
local function entity(all)
  local ts, vs, n, sorted, prev, enter = {{}}, {{}}, 0, true, -math.huge, NEVER
  for j = 1, #all, 2 do
    local t = tonumber(all[j])
    if t then
      if t >= s then
        if t < enter then enter = t end
      elseif t >= lo then
        n = n + 1; ts[n] = t; vs[n] = all[j + 1]
        if t < prev then sorted = false end
        prev = t
      end
    end
  end
  local valid = enter + T  -- the first stamp at which a tile now at or after s is inside
  if n == 0 then return false, valid end
  if not sorted then
    local pairs_ = {{}}
    for j = 1, n do pairs_[j] = {{ts[j], vs[j]}} end
    table.sort(pairs_, before)
    for j = 1, n do ts[j] = pairs_[j][1]; vs[j] = pairs_[j][2] end
  end
  for _, sec in ipairs(SECONDS) do  -- the first stamp at which a tile leaves a window
    for j = 1, n do
      if ts[j] >= s - sec then
        if ts[j] + sec + 1 < valid then valid = ts[j] + sec + 1 end
        break
      end
    end
  end
  {chr(10).join("  " + line for line in setup).strip()}
  local present = 0
  for j = 1, n do
    local t = ts[j]
    {unpacked}
    present = present + {rows}
    {chr(10).join("    " + line for line in body).strip()}
  end
  if present == 0 then return false, valid end
  return {{{", ".join(finish)}}}, valid
end
local MFMT, spack = '<{"s" * len(layout.features)}', struct.pack
local function read(K)
  local got = redis.call('HMGET', K, '__at', '__until', '__memo')
  local at, valid = tonumber(got[1] or ''), tonumber(got[2] or '')
  if at and at <= s and s < valid then
    if got[3] == '' then return false end
    local v = {{sunpack(MFMT, got[3])}}
    v[#v] = nil  -- unpack's last result is the next position
    return v
  end
  local all = redis.call('HGETALL', K)
  if #all == 0 then return false end  -- no key: nothing to memoize (and no key made without its expiry)
  local v, upto = entity(all)
  local memo = v and spack(MFMT, unpack(v)) or ''
  redis.call('HSET', K, '__at', ARGV[1], '__until', string.format('%d', upto), '__memo', memo)
  return v
end
local out = {{}}
for e = 1, #KEYS do out[e] = read(KEYS[e]) end
return out
"""
    )


def number_text(value: Any) -> str:
    """A number as the script reads it: shortest round-trip text for floats, digits for ints."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def decode_value(raw: bytes | None, kind: str) -> Any:
    if raw is None or raw == b"":
        return None
    text = raw.decode()
    if kind == "int":
        try:
            return int(text)
        except ValueError:
            return int(float(text))
    if kind == "float":
        number = float(text)
        return None if math.isnan(number) else number  # as a daily view stores NaN: null
    value = json.loads(text)
    return None if isinstance(value, float) and math.isnan(value) else value


class StreamScripts:
    """A view's two scripts, loaded once; EVALSHA in a pipeline, reloaded after a Redis restart.

    Why not redis-py's ``Script`` objects: in a pipeline they ask ``SCRIPT EXISTS`` before
    every execute, one more round trip per read."""

    def __init__(self, layout: StreamLayout) -> None:
        import hashlib

        self.layout = layout
        self.write = write_script(layout)
        self.read = read_script(layout)
        self.write_sha = hashlib.sha1(self.write.encode()).hexdigest()
        self.read_sha = hashlib.sha1(self.read.encode()).hexdigest()

    def load(self, client: redis.Redis) -> None:
        client.script_load(self.write)
        client.script_load(self.read)


@dataclass(frozen=True)
class PackedEvents:
    """Events already in the write script's wire form: per entity (an entity with many
    events in several groups, in order) its key text, its event count, and every argument
    of its events (id, tile, order key, model index, values) as RESP bulk strings.

    Why: a drain's batch is thousands of events of a dozen texts each; written by DuckDB as
    one string per entity, the client touches each entity once instead of every value."""

    groups: list[tuple[str, int, bytes]]


def _bulk(text: bytes) -> bytes:
    return b"$%d\r\n%b\r\n" % (len(text), text)


def _packed_calls(sha: str, layout: StreamLayout, events: PackedEvents, per_call: int) -> list[bytes]:
    """The write script's calls over ``events``, each about ``per_call`` events, as RESP commands."""
    view, width = layout.view, 4 + len(layout.features)
    calls: list[bytes] = []
    head = _bulk(b"EVALSHA") + _bulk(sha.encode())
    keys: list[bytes] = []
    args: list[bytes] = []
    count = words = 0
    for key, n, body in events.groups:
        tiles = entity_key(view, key).encode()
        keys += [_bulk(tiles), _bulk(tiles + b":seen")]
        args += [_bulk(b"%d" % n), body]
        count += n
        words += 1 + n * width  # the count, then each event's arguments
        if count >= per_call:
            calls.append(_call(head, keys, args, words))
            keys, args, count, words = [], [], 0, 0
    if keys:
        calls.append(_call(head, keys, args, words))
    return calls


def _call(head: bytes, keys: list[bytes], args: list[bytes], words: int) -> bytes:
    entities = len(keys) // 2
    return b"".join(
        [
            b"*%d\r\n" % (3 + len(keys) + 1 + words),
            head,
            _bulk(b"%d" % len(keys)),
            *keys,
            _bulk(b"%d" % entities),
            *args,
        ]
    )


def _grouped(view: str, events: dict[str, list[list[str]]], per_call: int) -> list[tuple[list[str], list]]:
    """Events by entity key text as the write script's (keys, args) calls of about ``per_call``
    events each; a burst of one entity is split into several groups, in order."""
    out: list[tuple[list[str], list]] = []
    keys: list[str] = []
    args: list = []
    count = 0
    for key, rows in events.items():
        for start in range(0, len(rows), per_call):
            chunk = rows[start : start + per_call]
            keys += [entity_key(view, key), seen_key(view, key)]
            args.append(len(chunk))
            args.extend(chain.from_iterable(chunk))
            count += len(chunk)
            if count >= per_call:
                out.append((keys, args))
                keys, args, count = [], [], 0
    if keys:
        out.append((keys, args))
    return out


def apply_events(
    client: redis.Redis,
    scripts: StreamScripts,
    events: dict[str, list[list[str]]] | PackedEvents,
    per_call: int = 500,
) -> int:
    """Apply events, grouped by entity key text (each event: id, tile, order, model index,
    values) or already packed; one script call for many entities, up to about ``per_call``
    events, pipelined (an entity's events stay in order). Why not on a Redis Cluster: a call
    takes many entities' keys, which a cluster refuses across slots (docs/online.md, Limits)."""
    view = scripts.layout.view
    if is_cluster(client):
        raise PantryError(
            f"streaming view '{view}' is served from a standalone Redis, and this one is a Redis Cluster",
            field="online",
            hint="point PANTRY_REDIS_URL at a standalone Redis for streaming views (docs/online.md, Limits)",
        )
    if isinstance(events, PackedEvents):
        calls: list = _packed_calls(scripts.write_sha, scripts.layout, events, per_call)
        applied = sum(n for _, n, _ in events.groups)
    else:
        calls = [
            ("EVALSHA", scripts.write_sha, len(k), *k, len(k) // 2, *a) for k, a in _grouped(view, events, per_call)
        ]
        applied = sum(len(rows) for rows in events.values())
    send_scripts(client, calls, lambda: scripts.load(client))
    return applied


def decode_rows(layout: StreamLayout, replies: Sequence[Any]) -> list[list[Any]]:
    """The read script's replies as each entity's values, in the layout's feature order."""
    features = layout.features
    empty = [None] * len(features)
    return [
        [decode_value(raw, f.kind) for raw, f in zip(reply, features)] if reply else list(empty) for reply in replies
    ]


__all__ = ["PackedEvents", "StreamLayout", "StreamScripts", "apply_events", "decode_rows", "key_text", "layout_for"]
