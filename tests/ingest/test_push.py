"""store.push: rows checked against the model, kept durably, idempotent by event id, and
seen by queries at once (issue 14, sections 1 and 2, for the Python way in)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from pantry import PantryError, Store
from tests.ingest.conftest import totals as _totals


def test_pushed_rows_are_queried_at_once_and_bad_rows_are_refused_with_reasons(store: Store) -> None:
    assert _totals(store) == (2, 12.5)
    result = store.push(
        "events",
        [
            {"event_id": 3, "customer_id": 10, "ts": "2026-11-30 10:00:05", "amount": 4.5},
            {"event_id": 4, "customer_id": 12, "ts": "2026-11-30 10:01:00", "amount": "lots"},
            {"event_id": None, "customer_id": 12, "ts": "2026-11-30 10:02:00", "amount": 1},
            {"event_id": 5, "customer_id": 12, "ts": "2026-11-30 10:03:00", "amount": 2, "colour": "red"},
            {"event_id": 6, "customer_id": 12, "ts": "2026-11-30 10:04:00", "amount": 3},
        ],
    )
    assert result.accepted == 2
    reasons = dict(result.refused)
    assert set(reasons) == {1, 2, 3}
    assert "'lots' is not a DOUBLE (column amount)" in reasons[1]
    assert "column 'event_id' has no value" in reasons[2]
    assert "unknown column 'colour'" in reasons[3]
    assert _totals(store) == (4, 12.5 + 4.5 + 3)


def test_the_same_event_twice_counts_once(store: Store) -> None:
    row = {"event_id": 9, "customer_id": 10, "ts": "2026-11-30 11:00:00", "amount": 1.25}
    store.push("events", [row])
    store.push("events", [row, row])  # redelivered, and twice in one batch
    store.push("events", pd.DataFrame([{**row, "ts": pd.Timestamp(row["ts"])}]))
    # an id from the declared source, pushed again with another amount: the first one stands
    store.push("events", [{"event_id": 1, "customer_id": 10, "ts": "2026-11-30 09:00:00", "amount": 99}])
    assert _totals(store) == (3, 12.5 + 1.25)


def test_a_push_is_durable_files_and_nothing_half_written(store: Store) -> None:
    store.push("events", [{"event_id": 20, "customer_id": 1, "ts": "2026-11-30 12:00:00", "amount": 1}])
    folder = store.home / "ingest" / "events"
    files = sorted(folder.iterdir())
    assert len(files) == 1 and files[0].suffix == ".parquet"
    # a batch with no good row writes nothing
    result = store.push("events", [{"event_id": "x", "customer_id": 1, "ts": "2026-11-30 12:00:00", "amount": 1}])
    assert result.accepted == 0 and len(sorted(folder.iterdir())) == 1
    # a fresh Store (a restart) sees what was pushed
    assert _totals(Store(defs=store.defs, home=store.home)) == (3, 13.5)


def test_only_models_that_declare_ingest_push_accept_rows(store: Store) -> None:
    with pytest.raises(PantryError, match=r"semantic model 'orders' does not accept pushed rows") as err:
        store.push("orders", [{"event_id": 30}])
    assert err.value.field == "ingest" and "ingest: push" in (err.value.hint or "")
    with pytest.raises(PantryError, match=r"'evnts' is not a semantic model \(did you mean 'events'\?\)"):
        store.push("evnts", [])


def test_http_push_needs_the_write_scope_and_answers_per_row(store: Store) -> None:
    from tests.conftest import Server

    rows = [
        {"event_id": 40, "customer_id": 1, "ts": "2026-11-30 13:00:00", "amount": 2.5},
        {"event_id": 41, "customer_id": 1, "ts": "yesterday", "amount": 1},
    ]
    with Server(store, api_keys="reader:read,writer:write+read") as http:
        assert http.post("/push/events", json=rows).status_code == 401
        refused = http.post("/push/events", json=rows, headers={"X-API-Key": "reader"})
        assert refused.status_code == 403 and "write" in refused.json()["detail"]
        done = http.post("/push/events", json=rows, headers={"X-API-Key": "writer"})
        assert done.status_code == 200, done.text
        body = done.json()
        assert body["accepted"] == 1
        assert body["refused"] == [{"row": 1, "reason": "'yesterday' is not a TIMESTAMP (column ts)"}]
        other = http.post("/push/orders", json=rows, headers={"X-API-Key": "writer"})
        assert other.status_code == 422 and "does not accept pushed rows" in other.json()["detail"]
        bad = http.post("/push/events", json={"not": "a list"}, headers={"X-API-Key": "writer"})
        assert bad.status_code == 422
    assert _totals(store) == (3, 15.0)


def test_pantry_push_a_csv_file(store: Store, tmp_path: Path) -> None:
    import subprocess
    import sys

    path = tmp_path / "more.csv"
    path.write_text("event_id,customer_id,ts,amount\n50,1,2026-11-30 14:00:00,1.5\n51,2,2026-11-30 14:01:00,oops\n")
    env = {"PANTRY_DEFS": str(store.defs), "PANTRY_HOME": str(store.home), "PATH": "/usr/bin:/bin"}
    pantry = str(Path(sys.executable).parent / "pantry")
    done = subprocess.run([pantry, "push", "events", str(path)], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stdout + done.stderr  # a refused row: exit 1, the good row kept
    said = done.stdout + done.stderr
    assert "1 row(s) pushed to events" in said and "row 2: 'oops' is not a DOUBLE (column amount)" in said
    assert "Traceback" not in said
    assert _totals(store) == (3, 14.0)
    missing = subprocess.run(
        [pantry, "push", "events", str(tmp_path / "nope.csv")], env=env, capture_output=True, text=True
    )
    assert missing.returncode == 1 and "nope.csv" in missing.stdout + missing.stderr


def test_with_the_offline_store_on_s3_batches_are_objects_there(store: Store, s3) -> None:  # noqa: ANN001
    """A push is durable in the offline store wherever it is: on S3, one object per batch
    under <prefix>/ingest/<model>/, read back through the cache, idempotent as locally."""
    uri = f"s3://{s3.new_bucket()}/store"
    on_s3 = Store(defs=store.defs, home=store.home, offline_uri=uri)
    row = {"event_id": 60, "customer_id": 1, "ts": "2026-11-30 16:00:00", "amount": 4}
    assert on_s3.push("events", [row]).accepted == 1
    on_s3.push("events", [row])
    bucket = uri.split("/")[2]
    keys = [o["Key"] for o in s3.client().list_objects_v2(Bucket=bucket, Prefix="store/ingest/events/")["Contents"]]
    assert len(keys) == 2 and all(k.endswith(".parquet") for k in keys)
    assert not (store.home / "ingest").exists()  # nothing kept only on this machine
    assert _totals(Store(defs=store.defs, home=store.home / "elsewhere", offline_uri=uri)) == (3, 16.5)


def test_a_large_csv_with_a_bad_value_far_down_is_one_refused_row(store: Store, tmp_path: Path) -> None:
    """Every column is read as text: a value that does not fit, past the first block a CSV
    reader would infer types from, is one refused row, not a crash."""
    import subprocess
    import sys

    rows = [f"{i},1,2026-11-30 14:00:00,1" for i in range(100, 80_100)]
    rows[-1] = "80099,1,2026-11-30 14:00:00,oops"
    path = tmp_path / "big.csv"
    path.write_text("event_id,customer_id,ts,amount\n" + "\n".join(rows) + "\n")
    assert path.stat().st_size > 2_000_000  # several of pyarrow's 1 MB blocks
    env = {"PANTRY_DEFS": str(store.defs), "PANTRY_HOME": str(store.home), "PATH": "/usr/bin:/bin"}
    pantry = str(Path(sys.executable).parent / "pantry")
    done = subprocess.run([pantry, "push", "events", str(path)], env=env, capture_output=True, text=True, timeout=300)
    said = done.stdout + done.stderr
    assert done.returncode == 1 and "Traceback" not in said, said
    assert "79999 row(s) pushed to events" in said and "row 80000: 'oops' is not a DOUBLE (column amount)" in said
    assert _totals(store) == (2 + 79_999, 12.5 + 79_999)


def test_pushes_from_many_threads_keep_their_own_rows_and_refusals(store: Store) -> None:
    """The HTTP server pushes from several threads through one Store, which shares one
    scratch DuckDB for checking rows: each push must check its own rows only."""
    from concurrent.futures import ThreadPoolExecutor

    def one(n: int) -> tuple[int, list[int]]:
        rows = [
            {"event_id": 1000 * n + i, "customer_id": n, "ts": "2026-11-30 12:00:00", "amount": n if i % 5 else "bad"}
            for i in range(50)
        ]
        result = store.push("events", rows)
        return result.accepted, sorted(i for i, _ in result.refused)

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(one, range(1, 17)))
    assert answers == [(40, list(range(0, 50, 5)))] * 16
    # 2 declared rows; each thread n kept 40 rows of amount n
    assert _totals(store) == (2 + 16 * 40, 12.5 + sum(40 * n for n in range(1, 17)))
