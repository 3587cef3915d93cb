"""Rows a hostile or careless client sends: refused with the reason, never stored wrong, and
never able to stop the stream (issue 23). Real redis-server, real DuckDB, real Parquet; the
stored values are read back here with pyarrow, not through Pantry."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pyarrow.parquet as pq
import pytest
import redis

from pantry import PantryError, Store
from pantry.ingest.stream import GROUP, StreamConsumer, dead_key, stream_key
from pantry.offline.batch_log import batches
from tests.conftest import Server
from tests.ingest.conftest import totals as _totals

KEY = stream_key("events")


def stored(store: Store) -> dict[int, dict[str, object]]:
    """Every pushed row, by event id, read straight from the batch files."""
    rows: dict[int, dict[str, object]] = {}
    for path in batches(store.home, "events"):
        for row in pq.read_table(path).to_pylist():
            rows.setdefault(row["event_id"], row)
    return rows


def _row(i: int, **values: object) -> dict[str, object]:
    return {"event_id": i, "customer_id": 7, "ts": "2026-11-30 10:00:00", "amount": 1.0, **values}


def test_values_that_would_be_stored_wrong_are_refused_or_converted(store: Store) -> None:
    soon = (datetime.now(UTC) + timedelta(seconds=60)).strftime("%Y-%m-%d %H:%M:%S")
    rows = [
        _row(1001, customer_id=1.5),  # fractional key: was stored as 2
        _row(1002, amount="nan"),
        _row(1003, amount="inf"),
        _row(1004, amount=float("nan")),  # raw NaN, as a JSON parser gives it
        _row(1005, amount=float("inf")),
        _row(1006, ts="2026-12-06T01:10:00+05:00"),  # converted to UTC, not cut
        _row(1007, item=["a", "b"]),
        {**_row(1008), "Amount": 2.0},  # amount and Amount
        _row(1009, ts="2200-01-01 00:00:00"),  # the future, beyond the skew
        _row(1010, ts=soon, customer_id="12"),  # a minute ahead: within the default skew
        _row(1011, customer_id="3.0"),  # whole, written with a point: its key is 3
        _row(1012, amount="1e400"),
    ]
    result = store.push("events", rows)
    reasons = dict(result.refused)
    assert set(reasons) == {0, 1, 2, 3, 4, 6, 7, 8, 11}, reasons
    assert reasons[0] == "'1.5' is not a whole number (column customer_id)"
    for i in (1, 3):
        assert reasons[i].startswith("'nan' is not a finite number (column amount")
    for i in (2, 4):
        assert reasons[i].startswith("'inf' is not a finite number (column amount")
    assert reasons[6] == "column 'item' holds a list; a value is one number, text or time"
    assert reasons[7] == "columns 'amount' and 'Amount' are both given; column names ignore case"
    assert reasons[8].startswith("event time 2200-01-01 00:00:00 is more than 300 s ahead of the server's clock")
    assert "'1e400' is not a finite number" in reasons[11] or "'1e400' is not a DOUBLE" in reasons[11]
    kept = stored(store)
    assert set(kept) == {1006, 1010, 1011}
    assert kept[1006]["ts"] == datetime(2026, 12, 5, 20, 10)  # 01:10 at +05:00 is 20:10 UTC the day before
    assert kept[1010]["customer_id"] == 12 and kept[1011]["customer_id"] == 3
    with pytest.raises(PantryError, match="no rows to push into 'events'"):
        store.push("events", [])


def test_a_poison_entry_is_dead_lettered_and_the_good_ones_behind_it_are_stored(store: Store, redis_server) -> None:
    client = redis.Redis.from_url(redis_server.url)
    client.xadd(KEY, {"event_id": "501", "customer_id": "7", "ts": "2026-11-30 15:00:00", "amount": b"\xff\xfebad"})
    client.xadd(KEY, {"event_id": "502", "customer_id": "7", "ts": "2026-11-30 15:00:01", "amount": "2"})
    client.xadd(KEY, {"event_id": "503", "customer_id": "7", "ts": "2026-11-30 15:00:02", "amount": "x" * 100_000})
    client.xadd(KEY, {"event_id": "504", "customer_id": "7", "ts": "2026-11-30 15:00:03", "amount": "3"})
    counts = StreamConsumer(store, ["events"], client, name="c1", block_ms=50).run(idle_rounds=3)
    assert (counts.accepted, counts.refused, counts.acked) == (2, 2, 4)
    assert _totals(store) == (4, 12.5 + 5)
    dead = {d[1][b"event_id"]: d[1] for d in client.xrange(dead_key("events"))}
    assert dead[b"501"][b"__reason"] == b"field 'amount' is not UTF-8 text (byte 0)"
    assert dead[b"501"][b"amount"] == b"\xff\xfebad"  # kept as it came, for whoever mends it
    assert dead[b"503"][b"__reason"].startswith(b"column 'amount' holds 100,000 characters; at most 65,536")
    assert len(dead[b"503"][b"amount"]) == 1_000  # a preview, not the whole field again
    assert client.xpending(KEY, GROUP)["pending"] == 0
    # a restart, and another consumer, have nothing left to choke on
    again = StreamConsumer(store, ["events"], client, name="c2", block_ms=50, claim_idle_ms=0).run(idle_rounds=2)
    assert again.acked == 0


def test_an_entry_that_crashed_consumers_too_often_is_dead_lettered(store: Store, redis_server) -> None:
    """A consumer that read an entry and died, six times over (XREADGROUP as that consumer,
    never acknowledged), as happens when the entry itself kills it."""
    client = redis.Redis.from_url(redis_server.url)
    StreamConsumer(store, ["events"], client, name="doomed", block_ms=50)  # makes the group
    client.xadd(KEY, {"event_id": "601", "customer_id": "7", "ts": "2026-11-30 15:10:00", "amount": "4"})
    client.xreadgroup(GROUP, "doomed", {KEY: ">"}, count=10)
    for _ in range(5):
        client.xreadgroup(GROUP, "doomed", {KEY: "0"}, count=10)
    assert client.xpending_range(KEY, GROUP, "-", "+", 10)[0]["times_delivered"] == 6
    client.xadd(KEY, {"event_id": "602", "customer_id": "7", "ts": "2026-11-30 15:10:01", "amount": "5"})
    counts = StreamConsumer(store, ["events"], client, name="doomed", block_ms=50).run(idle_rounds=2)
    assert (counts.accepted, counts.refused) == (1, 1)
    dead = client.xrange(dead_key("events"))
    assert dead[0][1][b"event_id"] == b"601"
    assert dead[0][1][b"__reason"].startswith(b"delivered more than 5 times without being stored")
    assert _totals(store) == (3, 12.5 + 5)


def test_pushes_over_http_refuse_with_reasons_and_hide_the_servers_files(store: Store) -> None:
    with Server(store) as http:
        body = (
            '[{"event_id": 701, "customer_id": 7, "ts": "2026-11-30 10:00:00", "amount": NaN},'
            ' {"event_id": 702, "customer_id": 7, "ts": "2026-11-30 10:00:00", "amount": Infinity},'
            ' {"event_id": 703, "customer_id": 7, "ts": "2026-11-30 10:00:00", "amount": 1e400},'
            ' {"event_id": 704, "customer_id": 7, "ts": "2026-11-30 10:00:00", "amount": 4}]'
        )
        reply = http.post("/push/events", content=body, headers={"content-type": "application/json"})
        assert reply.status_code == 200, reply.text
        answer = reply.json()
        assert answer["accepted"] == 1 and [r["row"] for r in answer["refused"]] == [0, 1, 2]
        assert all("is not a finite number" in r["reason"] for r in answer["refused"])
        empty = http.post("/push/events", json=[])
        assert empty.status_code == 422 and "no rows to push" in empty.text
        closed = http.post("/push/orders", json=[{"event_id": 1}])
        assert closed.status_code == 422
        detail = closed.json()["detail"]
        assert "semantic model 'orders' does not accept pushed rows" in detail and "(field 'ingest')" in detail
        assert ".yaml" not in detail and "line" not in detail and str(store.defs) not in detail
    assert json.dumps(answer)  # plain JSON, no NaN leaked back
    assert _totals(store) == (3, 12.5 + 4)


def test_a_wrong_ingestion_setting_is_named(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PANTRY_MAX_EVENT_SKEW", "soon")
    with pytest.raises(PantryError, match=r"PANTRY_MAX_EVENT_SKEW='soon' is not a positive number"):
        store.push("events", [_row(1301)])
    monkeypatch.setenv("PANTRY_MAX_EVENT_SKEW", "300")
    monkeypatch.setenv("PANTRY_MAX_FIELD_BYTES", "-1")
    with pytest.raises(PantryError, match=r"PANTRY_MAX_FIELD_BYTES='-1' is not a positive number"):
        store.push("events", [_row(1302)])
