"""Streaming feature views (issue 14, section 3) on a real redis-server: after rows are
pushed, the online value at ``t`` equals the training read at ``event_timestamp = t``, and
both equal a brute force over the rows, at stamps where windows fill, slide and empty."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import redis

from pantry import Store
from pantry.errors import PantryError
from tests.conftest import RedisServer, dagster_instance, write_defs

STREAM_YAML = """
semantic_models:
  - name: clicks
    source: data/clicks.parquet
    ingest: push
    defaults: {agg_time_dimension: ts}
    entities:
      - {name: click, type: primary, expr: click_id}
      - {name: user, type: foreign, expr: user_id}
    dimensions:
      - {name: ts, type: time, type_params: {time_granularity: second}}
      - {name: channel, type: categorical}
    measures:
      - {name: spend, agg: sum, expr: amount}
      - {name: clicks, agg: count, expr: click_id}
      - {name: avg_spend, agg: average, expr: amount}
      - {name: top_spend, agg: max, expr: amount}
      - {name: low_units, agg: min, expr: units}
      - {name: paid, agg: sum_boolean, expr: paid}
feature_views:
  - name: live
    entity: user
    online: true
    stream: {tile: 1 minute}
    features:
      - {name: spend_5m, measure: clicks.spend, window: 5 minutes}
      - {name: clicks_1h, measure: clicks.clicks, window: 1 hour}
      - {name: avg_10m, measure: clicks.avg_spend, window: 10 minutes}
      - {name: top_5m, measure: clicks.top_spend, window: 5 minutes}
      - {name: low_units_15m, measure: clicks.low_units, window: 15 minutes}
      - {name: paid_2m, measure: clicks.paid, window: 2 minutes}
      - {name: channel, dimension: click__channel}
"""

# near now: Redis expires an entity's tiles by the wall clock, once every window that could
# hold them has passed (the declared row 50 minutes before T0 is still in the hour)
T0 = datetime.now(UTC).replace(tzinfo=None, second=0, microsecond=0) - timedelta(minutes=5)


@pytest.fixture(autouse=True)
def _clock_of_this_test(monkeypatch: pytest.MonkeyPatch) -> None:
    """T0 follows each test's wall clock, not collection's: in a long suite a test runs many
    minutes after import, and the declared row's tiles would expire on arrival (they live
    until 61 minutes after it, by the wall clock). The events run up to 15 minutes ahead of
    the wall clock (reads pass ``at=``), so the push's future-time guard is widened here."""
    monkeypatch.setenv("PANTRY_MAX_EVENT_SKEW", "3600")
    global T0
    T0 = datetime.now(UTC).replace(tzinfo=None, second=0, microsecond=0) - timedelta(minutes=5)


FEATURES = ["spend_5m", "clicks_1h", "avg_10m", "top_5m", "low_units_15m", "paid_2m", "channel"]
WINDOWS = {"spend_5m": 5, "clicks_1h": 60, "avg_10m": 10, "top_5m": 5, "low_units_15m": 15, "paid_2m": 2}


def _declared() -> pd.DataFrame:
    """Two rows already in the declared source (they reach Redis through a sync)."""
    return pd.DataFrame(
        {
            "click_id": [1, 2],
            "user_id": [1, 2],
            "ts": [T0 - timedelta(minutes=3), T0 - timedelta(minutes=50)],
            "channel": ["seo", "ads"],
            "amount": [1.5, 2.0],
            "units": [4, 1],
            "paid": [True, False],
        }
    )


def _events(seed: int, n: int, first_id: int) -> pd.DataFrame:
    """Clicks of five users over 20 minutes; amounts of any precision, some missing."""
    rng = np.random.default_rng(seed)
    seconds = rng.integers(0, 20 * 60, n)
    amounts = rng.random(n) * 50
    amounts[::9] = np.nan
    return pd.DataFrame(
        {
            "click_id": np.arange(first_id, first_id + n),
            "user_id": rng.integers(1, 6, n),
            "ts": [T0 + timedelta(seconds=int(s)) for s in seconds],
            "channel": rng.choice(["seo", "ads", "mail", None], n),
            "amount": amounts,
            "units": rng.integers(1, 9, n),
            "paid": rng.integers(0, 2, n).astype(bool),
        }
    )


@pytest.fixture
def stream_store(tmp_path: Path, redis_server: RedisServer) -> Store:
    defs = write_defs(tmp_path, {"clicks.yaml": STREAM_YAML})
    (defs / "data").mkdir()
    _declared().to_parquet(defs / "data" / "clicks.parquet", index=False)
    return Store(defs=defs, home=tmp_path / "home", redis_url=redis_server.url)


def _brute(rows: pd.DataFrame, user: int, t: datetime) -> dict[str, object]:
    """The value at stamp floor(t, 1 minute), straight from the contract, row by row."""
    s = t.replace(second=0, microsecond=0)
    mine = rows[(rows.user_id == user) & (rows.ts >= s - timedelta(minutes=60)) & (rows.ts < s)]
    if mine.empty:
        return dict.fromkeys(FEATURES)

    def within(minutes: int) -> pd.DataFrame:
        return mine[mine.ts >= s - timedelta(minutes=minutes)]

    avg = within(10).amount.dropna()
    lows = within(15).units
    tops = within(5).amount.dropna()
    latest = mine.sort_values("ts", kind="stable").iloc[-1]
    return {
        "spend_5m": float(within(5).amount.sum()),
        "clicks_1h": len(mine),
        "avg_10m": float(avg.mean()) if len(avg) else None,
        "top_5m": float(tops.max()) if len(tops) else None,
        "low_units_15m": int(lows.min()) if len(lows) else None,
        "paid_2m": int(within(2).paid.sum()),
        "channel": latest.channel,
    }


def _plain(value: object) -> object:
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, np.generic):
        return value.item()
    return value


def _check_parity(store: Store, rows: pd.DataFrame, moments: list[datetime], features: list[str] = FEATURES) -> int:
    """Online at t == training at t == brute force, for every user (and one never seen)."""
    users = [1, 2, 3, 4, 5, 99]
    refs = [f"live:{f}" for f in features]
    compared = 0
    for t in moments:
        online = store.get_online_features(refs, [{"user_id": u} for u in users], at=pd.Timestamp(t, tz="UTC"))
        frame = pd.DataFrame({"user_id": users, "event_timestamp": pd.Timestamp(t, tz="UTC")})
        training = store.get_historical_features(frame, refs)
        for i, user in enumerate(users):
            expected = _brute(rows, user, t)
            for feature in features:
                served, trained = online[feature][i], _plain(training[feature].iloc[i])
                # served is trained, to the last bit: both add a tile's values in arrival order
                assert served == trained and type(served) is type(trained), (t, user, feature, served, trained)
                if isinstance(served, float):  # the brute force adds in its own order
                    assert math.isclose(served, expected[feature], rel_tol=1e-12), (t, user, feature, served)
                else:
                    assert served == expected[feature], (t, user, feature, served, expected[feature])
                compared += 1
    return compared


def test_served_equals_training_equals_brute_force_as_windows_fill_slide_and_empty(stream_store: Store) -> None:
    """Clicks arrive in time order, as they would live; after each arrival the views are read
    at later moments (the online store answers for now and later, not for the past)."""
    store = stream_store
    store.sync_stream("live", at=T0)  # the declared rows reach Redis
    clicks = pd.concat([_events(1, 150, 100), _events(2, 150, 1000)]).sort_values("ts", kind="stable")
    rows = _declared()
    checked = 0
    for lo, hi, moments in [
        (0, 150, [2 * 60 + 30, 9 * 60 + 59]),
        (150, 600, [10 * 60, 20 * 60]),
        (600, 1200, [20 * 60, 21 * 60 + 1, 26 * 60, 79 * 60 + 59, 81 * 60]),
    ]:
        arrived = clicks[(clicks.ts >= T0 + timedelta(seconds=lo)) & (clicks.ts < T0 + timedelta(seconds=hi))]
        store.push("clicks", arrived)
        store.push("clicks", arrived.iloc[: len(arrived) // 3])  # pushed again: each click counts once
        rows = pd.concat([rows, arrived], ignore_index=True)
        checked += _check_parity(store, rows, [T0 + timedelta(seconds=m) for m in moments])
    # 9 moments: windows fill, slide, the 2- and 5-minute ones empty, and at last every user is absent
    assert checked == 9 * 6 * len(FEATURES)


def test_a_burst_of_one_entity_in_one_batch_is_applied_in_order_and_once(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    """Issue 26 part 4: a view of numbers only takes the packed path (DuckDB writes each
    entity's script arguments in Redis's wire form), and an entity with more events in one
    batch than one script call takes (``CHUNK``) is split into runs applied in order. One
    push of 1,400 clicks, 1,100 of them user 1's, then the same push again, against brute force."""
    from pantry.features.stream_events import CHUNK, batch_events
    from pantry.online.stream_tiles import PackedEvents

    numeric = [f for f in FEATURES if f != "channel"]
    defs = write_defs(
        tmp_path, {"clicks.yaml": STREAM_YAML.replace("      - {name: channel, dimension: click__channel}\n", "")}
    )
    (defs / "data").mkdir()
    _declared().to_parquet(defs / "data" / "clicks.parquet", index=False)
    store = Store(defs=defs, home=tmp_path / "home", redis_url=redis_server.url)
    clicks = _events(7, 1400, 100)
    clicks.loc[clicks.index[:1100], "user_id"] = 1
    clicks = clicks.sample(frac=1.0, random_state=3)  # arrival order is not time order
    assert (clicks.user_id == 1).sum() > 2 * CHUNK

    plan, scripts = store._stream("live")
    import pyarrow as pa

    packed = batch_events(
        plan,
        scripts.layout,
        store.definitions.semantic_models["clicks"],
        pa.Table.from_pandas(clicks, preserve_index=False),
        "b.parquet",
    )
    assert isinstance(packed, PackedEvents)
    runs = [int((clicks.user_id.iloc[i : i + CHUNK] == 1).sum()) for i in range(0, len(clicks), CHUNK)]
    assert [n for key, n, _ in packed.groups if key == "1"] == runs  # user 1's events in each run of rows, in order
    store.sync_stream("live", at=T0)
    store.push("clicks", clicks)
    store.push("clicks", clicks.iloc[:700])  # pushed again: each click counts once
    rows = pd.concat([_declared(), clicks], ignore_index=True)
    # after the last click (the online store answers for now and later): windows full, sliding, the short ones empty
    moments = [T0 + timedelta(seconds=m) for m in (20 * 60, 21 * 60 + 1, 24 * 60, 31 * 60)]
    assert _check_parity(store, rows, moments, numeric) == 4 * 6 * len(numeric)


def test_a_read_keeps_its_answer_until_a_late_event_changes_it(stream_store: Store, redis_server: RedisServer) -> None:
    """Issue 26 part 5: the first read at a stamp keeps its answer beside the tiles, and later
    reads at that stamp return it. An event of the open tile leaves it (the window excludes
    that tile); a late event inside the window drops it, and the next read is exact again.
    An entity never seen gets no key at all (a key made by a read would have no expiry)."""
    import redis

    from pantry.online.layout import entity_key

    store = stream_store
    store.sync_stream("live", at=T0)
    clicks = _events(4, 120, 100)
    first = clicks[clicks.ts < T0 + timedelta(minutes=10)]
    store.push("clicks", first)
    rows = pd.concat([_declared(), first], ignore_index=True)
    t = T0 + timedelta(minutes=10, seconds=30)
    client = redis.Redis.from_url(redis_server.url)
    key = entity_key("live", 1)
    assert client.hget(key, "__memo") is None
    _check_parity(store, rows, [t])
    memo = client.hget(key, "__memo")
    assert client.hget(key, "__at") is not None and memo

    def one(user: int, at: datetime, click_id: int, amount: float) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "click_id": [click_id],
                "user_id": [user],
                "ts": [at],
                "channel": ["tv"],
                "amount": [amount],
                "units": [1],
                "paid": [True],
            }
        )

    now = one(1, T0 + timedelta(minutes=10, seconds=5), 9001, 500.0)  # the open tile: after the stamp
    store.push("clicks", now)
    rows = pd.concat([rows, now], ignore_index=True)
    assert client.hget(key, "__memo") == memo
    _check_parity(store, rows, [t])  # read from the memo, still the brute force's answer
    assert client.hget(key, "__memo") == memo

    late = one(1, T0 + timedelta(minutes=8), 9002, 1000.0)  # inside every window at the stamp
    store.push("clicks", late)
    rows = pd.concat([rows, late], ignore_index=True)
    assert client.hget(key, "__memo") is None
    _check_parity(store, rows, [t])  # a stale memo would miss the 1000.0
    spend = store.get_online_features(["live:spend_5m"], [{"user_id": 1}], at=pd.Timestamp(t, tz="UTC"))
    assert spend["spend_5m"][0] >= 1000.0

    store.get_online_features(["live:spend_5m"], [{"user_id": 12345}], at=pd.Timestamp(t, tz="UTC"))
    assert not client.exists(entity_key("live", 12345))
    keys = list(client.scan_iter("pantry:live:*"))
    assert keys and all(client.ttl(k) > 0 for k in keys)


def test_daily_partitions_materialize_from_the_same_rows(
    tmp_path: Path, dagster_home: Path, redis_server: RedisServer
) -> None:
    """The view's daily partition is a Dagster asset: each partition's figures are the values
    at its stamp (D + 1 day, 00:00), which a brute force over the pushed rows gives too."""
    import dagster as dg

    from pantry_dagster.assets.features import feature_key
    from pantry_dagster.assets.location import build_definitions

    defs = write_defs(tmp_path, {"clicks.yaml": STREAM_YAML})
    (defs / "data").mkdir()
    day = datetime(2026, 11, 20)
    _declared().assign(ts=[day + timedelta(hours=23, minutes=58), day - timedelta(hours=3)]).to_parquet(
        defs / "data" / "clicks.parquet", index=False
    )
    store = Store(defs=defs, home=tmp_path / "home", redis_url=redis_server.url)
    clicks = _events(3, 200, 100).assign(ts=lambda f: f.ts.map(lambda t: day + timedelta(hours=23) + (t - T0) * 3))
    store.push("clicks", clicks)
    rows = pd.concat([_declared().assign(ts=[day + timedelta(hours=23, minutes=58), day - timedelta(hours=3)]), clicks])
    stamp = day + timedelta(days=1)
    built = build_definitions(str(defs), str(store.home), redis_url=redis_server.url)
    view = built.resolve_assets_def(feature_key("live", "spend_5m"))
    with dagster_instance(dagster_home) as instance:
        assert dg.materialize([view], instance=instance, partition_key="2026-11-20").success
        observed = instance.fetch_materializations(feature_key("live", "clicks_1h"), limit=5).records[0]
    figures = observed.asset_materialization.metadata
    want = [_brute(rows, u, stamp)["clicks_1h"] for u in range(1, 6)]
    present = [w for w in want if w is not None]
    assert figures["entities_present"].value == len(present)
    assert figures["mean"].value == pytest.approx(sum(present) / len(present))
    assert figures["max"].value == max(present)
    # the portable form (``pantry compile --view``, for Spark and warehouses) has the same windows
    from pantry.offline.sources import connect

    con = connect(store.definitions, store.offline, models=store._stream("live")[0].models, for_sql="")
    try:
        portable = con.sql(store.compile_partition("2026-11-20", view="live")).df().set_index("user_id")
    finally:
        con.close()
    for user in range(1, 6):
        expected = _brute(rows, user, stamp)
        if expected["clicks_1h"] is None:
            assert user not in portable.index
            continue
        got = portable.loc[user]
        assert int(got["clicks_1h"]) == expected["clicks_1h"] and int(got["paid_2m"]) == expected["paid_2m"]
        assert math.isclose(float(got["spend_5m"]), expected["spend_5m"], rel_tol=1e-12, abs_tol=1e-12)
        assert _plain(got["low_units_15m"]) == expected["low_units_15m"]


def test_a_stream_consumer_killed_mid_batch_leaves_serving_exact(
    stream_store: Store, redis_server: RedisServer
) -> None:
    """Entries through ``pantry ingest``, the first consumer SIGKILLed mid-stream, some entries
    sent twice: the second consumer's redeliveries count once online, as offline."""
    import os
    import signal
    import subprocess
    import sys
    import time

    import redis

    from pantry.ingest.stream import stream_key

    store = stream_store
    store.sync_stream("live", at=T0)
    clicks = _events(4, 1500, 100).sort_values("ts", kind="stable")
    client = redis.Redis.from_url(redis_server.url)
    pipe = client.pipeline()
    for n, row in enumerate(clicks.itertuples(index=False)):
        fields = {
            "click_id": str(row.click_id),
            "user_id": str(row.user_id),
            "ts": row.ts.isoformat(sep=" "),
            "units": str(row.units),
            "paid": str(row.paid).lower(),
        }
        if not math.isnan(row.amount):  # a missing amount is a missing field
            fields["amount"] = repr(row.amount)
        if row.channel is not None:
            fields["channel"] = row.channel
        pipe.xadd(stream_key("clicks"), fields)
        if n % 7 == 0:
            pipe.xadd(stream_key("clicks"), fields)  # the producer retried: the same click twice
    pipe.execute()
    env = {**os.environ, "PANTRY_DEFS": str(store.defs), "PANTRY_HOME": str(store.home)}
    env["PANTRY_REDIS_URL"] = redis_server.url
    pantry = str(Path(sys.executable).parent / "pantry")
    args = [pantry, "ingest", "clicks", "--batch", "100", "--name", "worker", "--idle-exit", "2"]
    first = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 60
    while time.time() < deadline and len(list((store.home / "ingest" / "clicks").glob("*.parquet"))) < 4:
        time.sleep(0.01)
    first.send_signal(signal.SIGKILL)
    first.wait()
    group = client.xinfo_groups(stream_key("clicks"))[0]
    assert group["lag"] > 0 or group["pending"] > 0  # it died with work left
    again = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stdout + again.stderr
    rows = pd.concat([_declared(), clicks], ignore_index=True)
    moments = [T0 + timedelta(minutes=20), T0 + timedelta(minutes=23, seconds=30)]
    assert _check_parity(store, rows, moments) == 2 * 6 * len(FEATURES)


def test_a_batch_whose_tiles_fail_stays_pending_and_counts_once_when_delivered_again(
    stream_store: Store, redis_server: RedisServer
) -> None:
    """Issue 26 part 4: a consumer applies a batch's tiles while it reads and writes the next,
    and acknowledges a batch only once its tiles are in. Here one user's tiles cannot be
    written (its ``:seen`` key is not a hash): the consumer stops with Redis's error, what it
    had not served stays pending, and once the key is mended the same consumer serves it,
    each click once, equal to the training read and the brute force."""
    import redis

    from pantry.ingest.stream import StreamConsumer, stream_key
    from pantry.online.stream_tiles import seen_key

    store = stream_store
    store.sync_stream("live", at=T0)
    clicks = _events(6, 600, 100).sort_values("ts", kind="stable")
    client = redis.Redis.from_url(redis_server.url)
    pipe = client.pipeline()
    for row in clicks.itertuples(index=False):
        fields = {"click_id": str(row.click_id), "user_id": str(row.user_id), "ts": row.ts.isoformat(sep=" ")}
        fields |= {"units": str(row.units), "paid": str(row.paid).lower()}
        if not math.isnan(row.amount):
            fields["amount"] = repr(row.amount)
        if row.channel is not None:
            fields["channel"] = row.channel
        pipe.xadd(stream_key("clicks"), fields)
    pipe.execute()
    user = 5  # has no declared rows: nothing of it is in Redis yet
    assert user in set(clicks.user_id) and user not in set(_declared().user_id)
    client.set(seen_key("live", user), "not a hash")
    consumer = StreamConsumer(store, ["clicks"], client, name="worker", batch=100, block_ms=50)
    with pytest.raises(Exception, match="WRONGTYPE"):
        consumer.run(idle_rounds=2)
    group = client.xinfo_groups(stream_key("clicks"))[0]
    assert consumer.counts.acked < len(clicks) and group["pending"] >= 100  # the failed batch is not acknowledged
    assert group["pending"] + consumer.counts.acked + group["lag"] == len(clicks)

    client.delete(seen_key("live", user))
    again = StreamConsumer(store, ["clicks"], client, name="worker", batch=100, block_ms=50).run(idle_rounds=2)
    group = client.xinfo_groups(stream_key("clicks"))[0]
    assert group["pending"] == 0 and group["lag"] == 0
    assert consumer.counts.acked + again.acked == len(clicks)
    assert len(client.xrange(f"{stream_key('clicks')}:dead")) == 0
    rows = pd.concat([_declared(), clicks], ignore_index=True)
    moments = [T0 + timedelta(minutes=12), T0 + timedelta(minutes=20, seconds=30)]
    assert _check_parity(store, rows, moments) == 2 * 6 * len(FEATURES)


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ("stream: {tile: 7 minutes}", "stream.tile: '7 minutes' does not divide a day"),
        ("stream: {tile: 1 minute, lag: 2}", "feature view 'live' stream: unknown field 'lag'"),
        ("stream: {tile: 2 minutes}", "window '5 minutes' is not a whole number of tiles (2 minutes each)"),
        ("stream: 1 minute", "'stream' must be a mapping"),
    ],
)
def test_a_wrong_stream_block_names_the_view_and_field(tmp_path: Path, change: str, says: str) -> None:
    defs = write_defs(tmp_path, {"clicks.yaml": STREAM_YAML.replace("stream: {tile: 1 minute}", change)})
    (defs / "data").mkdir()
    _declared().to_parquet(defs / "data" / "clicks.parquet", index=False)
    with pytest.raises(PantryError) as caught:
        Store(defs=defs, home=tmp_path / "home").validate()
    assert says in str(caught.value) and "feature view 'live'" in str(caught.value)


def test_a_streaming_view_needs_push_rows_at_a_fine_grain(tmp_path: Path) -> None:
    text = STREAM_YAML.replace("    ingest: push\n", "").replace("time_granularity: second", "time_granularity: day")
    defs = write_defs(tmp_path, {"clicks.yaml": text})
    (defs / "data").mkdir()
    _declared().to_parquet(defs / "data" / "clicks.parquet", index=False)
    with pytest.raises(PantryError) as caught:
        Store(defs=defs, home=tmp_path / "home").validate()
    said = str(caught.value)
    assert "does not accept pushed rows" in said and "add 'ingest: push' to 'clicks'" in said
    assert "has grain 'day', too coarse for 1 minute tiles" in said


def test_a_minute_window_without_stream_says_what_to_add(tmp_path: Path) -> None:
    defs = write_defs(tmp_path, {"clicks.yaml": STREAM_YAML.replace("    stream: {tile: 1 minute}\n", "")})
    (defs / "data").mkdir()
    _declared().to_parquet(defs / "data" / "clicks.parquet", index=False)
    with pytest.raises(PantryError) as caught:
        Store(defs=defs, home=tmp_path / "home").validate()
    assert "finer windows need 'stream: {tile: 1 minute}' on the view" in str(caught.value)


def test_over_http_a_pushed_click_is_served_at_the_next_tile(stream_store: Store) -> None:
    """POST /push, then POST /features/online: the click from the last closed minute is served."""
    from tests.conftest import Server

    now = datetime.now(UTC).replace(tzinfo=None)
    closed = now.replace(second=0, microsecond=0) - timedelta(seconds=30)  # inside the last closed tile
    body = {"features": ["live:spend_5m", "live:clicks_1h", "live:channel"], "entities": {"user_id": [42, 43]}}
    with Server(stream_store) as http:
        before = http.post("/features/online", json=body).json()
        pushed = http.post(
            "/push/clicks",
            json=[
                {"click_id": 9001, "user_id": 42, "ts": closed.isoformat(sep=" "), "amount": 2.5, "channel": "ads"},
                {"click_id": 9002, "user_id": 42, "ts": closed.isoformat(sep=" "), "amount": "lots"},
            ],
        ).json()
        after = http.post("/features/online", json=body).json()
    assert before == {"user_id": [42, 43], "spend_5m": [None, None], "clicks_1h": [None, None], "channel": [None, None]}
    assert pushed["accepted"] == 1 and pushed["refused"][0]["reason"] == "'lots' is not a DOUBLE (column amount)"
    # the click stays inside the 5-minute window for minutes after this read, whatever the clock says
    assert after == {"user_id": [42, 43], "spend_5m": [2.5, None], "clicks_1h": [1, None], "channel": ["ads", None]}


WIDE_MINUTES = list(range(1, 41))
WIDE_YAML = STREAM_YAML.replace(
    "      - {name: paid, agg: sum_boolean, expr: paid}\n",
    "      - {name: paid, agg: sum_boolean, expr: paid}\n"
    "      - {name: first_channel, agg: min, expr: channel}\n"
    "      - {name: last_channel, agg: max, expr: channel}\n",
).split("feature_views:")[0] + (
    "feature_views:\n  - name: wide\n    entity: user\n    online: true\n    stream: {tile: 1 minute}\n    features:\n"
    + "".join(f"      - {{name: spend_{m}m, measure: clicks.spend, window: {m} minutes}}\n" for m in WIDE_MINUTES)
    + "      - {name: low_channel, measure: clicks.first_channel, window: 7 minutes}\n"
    + "      - {name: high_channel, measure: clicks.last_channel, window: 7 minutes}\n"
)


def test_a_wide_view_over_many_users_with_late_tiles_and_text_extremes(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    """42 features (the read script keeps its parts in tables past Lua's 200 locals), 300
    users (two script calls in one read), clicks pushed newest first (older tiles open
    after newer ones, so the script sorts them), and a text min/max over a column with
    nulls: served == training == brute force."""
    defs = write_defs(tmp_path, {"clicks.yaml": WIDE_YAML})
    (defs / "data").mkdir()
    _declared().to_parquet(defs / "data" / "clicks.parquet", index=False)
    store = Store(defs=defs, home=tmp_path / "home", redis_url=redis_server.url)
    rng = np.random.default_rng(7)
    n = 3000
    clicks = pd.DataFrame(
        {
            "click_id": np.arange(100, 100 + n),
            "user_id": rng.integers(1, 301, n),
            "ts": [T0 + timedelta(seconds=int(s)) for s in rng.integers(0, 20 * 60, n)],
            "channel": rng.choice(["seo", "ads", "mail", "tv", None], n),
            "amount": rng.random(n) * 50,
            "units": rng.integers(1, 9, n),
            "paid": rng.integers(0, 2, n).astype(bool),
        }
    )
    newest_first = clicks.sort_values("ts", ascending=False, kind="stable")
    for part in np.array_split(np.arange(n), 6):
        store.push("clicks", newest_first.iloc[part])
    store.sync_stream("wide", at=T0 + timedelta(minutes=20))
    rows = pd.concat([_declared(), clicks], ignore_index=True)
    users = list(range(1, 302))
    names = [f"spend_{m}m" for m in WIDE_MINUTES] + ["low_channel", "high_channel"]
    refs = [f"wide:{name}" for name in names]
    for t in [T0 + timedelta(minutes=20, seconds=5), T0 + timedelta(minutes=24)]:
        s = t.replace(second=0, microsecond=0)
        online = store.get_online_features(refs, [{"user_id": u} for u in users], at=pd.Timestamp(t, tz="UTC"))
        frame = pd.DataFrame({"user_id": users, "event_timestamp": pd.Timestamp(t, tz="UTC")})
        training = store.get_historical_features(frame, refs)
        present = 0
        for i, user in enumerate(users):
            mine = rows[(rows.user_id == user) & (rows.ts < s) & (rows.ts >= s - timedelta(minutes=40))]
            present += not mine.empty
            for m in WIDE_MINUTES:
                name = f"spend_{m}m"
                served, trained = online[name][i], _plain(training[name].iloc[i])
                assert served == trained, (t, user, name, served, trained)
                if mine.empty:
                    assert served is None, (t, user, name, served)
                else:
                    want = float(mine[mine.ts >= s - timedelta(minutes=m)].amount.sum())
                    assert math.isclose(served, want, rel_tol=1e-12, abs_tol=1e-9), (t, user, name, served, want)
            seven = mine[mine.ts >= s - timedelta(minutes=7)].channel.dropna()
            want_low = min(seven) if len(seven) else None
            want_high = max(seven) if len(seven) else None
            assert online["low_channel"][i] == _plain(training["low_channel"].iloc[i]) == want_low, (t, user)
            assert online["high_channel"][i] == _plain(training["high_channel"].iloc[i]) == want_high, (t, user)
        assert present > 250  # both script calls answered for users that have rows


TWO_MODELS_YAML = (
    STREAM_YAML.split("feature_views:")[0]
    + """
  - name: orders
    source: data/orders.parquet
    ingest: push
    defaults: {agg_time_dimension: placed_at}
    entities:
      - {name: order, type: primary, expr: order_id}
      - {name: user, type: foreign, expr: user_id}
    dimensions:
      - {name: placed_at, type: time, type_params: {time_granularity: second}}
      - {name: shop, type: categorical}
    measures:
      - {name: order_total, agg: sum, expr: total}
      - {name: orders, agg: count, expr: order_id}
feature_views:
  - name: both
    entity: user
    online: true
    stream: {tile: 1 minute}
    features:
      - {name: spend_5m, measure: clicks.spend, window: 5 minutes}
      - {name: orders_30m, measure: orders.orders, window: 30 minutes}
      - {name: order_total_10m, measure: orders.order_total, window: 10 minutes}
      - {name: channel, dimension: click__channel}
      - {name: shop, dimension: order__shop}
"""
)


def test_a_view_over_two_models_keeps_each_dimension_to_its_own_rows(tmp_path: Path, redis_server: RedisServer) -> None:
    """Clicks and orders of the same users in one view: a tile holding only clicks leaves
    the latest shop where the last order put it, and a user with clicks but no order is
    present with a null shop and 0 orders (served == training == brute force)."""
    defs = write_defs(tmp_path, {"clicks.yaml": TWO_MODELS_YAML})
    (defs / "data").mkdir()
    _declared().to_parquet(defs / "data" / "clicks.parquet", index=False)
    pd.DataFrame(
        {"order_id": [1], "user_id": [2], "placed_at": [T0 - timedelta(minutes=40)], "shop": ["old"], "total": [9.0]}
    ).to_parquet(defs / "data" / "orders.parquet", index=False)
    store = Store(defs=defs, home=tmp_path / "home", redis_url=redis_server.url)
    store.sync_stream("both", at=T0)
    rng = np.random.default_rng(11)
    clicks = _events(12, 400, 100)
    n = 120
    orders = pd.DataFrame(
        {
            "order_id": np.arange(100, 100 + n),
            "user_id": rng.integers(1, 5, n),  # user 5 only clicks
            # orders stop 12 minutes in; clicks go on to 20: later tiles hold clicks only
            "placed_at": [T0 + timedelta(seconds=int(s)) for s in rng.integers(0, 12 * 60, n)],
            "shop": rng.choice(["north", "south", None], n),
            "total": rng.random(n) * 80,
        }
    )
    for lo, hi in [(0, 600), (600, 1200)]:  # in time order, each model as it arrives
        store.push(
            "orders",
            orders[(orders.placed_at >= T0 + timedelta(seconds=lo)) & (orders.placed_at < T0 + timedelta(seconds=hi))],
        )
        store.push(
            "clicks", clicks[(clicks.ts >= T0 + timedelta(seconds=lo)) & (clicks.ts < T0 + timedelta(seconds=hi))]
        )
    all_clicks = pd.concat([_declared(), clicks], ignore_index=True)
    all_orders = pd.concat(
        [
            pd.DataFrame(
                {
                    "order_id": [1],
                    "user_id": [2],
                    "placed_at": [T0 - timedelta(minutes=40)],
                    "shop": ["old"],
                    "total": [9.0],
                }
            ),
            orders,
        ],
        ignore_index=True,
    )
    users = [1, 2, 3, 4, 5, 99]
    names = ["spend_5m", "orders_30m", "order_total_10m", "channel", "shop"]
    refs = [f"both:{name}" for name in names]
    shops_seen = 0
    for t in [
        T0 + timedelta(minutes=11, seconds=30),
        T0 + timedelta(minutes=20, seconds=1),
        T0 + timedelta(minutes=36),
    ]:
        s = t.replace(second=0, microsecond=0)
        online = store.get_online_features(refs, [{"user_id": u} for u in users], at=pd.Timestamp(t, tz="UTC"))
        frame = pd.DataFrame({"user_id": users, "event_timestamp": pd.Timestamp(t, tz="UTC")})
        training = store.get_historical_features(frame, refs)
        for i, user in enumerate(users):
            c = all_clicks[
                (all_clicks.user_id == user) & (all_clicks.ts >= s - timedelta(minutes=30)) & (all_clicks.ts < s)
            ]
            o = all_orders[
                (all_orders.user_id == user)
                & (all_orders.placed_at >= s - timedelta(minutes=30))
                & (all_orders.placed_at < s)
            ]
            if c.empty and o.empty:
                want: dict[str, object] = dict.fromkeys(names)
            else:
                want = {
                    "spend_5m": float(c[c.ts >= s - timedelta(minutes=5)].amount.sum()),
                    "orders_30m": len(o),
                    "order_total_10m": float(o[o.placed_at >= s - timedelta(minutes=10)].total.sum()),
                    "channel": c.sort_values("ts", kind="stable").iloc[-1].channel if len(c) else None,
                    "shop": o.sort_values("placed_at", kind="stable").iloc[-1].shop if len(o) else None,
                }
            for name in names:
                served, trained = online[name][i], _plain(training[name].iloc[i])
                assert served == trained, (t, user, name, served, trained)
                if isinstance(served, float):
                    assert math.isclose(served, want[name], rel_tol=1e-12, abs_tol=1e-9), (t, user, name, served, want)
                else:
                    assert served == want[name], (t, user, name, served, want[name])
            shops_seen += want["shop"] is not None and not c.empty and c.ts.max() > o.placed_at.max()
    assert shops_seen >= 4  # the case that matters: clicks after the last order, the shop kept


def test_a_naive_moment_is_utc_whatever_the_machine_clock_zone(
    stream_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``at`` without a zone means UTC, as an entity frame's timestamps do; on a machine set
    to New York it must not move five hours."""
    import time

    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        store = stream_store
        store.sync_stream("live", at=T0)  # naive: UTC
        click = {"click_id": 7001, "user_id": 42, "ts": T0 + timedelta(seconds=30), "amount": 3.5, "channel": "ads"}
        store.push("clicks", [click])
        t = T0 + timedelta(minutes=2)
        naive = store.get_online_features(["live:spend_5m", "live:clicks_1h"], [{"user_id": 42}], at=t)
        aware = store.get_online_features(
            ["live:spend_5m", "live:clicks_1h"], [{"user_id": 42}], at=t.replace(tzinfo=UTC)
        )
        # by hand: the click at T0 + 30 s is inside both windows at stamp T0 + 2 min
        assert naive == aware == {"user_id": [42], "spend_5m": [3.5], "clicks_1h": [1]}
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


def test_a_sync_adds_a_tiles_values_in_arrival_order_across_batches(stream_store: Store) -> None:
    """A replay (``sync_stream``) reads rows from several files; a tile's sum must add them in
    the order they arrived (the offline read's order), not in time order nor in whatever
    order a scan returns: (0.1 + 0.2) + 0.3 is 0.6000000000000001, 0.3 + 0.2 + 0.1 is 0.6."""
    store = stream_store
    tile = T0 + timedelta(minutes=1)

    def click(click_id: int, seconds: int, amount: float) -> dict[str, object]:
        return {
            "click_id": click_id,
            "user_id": 7,
            "ts": tile + timedelta(seconds=seconds),
            "channel": "seo",
            "amount": amount,
            "units": 1,
            "paid": True,
        }

    store.push("clicks", pd.DataFrame([click(501, 50, 0.1), click(502, 40, 0.2)]))  # first batch, later times
    store.push("clicks", pd.DataFrame([click(503, 10, 0.3)]))  # second batch, earliest time
    redis.Redis.from_url(store.online_url).flushall()  # served only through the replay below
    store.sync_stream("live", at=tile + timedelta(minutes=2))
    at = pd.Timestamp(tile + timedelta(minutes=2), tz="UTC")
    online = store.get_online_features(["live:spend_5m"], [{"user_id": 7}], at=at)
    training = store.get_historical_features(pd.DataFrame({"user_id": [7], "event_timestamp": [at]}), ["live:spend_5m"])
    assert (0.1 + 0.2) + 0.3 == 0.6000000000000001 != 0.3 + 0.2 + 0.1
    assert online["spend_5m"][0] == float(training["spend_5m"].iloc[0]) == 0.6000000000000001
