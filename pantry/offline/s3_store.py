"""The offline store as Parquet on S3 (``PANTRY_OFFLINE_URI=s3://bucket/prefix``): production.

Layout, Hive-style, one object per partition::

    prefix/metrics/<metric>/date=2024-01-01/part-0.parquet     the metric's rows of that day
    prefix/features/<view>/date=2024-01-01/part-0.parquet      the view's tiles of that day
    prefix/features/<view>/_manifests/<time>-<id>.json          one per run: what it published
    prefix/features/<view>/_stats/date=2024-01-01/part-0.parquet  the stamp's feature figures
    prefix/tables/<name>/*.parquet                              plain tables (``source: <name>``)

Why this shape. A PUT of one object is atomic, so a reader sees a day's old rows or its
new rows, never half of them, and re-materializing a day replaces its object. A run writes
its tile objects first and then publishes them in a manifest of its own (the days it
wrote with their ETags, and the partitions it materialized): a reader merges the
manifests, newest last, so a partition is visible only once every tile it reads is, and
two runs never race on one shared object. Manifests never change, so a reader downloads
each once: a training read costs one LIST of the view's manifests.

Why a local cache. DuckDB's httpfs cannot be downloaded everywhere, so objects are read
with boto3 into ``<home>/cache/s3``, keyed by ETag: only changed objects are downloaded,
and a view's published tiles are merged into one local Parquet file (rebuilt when the
set of objects changes) that DuckDB scans as fast as a table. Nothing but that cache is
ever written locally; deleting it costs one download.

Why boto3 with bounded retries: a missing bucket, refused credentials or an unreachable
endpoint must fail within seconds with a sentence naming the URI, not hang a run.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import re
import time
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pantry.errors import PantryError
from pantry.offline.store import OfflineStore

if TYPE_CHECKING:
    from pantry.compile.view_plan import ViewPlan

ATTEMPTS = 3
CONNECT_TIMEOUT_S = 3.0
READ_TIMEOUT_S = 60.0
WORKERS = 16
T = TypeVar("T")


@dataclass(frozen=True)
class Listed:
    key: str
    etag: str
    modified: datetime


@dataclass
class ViewState:
    """What a view's manifests publish: the tiles' columns, each tile day's ETag (None: no
    rows that day) and each materialized partition with the time it was published."""

    columns: list[str] | None = None
    schema: str | None = None  # base64 of the tiles' Arrow schema
    tiles: dict[date, str | None] = field(default_factory=dict)
    partitions: dict[date, datetime] = field(default_factory=dict)


def sql_name(name: str) -> str:
    """A quoted identifier: view and metric names also come from S3 listings, which anyone
    who can write to the bucket controls."""
    return '"' + name.replace('"', '""') + '"'


def sql_text(text: str) -> str:
    """A quoted string literal (file paths in read_parquet and COPY)."""
    return "'" + text.replace("'", "''") + "'"


STALE_AFTER_S = 600  # a replaced cache file is kept this long: a reader that listed before may still open it
_ETAG = re.compile(r"[^A-Za-z0-9-]")


def _remove_stale(folder: Path, pattern: str, keep: Path) -> None:
    now = time.time()
    for stale in folder.glob(pattern):
        try:
            if stale != keep and now - stale.stat().st_mtime > STALE_AFTER_S:
                stale.unlink(missing_ok=True)
        except FileNotFoundError:
            continue


def split_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/prefix`` -> (bucket, prefix without slashes at the ends)."""
    rest = uri.removeprefix("s3://")
    bucket, _, prefix = rest.partition("/")
    if not bucket or not uri.startswith("s3://"):
        raise PantryError(
            f"PANTRY_OFFLINE_URI '{uri}' is not an S3 URI",
            field="PANTRY_OFFLINE_URI",
            hint="write it as s3://bucket/prefix, or unset it to use the local DuckDB file",
        )
    return bucket, prefix.strip("/")


def _day(text: str) -> date | None:
    try:
        return date.fromisoformat(text.removeprefix("date="))
    except ValueError:
        return None


def _parquet_bytes(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


def split_by_day(table: pa.Table, column: str, days: list[date]) -> dict[date, pa.Table]:
    """Every day of ``days`` -> its rows (possibly none), in one sort: O(rows log rows), not days x rows."""
    if table.num_rows:
        table = table.take(pc.sort_indices(table, [(column, "ascending")]))
    stamps = table.column(column).cast(pa.date32()).to_numpy(zero_copy_only=False).astype("datetime64[D]")
    wanted = np.array(days, dtype="datetime64[D]")
    lo = np.searchsorted(stamps, wanted, side="left")
    hi = np.searchsorted(stamps, wanted, side="right")
    return {d: table.slice(int(a), int(b - a)) for d, a, b in zip(days, lo, hi)}


def date_range(start: date, end: date) -> list[date]:
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


class S3Offline(OfflineStore):
    """Metric partitions, feature tiles and their bookkeeping as Parquet objects on S3."""

    kind = "s3"

    def __init__(self, uri: str, cache: Path) -> None:
        self.uri = uri.rstrip("/")
        self.bucket, self.prefix = split_uri(uri)
        self.cache = cache

    # -- plumbing -------------------------------------------------------------------
    @cached_property
    def client(self) -> Any:
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=os.environ.get("AWS_ENDPOINT_URL") or None,
            config=Config(
                retries={"max_attempts": ATTEMPTS, "mode": "standard"},
                connect_timeout=CONNECT_TIMEOUT_S,
                read_timeout=READ_TIMEOUT_S,
                max_pool_connections=WORKERS,
            ),
        )

    def key(self, *parts: str) -> str:
        return "/".join(p for p in (self.prefix, *parts) if p)

    def _call(self, doing: str, action: Callable[[], T]) -> T:
        """Run one S3 call (botocore retried it already); a failure becomes a sentence naming the URI."""
        from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

        endpoint = os.environ.get("AWS_ENDPOINT_URL") or "AWS"
        try:
            return action()
        except NoCredentialsError:
            raise PantryError(
                f"no AWS credentials to {doing} on {self.uri}",
                field="PANTRY_OFFLINE_URI",
                hint="set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or a profile) for this bucket",
            ) from None
        except ClientError as err:
            code = str(err.response.get("Error", {}).get("Code", ""))
            if code == "NoSuchBucket" or (code == "404" and "HeadBucket" in str(err)):
                raise PantryError(
                    f"bucket '{self.bucket}' does not exist ({doing} on {self.uri}, endpoint {endpoint})",
                    field="PANTRY_OFFLINE_URI",
                    hint=f"create it (aws s3 mb s3://{self.bucket}) or fix PANTRY_OFFLINE_URI",
                ) from None
            if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "403", "ExpiredToken"):
                raise PantryError(
                    f"the credentials were refused ({code}) to {doing} on {self.uri}, endpoint {endpoint}",
                    field="PANTRY_OFFLINE_URI",
                    hint="check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY and the bucket's policy",
                ) from None
            raise PantryError(
                f"S3 refused to {doing} on {self.uri} (endpoint {endpoint}): {code or err}",
                field="PANTRY_OFFLINE_URI",
                hint="check the URI, the endpoint and the credentials",
            ) from None
        except BotoCoreError as err:
            raise PantryError(
                f"cannot {doing} on {self.uri}: endpoint {endpoint} did not answer after {ATTEMPTS} attempts ({err})",
                field="PANTRY_OFFLINE_URI",
                hint="check AWS_ENDPOINT_URL and the network; nothing was written",
            ) from None

    def _parallel(self, doing: str, actions: list[Callable[[], Any]]) -> list[Any]:
        if not actions:
            return []
        with ThreadPoolExecutor(min(WORKERS, len(actions))) as pool:
            return [future.result() for future in [pool.submit(self._call, doing, a) for a in actions]]

    def list(self, under: str) -> list[Listed]:
        """Every object under ``prefix/under``, with its ETag (one paginated LIST)."""

        def run() -> list[Listed]:
            found: list[Listed] = []
            for page in self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=self.key(under)
            ):
                for item in page.get("Contents", []):
                    found.append(Listed(item["Key"], item["ETag"].strip('"'), item["LastModified"]))
            return found

        return self._call("list objects", run)

    def folders(self, under: str) -> list[str]:
        def run() -> list[str]:
            names: list[str] = []
            for page in self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=self.key(under) + "/", Delimiter="/"
            ):
                names += [p["Prefix"].rstrip("/").rsplit("/", 1)[-1] for p in page.get("CommonPrefixes", [])]
            return names

        return self._call("list objects", run)

    def _put(self, key: str, body: bytes) -> Callable[[], object]:
        return lambda: self.client.put_object(Bucket=self.bucket, Key=key, Body=body)

    def _delete(self, keys: list[str]) -> None:
        for i in range(0, len(keys), 1000):
            chunk = [{"Key": k} for k in keys[i : i + 1000]]
            self._call(
                "delete objects", lambda c=chunk: self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": c})
            )

    def check(self) -> str:
        self._call("reach the bucket", lambda: self.client.head_bucket(Bucket=self.bucket))
        return "ok"

    def exists(self) -> bool:
        return True

    def cached(self, objects: list[Listed], suffix: str = ".parquet") -> list[str]:
        """Local copies of ``objects``, downloading only those whose ETag is not cached yet."""
        paths: list[str] = []
        missing: list[tuple[Listed, Path]] = []
        for obj in objects:
            path = self.cache_path(obj.key) / f"{_ETAG.sub('_', obj.etag)}{suffix}"
            paths.append(str(path))
            if not path.exists():
                missing.append((obj, path))

        def fetch(obj: Listed, path: Path) -> None:
            path.parent.mkdir(parents=True, exist_ok=True)
            body = self.client.get_object(Bucket=self.bucket, Key=obj.key)["Body"].read()
            partial = path.with_name(f"{path.name}.{os.getpid()}.{uuid.uuid4().hex[:6]}.part")
            partial.write_bytes(body)
            partial.replace(path)  # a reader never sees half a cached file
            _remove_stale(path.parent, f"*{suffix}", path)

        self._parallel("download objects", [lambda o=o, p=p: fetch(o, p) for o, p in missing])
        return paths

    def cache_path(self, key: str) -> Path:
        """Where an object's copies live: its key under the cache, refused if it could leave it
        (a key such as 'a/../../x' in a shared bucket must not write outside the cache)."""
        parts = key.split("/")
        if any(p in ("", ".", "..") for p in parts):
            raise PantryError(
                f"object key '{key}' in {self.uri} is not a plain path (empty, '.' or '..' segments)",
                field="PANTRY_OFFLINE_URI",
                hint="remove that object from the bucket; Pantry writes only plain keys",
            )
        return self.cache.joinpath(self.bucket, *parts)

    def _schema(self, objects: list[Listed]) -> list[str] | None:
        parts = [o for o in objects if o.key.endswith("/part-0.parquet")]
        if not parts:
            return None
        newest = max(parts, key=lambda o: o.modified)
        return pq.read_schema(self.cached([newest])[0]).names

    # -- writes ---------------------------------------------------------------------
    def replace_metric_days(self, name: str, frame: pd.DataFrame, start: date, end: date) -> int:
        """Days ``start..end`` of the metric, one object each (empty days too: the day was computed)."""
        from pantry.compile.sql import DAY

        if self.warehouse is not None:  # an engine keeps the metric's days (issue 28)
            return self.warehouse.replace_metric_days(name, frame, start, end)

        existing = self._schema(self.list(f"metrics/{name}/"))
        if existing is not None and existing != list(frame.columns):
            raise PantryError(
                f"stored metric '{name}' on {self.uri} has columns {existing}, the definition now gives {list(frame.columns)}",
                definition=f"metric '{name}'",
                field="dimensions",
                hint=f"the definition changed shape; delete {self.uri}/metrics/{name}/ and backfill",
            )
        table = pa.Table.from_pandas(frame, preserve_index=False)
        by_day = split_by_day(table, DAY, date_range(start, end))
        puts = [
            self._put(self.key("metrics", name, f"date={d}", "part-0.parquet"), _parquet_bytes(t))
            for d, t in by_day.items()
        ]
        self._parallel(f"write metric '{name}'", puts)
        return len(frame)

    def write_tiles(self, plan: ViewPlan, tiles: pa.Table, lo: date, hi: date, start: date, end: date) -> int:
        """Tiles of days ``lo..hi``, one object a day, then a manifest that publishes them
        with partitions ``start..end``: a reader sees the run whole or not at all."""
        view = plan.view.name
        state = self.view_state(view)
        if state.columns is not None and state.columns != tiles.column_names:
            # the view's shape changed: its tiles and marks are rebuilt from here, as in the local store
            self._delete([o.key for o in self.list(f"features/{view}/")])
        by_day = split_by_day(tiles, "__day", date_range(lo, hi))
        full = {d: t for d, t in by_day.items() if t.num_rows}
        puts = [
            self._put(self.key("features", view, f"date={d}", "part-0.parquet"), _parquet_bytes(t))
            for d, t in full.items()
        ]
        replies = self._parallel(f"write the tiles of feature view '{view}'", puts)
        etags = {d.isoformat(): r["ETag"].strip('"') for d, r in zip(full, replies)}
        empty = [d for d in by_day if d not in full]
        self._delete([self.key("features", view, f"date={d}", "part-0.parquet") for d in empty])
        written = datetime.now(UTC)
        manifest = {
            "view": view,
            "columns": tiles.column_names,
            # the tiles' Arrow schema: a view whose every day is empty still reads as a typed table
            "schema": base64.b64encode(tiles.schema.serialize().to_pybytes()).decode(),
            "partitions": [start.isoformat(), end.isoformat()],
            "tiles": {d.isoformat(): etags.get(d.isoformat()) for d in by_day},
            "written_at": written.isoformat(),
        }
        name = f"{written.strftime('%Y%m%dT%H%M%S%fZ')}-{uuid.uuid4().hex[:8]}.json"
        body = json.dumps(manifest).encode()
        self._call(
            f"publish the partitions of feature view '{view}'",
            self._put(self.key("features", view, "_manifests", name), body),
        )
        return tiles.num_rows

    def view_state(self, view: str) -> ViewState:
        """The view as its manifests publish it: newest manifest wins, day by day.

        Manifests never change once written (each has a name of its own), so each is
        downloaded once; a read costs one LIST of the view's manifests."""
        listed = sorted(
            (o for o in self.list(f"features/{view}/_manifests/") if o.key.endswith(".json")), key=lambda o: o.key
        )
        state = ViewState()
        for obj, path in zip(listed, self.cached(listed, suffix=".json")):
            try:
                manifest = json.loads(Path(path).read_text())
                columns, schema = list(manifest["columns"]), manifest.get("schema")
                first, last = (date.fromisoformat(d) for d in manifest["partitions"])
                written = datetime.fromisoformat(manifest["written_at"])
                tiles = {date.fromisoformat(day): etag for day, etag in manifest["tiles"].items()}
            except (ValueError, KeyError, TypeError, AttributeError) as err:
                raise PantryError(
                    f"'{obj.key}' in {self.uri} is not a manifest Pantry wrote ({type(err).__name__}: {err})",
                    field="PANTRY_OFFLINE_URI",
                    hint="remove that object; a view's _manifests/ folder holds only Pantry's manifests",
                ) from None
            state.columns, state.schema = columns, schema
            for day in date_range(first, last):
                state.partitions[day] = written
            state.tiles.update(tiles)
        return state

    def write_stats(self, view: str, day: date, stats: dict[str, dict[str, float | int | None]]) -> None:
        rows = [
            {
                "view": view,
                "feature": feature,
                "day": day,
                "rows": s["rows"],
                "entities_present": s["entities_present"],
                "null_rate": s["null_rate"],
                "mean": s["mean"],
                "min": s["min"],
                "max": s["max"],
                "distinct_count": s["distinct"],
                "recorded_at": datetime.now(UTC),
            }
            for feature, s in stats.items()
        ]
        schema = pa.schema(
            [
                ("view", pa.string()),
                ("feature", pa.string()),
                ("day", pa.date32()),
                ("rows", pa.int64()),
                ("entities_present", pa.int64()),
                ("null_rate", pa.float64()),
                ("mean", pa.float64()),
                ("min", pa.float64()),
                ("max", pa.float64()),
                ("distinct_count", pa.int64()),
                ("recorded_at", pa.timestamp("us", tz="UTC")),
            ]
        )
        body = _parquet_bytes(pa.Table.from_pylist(rows, schema=schema))
        key = self.key("features", view, "_stats", f"date={day}", "part-0.parquet")
        self._call(f"write the figures of feature view '{view}'", self._put(key, body))

    # -- reads ----------------------------------------------------------------------
    def attach(
        self,
        con: duckdb.DuckDBPyConnection,
        views: Iterable[str] | None = None,
        metrics: Iterable[str] | None = None,
        tables: Iterable[str] | None = None,
    ) -> bool:
        """An in-memory ``offline`` database with the local DuckDB store's names, over cached objects.

        ``views``/``metrics`` limit what is listed (None: all of them), so a training read of
        one view costs one LIST of that view. Returns True: an S3 store always answers.
        """
        view_names = self.folders("features") if views is None else list(views)
        metric_names = self.folders("metrics") if metrics is None else list(metrics)
        con.execute("ATTACH ':memory:' AS offline")
        con.execute("CREATE SCHEMA offline.features")
        con.execute("CREATE SCHEMA offline.metrics")
        con.execute(
            "CREATE TABLE offline.features.pantry_partitions (view VARCHAR, day DATE, materialized_at TIMESTAMPTZ)"
        )
        con.execute(
            "CREATE TABLE offline.metrics.pantry_materializations (asset VARCHAR, partition_start DATE, "
            "partition_end DATE, rows BIGINT, materialized_at TIMESTAMPTZ)"
        )
        marks: list[list[object]] = []
        for view in view_names:
            state = self.view_state(view)
            marks += [[view, day, at] for day, at in sorted(state.partitions.items())]
            tiles = [
                Listed(self.key("features", view, f"date={day}", "part-0.parquet"), etag, datetime.min)
                for day, etag in sorted(state.tiles.items())
                if etag is not None
            ]
            if tiles:
                con.execute(
                    f"CREATE VIEW offline.features.{sql_name(view)} AS SELECT * FROM read_parquet({sql_text(self._merged(view, tiles))})"
                )
            elif state.schema:  # published partitions, and no rows in any of their windows
                empty = pa.ipc.read_schema(pa.py_buffer(base64.b64decode(state.schema))).empty_table()
                con.register("__pantry_empty", empty)
                con.execute(f"CREATE TABLE offline.features.{sql_name(view)} AS SELECT * FROM __pantry_empty")
                con.unregister("__pantry_empty")
        if marks:  # columnar: 2,406 partitions are one insert, not 2,406
            rows = pa.table(
                {
                    "view": pa.array([m[0] for m in marks], pa.string()),
                    "day": pa.array([m[1] for m in marks], pa.date32()),
                    "at": pa.array([m[2] for m in marks], pa.timestamp("us", tz="UTC")),
                }
            )
            con.register("__pantry_marks", rows)
            con.execute("INSERT INTO offline.features.pantry_partitions SELECT * FROM __pantry_marks")
            con.unregister("__pantry_marks")
        stats = [o for view in (view_names if views is None else []) for o in self.list(f"features/{view}/_stats/")]
        if stats:
            self._view(con, "offline.features.pantry_feature_stats", self.cached(stats))
        logs: list[list[object]] = []
        for metric in metric_names:
            parts = [o for o in self.list(f"metrics/{metric}/") if o.key.endswith("/part-0.parquet")]
            if parts:
                self._view(con, f"offline.metrics.{sql_name(metric)}", self.cached(parts))
            for obj in parts:
                day = _day(obj.key.rsplit("/", 2)[-2])
                if day is not None:
                    logs.append([f"metrics/{metric}", day, day, None, obj.modified])
        if logs:
            rows = pa.table(
                {
                    "asset": pa.array([r[0] for r in logs], pa.string()),
                    "start": pa.array([r[1] for r in logs], pa.date32()),
                    "end": pa.array([r[2] for r in logs], pa.date32()),
                    "rows": pa.array([None] * len(logs), pa.int64()),
                    "at": pa.array([r[4] for r in logs], pa.timestamp("us", tz="UTC")),
                }
            )
            con.register("__pantry_logs", rows)
            con.execute("INSERT INTO offline.metrics.pantry_materializations SELECT * FROM __pantry_logs")
            con.unregister("__pantry_logs")
        return True

    def _merged(self, view: str, tiles: list[Listed]) -> str:
        """One local Parquet file of all the view's published tiles, rebuilt only when the set of
        objects changes: DuckDB scans one file, not one per day (the reads' speed comes from this)."""
        digest = hashlib.sha256("".join(f"{t.key}={t.etag};" for t in tiles).encode()).hexdigest()[:20]
        folder = self.cache_path(self.key("features", view, "_merged"))
        merged = folder / f"{digest}.parquet"
        if merged.exists():
            return str(merged)
        files = self.cached(tiles)
        folder.mkdir(parents=True, exist_ok=True)
        partial = folder / f"{digest}.{os.getpid()}.{uuid.uuid4().hex[:6]}.part"
        con = duckdb.connect()
        try:
            listed = ", ".join(sql_text(f) for f in files)
            con.execute(
                f"COPY (SELECT * FROM read_parquet([{listed}], hive_partitioning = false) ORDER BY __key, __day) "
                f"TO {sql_text(str(partial))} (FORMAT parquet, ROW_GROUP_SIZE 122880)"
            )
        finally:
            con.close()
        partial.replace(merged)  # another process may have built the same file: either copy is whole
        _remove_stale(folder, "*.parquet", merged)
        return str(merged)

    @staticmethod
    def _view(con: duckdb.DuckDBPyConnection, name: str, paths: list[str]) -> None:
        listed = ", ".join(sql_text(p) for p in paths)
        con.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet([{listed}], hive_partitioning = false)")

    def source_files(self) -> list[str]:
        """A source URI (one object, or a prefix of Parquet objects) as local cached files."""
        objects = [
            o
            for o in self.list("")
            if (o.key == self.prefix or o.key.startswith(self.prefix.rstrip("/") + "/") or not self.prefix)
            and o.key.lower().endswith((".parquet", ".pq"))
        ]
        if not objects:
            raise PantryError(
                f"no Parquet object at {self.uri}",
                field="source",
                hint="check the URI: it names one Parquet object or a folder of them",
            )
        return self.cached(sorted(objects, key=lambda o: o.key))

    def register_table(self, con: duckdb.DuckDBPyConnection, name: str, target: str, extra: str) -> bool:
        """A plain table under ``prefix/tables/<name>/``, registered as an Arrow table (a locked
        query connection reads no files, so the rows are handed over, not a path)."""
        objects = [o for o in self.list(f"tables/{name}/") if o.key.endswith(".parquet")]
        if not objects:
            return False
        paths = sorted(self.cached(objects))
        table = pq.ParquetDataset(paths).read() if len(paths) > 1 else pq.read_table(paths[0])
        table = table.append_column("rowid", pa.array(np.arange(table.num_rows, dtype=np.int64)))
        registered = f"__table_{name}"
        con.register(registered, table)
        con.execute(f"CREATE OR REPLACE VIEW {target} AS SELECT * EXCLUDE (rowid), {extra} FROM {sql_name(registered)}")
        return True
