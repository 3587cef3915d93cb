"""The offline store on a real S3 endpoint (moto_server over HTTP): its layout, and its errors.

The store's semantics (training reads, metric partitions, the push, drift) are tested by
the suites that run against both stores; here: what lands where, what replaces what, and
what a user sees when the bucket, the credentials or the endpoint are wrong.
"""

from __future__ import annotations

import io
import json
import os
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from pantry import PantryError, Store
from pantry.compile.view_plan import plan_view
from pantry.features.tiles import materialize
from pantry.offline.s3_store import STALE_AFTER_S
from pantry.offline.sources import connect
from tests.conftest import S3Endpoint, free_port
from tests.features.test_historical_oracle import build, generated_rows


@pytest.fixture
def s3_store(s3: S3Endpoint, tmp_path, monkeypatch: pytest.MonkeyPatch) -> tuple[Store, S3Endpoint, str]:  # noqa: ANN001
    bucket = s3.new_bucket()
    monkeypatch.setenv("PANTRY_OFFLINE_URI", f"s3://{bucket}/prod")
    store = build(tmp_path, generated_rows())
    return store, s3, bucket


def _keys(s3: S3Endpoint, bucket: str) -> dict[str, str]:
    listed = s3.client().list_objects_v2(Bucket=bucket).get("Contents", [])
    return {o["Key"]: o["ETag"] for o in listed}


def test_layout_is_hive_style_published_by_manifests_and_a_rerun_replaces_objects(
    s3_store: tuple[Store, S3Endpoint, str],
) -> None:
    store, s3, bucket = s3_store
    plan = plan_view(store.definitions, store.definitions.views["shopper"])
    source = connect(store.definitions)
    materialize(source, store.offline, plan, date(2024, 1, 8), date(2024, 1, 9))
    keys = _keys(s3, bucket)
    prefix = store.offline_uri.removeprefix(f"s3://{bucket}/")
    tiles = sorted(k for k in keys if k.endswith("part-0.parquet") and "/_" not in k)
    # the 7-day window of partition 01-08 reaches back to 01-02: tiles of days 02..09, one object each
    days_with_rows = sorted(
        {r.at.date() for r in generated_rows() if date(2024, 1, 2) <= r.at.date() <= date(2024, 1, 9)}
    )
    assert tiles == [f"{prefix}/features/shopper/date={d}/part-0.parquet" for d in days_with_rows]
    [manifest_key] = [k for k in keys if "/_manifests/" in k]
    manifest = json.loads(s3.client().get_object(Bucket=bucket, Key=manifest_key)["Body"].read())
    assert manifest["partitions"] == ["2024-01-08", "2024-01-09"]
    assert {d: manifest["tiles"][d] for d in manifest["tiles"]} == {
        d.isoformat(): keys[f"{prefix}/features/shopper/date={d}/part-0.parquet"].strip('"') for d in days_with_rows
    }
    assert store.materialized_partitions("shopper") == [date(2024, 1, 8), date(2024, 1, 9)]
    assert not (store.home / "pantry.duckdb").exists()  # nothing but the cache is local

    # the object of a day holds exactly that day's tiles, counted by hand from the source rows
    day = date(2024, 1, 5)
    body = s3.client().get_object(Bucket=bucket, Key=f"{prefix}/features/shopper/date={day}/part-0.parquet")["Body"]
    frame = pd.read_parquet(io.BytesIO(body.read()))
    rows = [r for r in generated_rows() if r.at.date() == day]
    assert sorted(frame["__key"].tolist()) == sorted({r.key for r in rows})
    assert int(frame["__rows"].sum()) == len(rows)

    # re-materializing 01-09 rewrites the tiles of its window in place, publishes a second
    # manifest, and the reads agree
    before = store.get_historical_features(None, ["shopper:revenue_7d"], start_time="2024-01-10", end_time="2024-01-10")
    materialize(source, store.offline, plan, date(2024, 1, 9), date(2024, 1, 9))
    again = _keys(s3, bucket)
    assert {k for k in again if "/_manifests/" not in k} == {k for k in keys if "/_manifests/" not in k}
    assert len([k for k in again if "/_manifests/" in k]) == 2
    after = store.get_historical_features(None, ["shopper:revenue_7d"], start_time="2024-01-10", end_time="2024-01-10")
    pd.testing.assert_frame_equal(before, after)
    source.close()


def test_tiles_written_but_not_published_are_not_read(s3_store: tuple[Store, S3Endpoint, str]) -> None:
    """A run that died after its tile PUTs and before its manifest left no partition behind."""
    store, s3, bucket = s3_store
    plan = plan_view(store.definitions, store.definitions.views["shopper"])
    prefix = store.offline_uri.removeprefix(f"s3://{bucket}/")
    source = connect(store.definitions)
    materialize(source, store.offline, plan, date(2024, 1, 8), date(2024, 1, 8))
    manifests = [k for k in _keys(s3, bucket) if "/_manifests/" in k]
    materialize(source, store.offline, plan, date(2024, 1, 12), date(2024, 1, 12))
    for key in _keys(s3, bucket):  # the second run's manifest is lost: as if it died before publishing
        if "/_manifests/" in key and key not in manifests:
            s3.client().delete_object(Bucket=bucket, Key=key)
    assert store.materialized_partitions("shopper") == [date(2024, 1, 8)]
    assert any(k.startswith(f"{prefix}/features/shopper/date=2024-01-12") for k in _keys(s3, bucket))
    source.close()


def test_the_cache_downloads_only_what_changed(s3_store: tuple[Store, S3Endpoint, str]) -> None:
    store, s3, bucket = s3_store
    plan = plan_view(store.definitions, store.definitions.views["shopper"])
    source = connect(store.definitions)
    materialize(source, store.offline, plan, date(2024, 1, 8), date(2024, 1, 8))
    con = duckdb.connect()
    store.offline.attach(con, views=["shopper"], metrics=[])
    tiles = lambda: sorted(  # noqa: E731
        p for p in (store.home / "cache").rglob("*.parquet") if p.is_file() and "_merged" not in str(p)
    )
    cached = tiles()
    stamps = {p: p.stat().st_mtime_ns for p in cached}
    assert len(cached) == len(
        {r.at.date() for r in generated_rows() if date(2024, 1, 2) <= r.at.date() <= date(2024, 1, 8)}
    )
    assert len(list((store.home / "cache").rglob("_merged/*.parquet"))) == 1
    time.sleep(0.01)
    materialize(source, store.offline, plan, date(2024, 1, 9), date(2024, 1, 9))
    store.get_historical_features(None, ["shopper:revenue_7d"], start_time="2024-01-10", end_time="2024-01-10")
    now = tiles()
    assert len(now) == len(cached) + 1  # day 09 is new; a day rewritten with the same bytes keeps its copy
    assert all(p.stat().st_mtime_ns == stamps[p] for p in now if p in stamps)
    merges = sorted((store.home / "cache").rglob("_merged/*.parquet"), key=lambda p: p.stat().st_mtime)
    # the replaced merge is kept a while (a reader that listed before may still open it) ...
    assert len(merges) == 2
    old = time.time() - STALE_AFTER_S - 1
    os.utime(merges[0], (old, old))
    materialize(source, store.offline, plan, date(2024, 1, 10), date(2024, 1, 10))
    store.get_historical_features(None, ["shopper:revenue_7d"], start_time="2024-01-11", end_time="2024-01-11")
    # ... and removed once it is older than that, when the next merge is built
    assert not merges[0].exists()
    assert len(list((store.home / "cache").rglob("_merged/*.parquet"))) == 2
    source.close()


def test_a_missing_bucket_is_a_clear_error_and_nothing_is_written(
    s3: S3Endpoint, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:  # noqa: ANN001
    monkeypatch.setenv("PANTRY_OFFLINE_URI", "s3://no-such-bucket/prod")
    store = build(tmp_path, generated_rows(n=30))
    plan = plan_view(store.definitions, store.definitions.views["shopper"])
    with pytest.raises(PantryError, match=r"bucket 'no-such-bucket' does not exist .*s3://no-such-bucket/prod"):
        materialize(connect(store.definitions), store.offline, plan, date(2024, 1, 8), date(2024, 1, 8))
    with pytest.raises(PantryError, match="bucket 'no-such-bucket' does not exist"):
        store.materialized_partitions("shopper")
    assert store.offline.kind == "s3" and not (store.home / "pantry.duckdb").exists()


def test_an_unreachable_endpoint_fails_fast_naming_the_uri(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    monkeypatch.setenv("PANTRY_OFFLINE_URI", "s3://lake/prod")
    store = build(tmp_path, generated_rows(n=30))
    started = time.monotonic()
    with pytest.raises(
        PantryError, match=r"cannot list objects on s3://lake/prod\S*: endpoint .* did not answer after 3"
    ):
        store.materialized_partitions("shopper")
    assert time.monotonic() - started < 30


@pytest.fixture
def s3_with_auth() -> Iterator[S3Endpoint]:
    """A second moto_server that checks credentials (it knows no access key at all)."""
    endpoint = S3Endpoint(env={"INITIAL_NO_AUTH_ACTION_COUNT": "0"})
    yield endpoint
    endpoint.close()


def test_wrong_credentials_are_named(s3_with_auth: S3Endpoint, tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_with_auth.url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAWRONGWRONGWRONG")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong")
    monkeypatch.setenv("PANTRY_OFFLINE_URI", "s3://lake/prod")
    store = build(tmp_path, generated_rows(n=30))
    with pytest.raises(PantryError, match=r"credentials were refused \(InvalidAccessKeyId\) .*s3://lake/prod"):
        store.materialized_partitions("shopper")
    with pytest.raises(PantryError, match="credentials were refused"):
        store.offline.check()


def test_the_cli_names_the_uri_without_a_traceback(s3: S3Endpoint, tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    import subprocess
    import sys

    store = build(tmp_path, generated_rows(n=30))
    done = subprocess.run(
        [sys.executable, "-m", "pantry.api.cli", "online", "push", "shopper", "--latest"],
        capture_output=True,
        text=True,
        env={
            "PANTRY_DEFS": str(store.defs),
            "PANTRY_HOME": str(store.home),
            "PANTRY_OFFLINE_URI": "s3://no-such-bucket/prod",
            "AWS_ENDPOINT_URL": s3.url,
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "PATH": "/usr/bin:/bin",
        },
        timeout=120,
    )
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert "bucket 'no-such-bucket' does not exist" in done.stderr and "s3://no-such-bucket/prod" in done.stderr


def test_a_view_with_no_rows_in_any_window_reads_as_nulls(s3_store: tuple[Store, S3Endpoint, str]) -> None:
    """Found by the property test: partitions published, no tile object at all (every day of
    their windows is empty). The read must give nulls, as from the local file, not fail."""
    store, s3, bucket = s3_store
    plan = plan_view(store.definitions, store.definitions.views["shopper"])
    source = connect(store.definitions)
    materialize(source, store.offline, plan, date(2023, 6, 1), date(2023, 6, 2))  # long before any row
    assert not [k for k in _keys(s3, bucket) if k.endswith("part-0.parquet")]
    got = store.get_historical_features(
        pd.DataFrame({"customer_id": [1], "event_timestamp": pd.to_datetime(["2023-06-03"])}), ["shopper:revenue_7d"]
    )
    assert got["revenue_7d"].isna().all()
    source.close()


def test_hostile_object_keys_neither_escape_the_cache_nor_reach_sql(
    s3_store: tuple[Store, S3Endpoint, str], tmp_path: Path
) -> None:
    """Anyone who can write to the bucket controls the keys Pantry lists: a '..' key is refused
    before anything is written outside the cache, and a view name with a quote stays a name."""
    store, s3, bucket = s3_store
    prefix = store.offline_uri.removeprefix(f"s3://{bucket}/")
    client = s3.client()
    # a view folder named like SQL, with a real manifest and tile copied into it: the catalog
    # lists every view folder, and the name must stay a quoted name
    plan = plan_view(store.definitions, store.definitions.views["shopper"])
    materialize(connect(store.definitions), store.offline, plan, date(2024, 1, 8), date(2024, 1, 8))
    hostile = 'x"; CREATE TABLE main.injected AS SELECT 1; --'
    for key in _keys(s3, bucket):
        if "/features/shopper/" in key:
            body = client.get_object(Bucket=bucket, Key=key)["Body"].read()
            client.put_object(Bucket=bucket, Key=key.replace("/features/shopper/", f"/features/{hostile}/"), Body=body)
    con = duckdb.connect()
    assert store.offline.attach(con)
    rows = con.execute(
        'SELECT count(*) FROM offline.features."x""; CREATE TABLE main.injected AS SELECT 1; --"'
    ).fetchall()
    assert rows[0][0] > 0
    assert not con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'injected'").fetchall()[0][0]
    # an object in a view's _manifests/ that Pantry did not write: named, not a traceback
    client.put_object(Bucket=bucket, Key=f"{prefix}/features/shopper/_manifests/zz-not-ours.json", Body=b"{}")
    with pytest.raises(PantryError, match="zz-not-ours.json' .* is not a manifest Pantry wrote"):
        store.materialized_partitions("shopper")
    client.delete_object(Bucket=bucket, Key=f"{prefix}/features/shopper/_manifests/zz-not-ours.json")
    # a '..' key under a view's manifests
    escape = tmp_path / "escaped.json"
    depth = len(str(store.home / "cache" / "s3" / bucket).split("/")) + 8
    client.put_object(
        Bucket=bucket,
        Key=f"{prefix}/features/shopper/_manifests/" + "../" * depth + str(escape).lstrip("/"),
        Body=b"{}",
    )
    with pytest.raises(PantryError, match="is not a plain path"):
        store.materialized_partitions("shopper")
    assert not escape.exists()
