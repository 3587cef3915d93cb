"""Spark as an engine, through Spark Connect (``PANTRY_ENGINE=sc://host:15002``): SQL in, Arrow out.

Why Spark Connect: it is the client pyspark ships, a thin gRPC one with no JVM on Pantry's
side, and every managed Spark (Databricks, EMR, Dataproc) speaks it. Pantry sends the SQL
the compiler rendered for Spark; the cluster plans it into tasks over its workers; only the
answer comes back, as Arrow batches.

Where Pantry's own tables live. A warehouse keeps them in a schema; Spark keeps them as
Hive-partitioned Parquet under the offline store's location (``location``: a directory
every worker reaches, or ``s3a://``)::

    <location>/<schema>/<table>/<day>=2024-01-01/__run=r<time>-<id>/part-*.parquet
    <location>/<schema>/pantry_materializations/part-*.parquet   one row per day per run

Why runs and a log, the S3 store's publish rule: a backfill writes its days into a run
directory no reader looks at, and Spark's commit moves the task files in only when every
task succeeded; then one more small write appends the run's rows to the log (a file the
client renames into the log's folder when it sees it, else a job on the cluster). A reader
takes, for each day, the newest run the log names, so a day is visible only once all of it
is written, a rerun replaces it, and a run that fails (a worker lost for good, the client
killed) publishes nothing. Superseded runs stay on disk until a lifecycle rule removes them.

Why double-quoted identifiers on: Pantry's engine SQL quotes names the standard way
(``"pantry_features"."view"``); Spark 4 reads them so with
``spark.sql.ansi.doubleQuotedIdentifiers``, and sqlglot's Spark SQL quotes with backticks,
so both kinds of text run unchanged.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pyarrow as pa
import pyarrow.parquet as pq

from pantry.engines import uploads
from pantry.engines.base import Engine
from pantry.engines.names import literal, quoted
from pantry.errors import PantryError, QueryFailed, QueryTimeout

# Every session made, kept until the process ends. Why: pyspark's SparkSession.__del__ closes
# its client, which shuts down a thread pool shared by every session of the process; run by
# the garbage collector in the middle of another session's gRPC call, it waits on that call
# forever (seen here: a test's engine collected while the next test queried).
_SESSIONS: list[Any] = []
LOG = "pantry_materializations"
RUN = "__run"
RETRIES = 3  # a Connect server that does not answer: asked this often over about 3 s, then refused
SESSION_CONF = {
    "spark.sql.session.timeZone": "UTC",  # naive timestamps are UTC everywhere in Pantry
    "spark.sql.ansi.doubleQuotedIdentifiers": "true",
    "spark.sql.sources.partitionOverwriteMode": "static",
}


def masked(url: str) -> str:
    """``sc://host:15002/;token=***``: a Connect URL's token never reaches a log or an error."""
    if ";" not in url:
        return url
    head, *params = url.split(";")
    shown = [p if not p.lower().startswith(("token=", "password=")) else p.split("=", 1)[0] + "=***" for p in params]
    return ";".join([head, *shown])


def _error_class(err: Exception) -> str:
    getter = getattr(err, "getCondition", None)
    try:
        return str(getter() or "") if getter else ""
    except Exception:  # noqa: BLE001 - an error without a condition
        return ""


def _line(err: Exception) -> str:
    """The sentence of a pyspark error: its first line, or a gRPC failure's ``details``."""
    text = str(err).strip()
    if not text:
        return type(err).__name__
    for line in text.splitlines():  # "<_MultiThreadedRendezvous of RPC that terminated with: ..."
        if line.strip().startswith("details = "):
            return line.strip().removeprefix("details = ").strip('"')
    return text.split("\n\nJVM stacktrace")[0].splitlines()[0]


def _unavailable(err: Exception) -> bool:
    from pyspark.errors.exceptions.base import RetriesExceeded
    from pyspark.errors.exceptions.connect import SparkConnectGrpcException

    if isinstance(err, RetriesExceeded):
        return True
    text = str(err)
    return isinstance(err, SparkConnectGrpcException | ConnectionError) and (
        _error_class(err) == "RETRIES_EXCEEDED"
        or any(sign in text for sign in ("RETRIES_EXCEEDED", "UNAVAILABLE", "Connection refused"))
    )


def _naive(table: pa.Table) -> pa.Table:
    """Timestamps as naive UTC, as DuckDB and PostgreSQL answer them (the session's zone is UTC)."""
    fields, changed = [], False
    for field in table.schema:
        if pa.types.is_timestamp(field.type) and field.type.tz is not None:
            fields.append(pa.field(field.name, pa.timestamp(field.type.unit), field.nullable))
            changed = True
        else:
            fields.append(field)
    return table.cast(pa.schema(fields)) if changed else table


def _unordered(sql: str) -> str:
    """``sql`` without its outermost ORDER BY: rows being written have no order, and on Spark
    each sort is a sampling job and a shuffle more, per day of a backfill."""
    import sqlglot

    tree = sqlglot.parse_one(sql, read="spark")
    if tree.args.get("order") is None:
        return sql
    tree.set("order", None)
    return tree.sql("spark")


def _sql(session: Any, sql: str, views: dict[str, Any] | None = None) -> Any:
    """A DataFrame of ``sql``, parsed by the server when it runs, with ``views`` (name to
    DataFrame) named in the same request.

    Why not ``session.sql``: it sends the text to be parsed and analyzed at once (a round
    trip), ``toArrow`` asks for the schema (another), and an uploaded frame's temporary view
    is created and dropped (two more): five requests where one does. Each analysis costs the
    Connect server CPU; measured here, one request per query took its share from 0.17 to
    0.13 CPU s and a query's time from 250 to 210 ms. These are pyspark's own plan classes,
    the ones ``session.sql`` builds; pyspark is pinned (``pantry[spark]``) and the Spark
    tests run every path through here."""
    from pyspark.sql.connect.dataframe import DataFrame
    from pyspark.sql.connect.plan import SQL, SubqueryAlias

    return DataFrame(SQL(sql, views=[SubqueryAlias(f._plan, name) for name, f in (views or {}).items()]), session)


def _arrow(frame: Any) -> pa.Table:
    """``frame``'s rows as Arrow typed as Spark's schema says, from the one execute request
    (``toArrow`` first asks for the schema in a request of its own, then does the same)."""
    from pyspark.sql.pandas.types import to_arrow_schema

    table, schema = frame._to_table()
    return table.cast(to_arrow_schema(schema, error_on_duplicated_field_names_in_struct=True)) if schema else table


#: entity rows past which a training read's frame is staged as Parquet, not sent through the driver
STAGE_ROWS = 1_000_000
#: Parquet bytes of a view's newest runs up to which it is broadcast beside a staged frame
BROADCAST_BYTES = 32 << 20


class SparkEngine(Engine):
    """A Spark cluster behind a Spark Connect server; Pantry's tables under ``location``."""

    dialect = "spark"
    # the day is a directory and implies the stamp; comparing the stamp too cast every view
    # row's from timestamp_ntz and sorted on a third key: 2.6 s of an 18.2 s million-row
    # write over 30 days at TPC-H scale 10 (interleaved, three rounds), answers equal
    joins_on_stamp = False
    double_type = "DOUBLE"
    writes_training_sets = True

    def __init__(self, url: str, location: str) -> None:
        self.url = url
        self.location = location.rstrip("/")
        self._session: Any = None

    @property
    def shown(self) -> str:
        return masked(self.url)

    def session(self) -> Any:
        """The Connect session, made once; bounded retries, so a server that is down is a
        clear error in seconds, not pyspark's ten minutes of patience."""
        if self._session is None:
            from pyspark.errors.exceptions.base import PySparkException
            from pyspark.sql import SparkSession
            from pyspark.sql.connect.client.retries import DefaultPolicy

            logging.getLogger("SQLQueryContextLogger").setLevel(logging.CRITICAL)  # errors are ours to explain
            # a released query's clean-up retried against a server that is gone is not news
            logging.getLogger("pyspark.sql.connect.logging").setLevel(logging.ERROR)
            try:
                session = SparkSession.builder.remote(self.url).create()
                _SESSIONS.append(session)
            except (PySparkException, ValueError) as err:
                raise PantryError(
                    f"'{self.shown}' is not a Spark Connect URL Pantry can use: {_line(err)}",
                    field="engine",
                    hint="write sc://host:15002 (a Databricks workspace adds ;token=... and ;x-databricks-cluster-id=...)",
                ) from None
            session.client.set_retry_policies(
                [
                    DefaultPolicy(
                        max_retries=RETRIES, initial_backoff=200, backoff_multiplier=2.0, max_backoff=2000, jitter=100
                    )
                ]
            )
            try:
                for key, value in SESSION_CONF.items():
                    session.conf.set(key, value)
            except Exception as err:
                session.stop()
                raise self._explained(err, None) from None
            self._session = session
        return self._session

    def _explained(self, err: Exception, timeout: float | None) -> PantryError:
        condition, line = _error_class(err), _line(err)
        if _unavailable(err):
            return PantryError(
                f"cannot reach Spark Connect at {self.shown} ({RETRIES} retries): {self._cause(err)[:300]}",
                field="engine",
                hint="is the Connect server running and listening there? PANTRY_ENGINE names it",
            )
        if condition.startswith("OPERATION_CANCELED") or "OPERATION_CANCELED" in line:
            return QueryTimeout(
                f"the query ran longer than {timeout or 0:g} s on {self.shown} and was stopped",
                field="where",
                hint="narrow it with --start-time/--end-time, fewer group-by names or a where; "
                "PANTRY_QUERY_TIMEOUT sets the limit",
            )
        if condition in ("TABLE_OR_VIEW_NOT_FOUND", "PATH_NOT_FOUND"):
            return PantryError(
                f"{self.shown}: {line}",
                field="source",
                hint="create the table, or point the model's source at a Parquet path every worker reaches",
            )
        if condition.startswith("UNRESOLVED_COLUMN"):
            return PantryError(
                f"{self.shown}: {line}",
                field="expr",
                hint="the table has no such column: fix the definition's expr, or the table",
            )
        return QueryFailed(f"the engine {self.shown} failed on the query: {line[:500]}")

    @staticmethod
    def _cause(err: BaseException) -> str:
        """The last error under pyspark's "retries exceeded": what the server (or its absence) said."""
        while err.__cause__ is not None or err.__context__ is not None:
            err = err.__cause__ or err.__context__  # type: ignore[assignment]
        text = str(getattr(err, "details", lambda: "")() if callable(getattr(err, "details", None)) else err)
        return text.splitlines()[0] if text.strip() else type(err).__name__

    def _collect(self, frame: Any, timeout: float | None = None) -> pa.Table:
        """``frame``'s rows as Arrow, stopped by the server after ``timeout`` seconds."""
        session = self.session()
        tag = f"pantry-{uuid.uuid4().hex[:12]}"
        timer = None
        session.addTag(tag)
        try:
            if timeout:
                timer = threading.Timer(timeout, lambda: session.interruptTag(tag))
                timer.daemon = True
                timer.start()
            return _naive(_arrow(frame))
        except Exception as err:
            raise self._explained(err, timeout) from None
        finally:
            if timer is not None:
                timer.cancel()
            session.removeTag(tag)

    def _frame(self, make: Callable[[Any], Any], timeout: float | None = None) -> Any:
        """``make(session)``: a DataFrame, with pyspark's failure explained as one PantryError."""
        try:
            return make(self.session())
        except PantryError:
            raise
        except Exception as err:
            raise self._explained(err, timeout) from None

    def run(self, sql: str, timeout: float | None = None) -> pa.Table:
        return self._collect(self._frame(lambda session: _sql(session, sql), timeout), timeout)

    # -- Pantry's own tables ---------------------------------------------------------

    def path(self, schema: str, table: str) -> str:
        return f"{self.location}/{schema}/{table}"

    def _published(self, schema: str, where: str) -> str:
        """Each day's newest run of each table, among the log's rows that match ``where``:
        ``(__d, __t, __r)``. One statement for the readers' join, the pins and the days."""
        return (
            f"SELECT d AS __d, table_name AS __t, max({RUN}) AS __r FROM (SELECT explode(sequence(partition_start, "
            f"partition_end)) AS d, table_name, {RUN} FROM parquet.{quoted(self.path(schema, LOG))} WHERE {where}) "
            "GROUP BY d, table_name"
        )

    def _published_rows(self, schema: str, where: str) -> list[dict]:
        """``_published`` read; none when nothing was written under ``schema`` yet (no log)."""
        try:
            return self.run(self._published(schema, where)).to_pylist()
        except PantryError as err:
            if "PATH_NOT_FOUND" in err.message:
                return []
            raise

    def table(self, schema: str, table: str, day: str) -> str:
        """The table as readers see it: only the published run of each day."""
        return (
            f"(SELECT t.* FROM parquet.{quoted(self.path(schema, table))} AS t "
            f"LEFT SEMI JOIN ({self._published(schema, f'table_name = {literal(table)}')}) AS p ON t.{quoted(day)} = p.__d AND t.{RUN} = p.__r)"
        )

    def pinned_table(self, schema: str, table: str, day: str) -> str:
        """The published runs read first (one small statement over the log), then named in a
        filter on the two partition columns: Spark lists and reads only those directories,
        where ``table``'s join to the log reads every run's files and then drops the old ones.
        A run published after this call is not seen by the read that uses it (as a snapshot)."""
        return self._pinned(schema, table, day, self._published_rows(schema, f"table_name = {literal(table)}"))

    def _pinned(self, schema: str, table: str, day: str, published: list[dict]) -> str:
        """``pinned_table``'s SQL for the log's rows ``published`` (``__d``: a day, ``__r``: its newest run)."""
        runs: dict[str, list[str]] = {}
        for row in published:
            runs.setdefault(row["__r"], []).append(f"DATE '{row['__d']}'")
        if not runs:
            return self.table(schema, table, day)
        kept = " OR ".join(
            f"(t.{RUN} = {literal(run)} AND t.{quoted(day)} IN ({', '.join(days)}))"
            for run, days in sorted(runs.items())
        )
        return f"(SELECT t.* FROM parquet.{quoted(self.path(schema, table))} AS t WHERE {kept})"

    def pinned_days(self, schema: str, asset: str, table: str, day: str) -> tuple[list[date], str]:
        """The asset's days and its table pinned to each day's newest run, from one read of
        the log: before a training read the two were two statements, about 0.35 s on the
        bench's cluster. Both are of the same moment. The runs are those the asset's own log
        rows name (``pinned_table`` takes every writer of the table: for a view, the same)."""
        rows = self._published_rows(schema, f"asset = {literal(asset)}")
        days = sorted({row["__d"] for row in rows})
        return days, self._pinned(schema, table, day, [row for row in rows if row["__t"] == table])

    def view_join_hint(self, schema: str, views: dict[str, str], rows: int) -> str:
        """How the frame meets the views' partitions: shuffled on both sides beside an
        uploaded frame; beside a staged one, a view whose newest runs are small broadcast.

        Why a hint at all: Spark sizes a Parquet folder by its files scaled to the columns
        read, every run on disk counted, not only those the read names. A month of the
        bench's view (14 MB) passed for small after one backfill and was broadcast whatever
        the frame's size (0.8 s of a 10,000-row write's 2.6 s; hand-written SQL over a folder
        a column narrower shuffled both sides), and passed for large after three reruns, so
        a 10M-row staged read sort-merge joined in 27-28 s where the broadcast took 14.5 s.
        Measured on the bench's cluster (SF1, 30 days), the plan now follows the read: a
        merge join up to ``STAGE_ROWS`` uploaded rows, a broadcast of a view whose newest
        runs are at most ``BROADCAST_BYTES`` of Parquet past it, else the planner's choice
        (as when this client cannot see the location to measure)."""
        if not views:
            return ""
        if rows <= STAGE_ROWS:
            return f"/*+ MERGE({', '.join(views)}) */ "
        small = [
            a
            for a, table in views.items()
            if (size := self._newest_bytes(schema, table)) is not None and size <= BROADCAST_BYTES
        ]
        return f"/*+ BROADCAST({', '.join(small)}) */ " if small else ""

    def _newest_bytes(self, schema: str, table: str) -> int | None:
        """The Parquet bytes of each day's newest run of ``table`` (a run not yet published
        counts too: this sizes a join, it decides nothing a reader sees), or None when this
        client does not see the location's folder."""
        if not self._sees(schema, table):
            return None
        newest: dict[str, Path] = {}
        for run in Path(self.path(schema, table)).glob(f"*/{RUN}=*"):
            if run.parent.name not in newest or run.name > newest[run.parent.name].name:
                newest[run.parent.name] = run  # run ids sort by their start time
        return sum(f.stat().st_size for run in newest.values() for f in run.glob("*.parquet"))

    def key_hash(self, column: str) -> str:
        return f"(hash(CAST({column} AS STRING)) & 2147483647)"

    def _write(self, frame: Any, schema: str, table: str, day: str, start: date, end: date, asset: str) -> int:
        """Write ``frame`` as a new run of ``table`` and publish it in the log (the module docstring)."""
        from pyspark.sql import functions as F

        run = f"r{time.time_ns():020d}-{uuid.uuid4().hex[:6]}"
        session = self.session()
        try:
            frame.withColumn(RUN, F.lit(run)).write.mode("append").partitionBy(day, RUN).parquet(
                self.path(schema, table)
            )
            written = self._run_rows(schema, table, run)
            row = pa.table(
                {
                    "asset": pa.array([asset], pa.string()),
                    "table_name": pa.array([table], pa.string()),
                    "partition_start": pa.array([start], pa.date32()),
                    "partition_end": pa.array([end], pa.date32()),
                    "rows": pa.array([int(written)], pa.int64()),
                    RUN: pa.array([run], pa.string()),
                }
            )
            self._publish(session, schema, table, run, row)
        except PantryError as err:
            raise PantryError(
                f"writing {asset} for {start}..{end} to {self.shown} failed, the stored days are unchanged: {err.message}",
                field="engine",
                hint=err.hint or "the cluster must be able to write under the offline store's location",
            ) from None
        except Exception as err:
            raise PantryError(
                f"writing {asset} for {start}..{end} to {self.shown} failed, the stored days are unchanged: "
                f"{self._explained(err, None).message if _unavailable(err) else _line(err)[:500]}",
                field="engine",
                hint="see the failed task in the cluster's log; the cluster must be able to write under "
                f"{self.location}; a lost worker's tasks are retried up to spark.task.maxFailures",
            ) from None
        return int(written)

    def _sees(self, schema: str, table: str) -> bool:
        """Whether this client sees the location's folder: the table the cluster has just
        written is there. The client then stages large uploads there too (``_staged``)."""
        return "://" not in self.location and Path(self.path(schema, table)).is_dir()

    def _publish(self, session: Any, schema: str, table: str, run: str, row: pa.Table) -> None:
        """Append the run's log row, which publishes the run. When this client sees the
        folder, the row is one Parquet file written here under a name readers skip (a leading
        dot) and renamed into the log whole, so a reader lists it complete or not at all: a
        job on the cluster, as the fallback does, costs about a JVM CPU second and 0.3 s."""
        if self._sees(schema, table):
            folder = Path(self.path(schema, LOG))
            folder.mkdir(parents=True, exist_ok=True)
            temp = folder / f".{run}.parquet.tmp"
            try:
                pq.write_table(row, temp)
                os.replace(temp, folder / f"part-{run}.parquet")
            finally:
                temp.unlink(missing_ok=True)
            return
        # typed in Arrow: a schema given as DDL text is parsed by the server, a request more
        session.createDataFrame(row).coalesce(1).write.mode("append").parquet(self.path(schema, LOG))

    def _run_rows(self, schema: str, table: str, run: str) -> int:
        """The rows of ``run`` as its Parquet footers say, not observed as the rows are written
        (an observed metric is an interpreted aggregate over every row: 1.5 s of a 30-day
        backfill of 1.2M rows). Read here when this client sees the location's folder (as it
        does to stage a large upload): a statement on the cluster costs a job and about a CPU
        second of its JVMs, a footer a file open. Else a small job reads the footers there."""
        if self._sees(schema, table):
            folder = Path(self.path(schema, table))
            return sum(pq.ParquetFile(f).metadata.num_rows for f in folder.glob(f"*/{RUN}={run}/*.parquet"))
        answer = self.run(
            f"SELECT count(*) FROM parquet.{quoted(self.path(schema, table))} WHERE {RUN} = {literal(run)}"
        )
        return int(answer.column(0)[0].as_py())

    def replace_days(
        self, schema: str, table: str, rows: pa.Table, day: str, start: date, end: date, asset: str
    ) -> int:
        """``rows`` (made by Pantry: a metric's days) uploaded and written as one run."""
        frame = self._frame(lambda session: session.createDataFrame(rows))
        return self._write(frame, schema, table, day, start, end, asset)

    def replace_days_from(
        self, schema: str, table: str, day: str, selects: dict[date, str], asset: str, index: tuple[str, ...] = ()
    ) -> int:
        """Every day's SELECT computed on the cluster, one UNION ALL: a task set per day,
        written by the executors as one run, no row through Pantry."""
        if not selects:
            return 0
        union = " UNION ALL ".join(
            f"SELECT DATE '{each}' AS {quoted(day)}, q.* FROM ({_unordered(sql)}) AS q"
            for each, sql in sorted(selects.items())
        )
        frame = self._frame(lambda session: _sql(session, union))
        return self._write(frame, schema, table, day, min(selects), max(selects), asset)

    @contextmanager
    def _uploaded(self, name: str, rows: pa.Table) -> Iterator[Any]:
        """``rows`` as a DataFrame, named in the statement that reads it (``_sql``'s views).

        Up to ``STAGE_ROWS`` rows go as Arrow over gRPC (past 64 MB pyspark sends a cached
        artifact in chunks). Past it, and when the location is a folder the workers share,
        the rows are staged there as Parquet and read by the executors. Why: an uploaded
        frame becomes a local relation held whole in the driver's heap; 10M rows (160 MB of
        Arrow) ran a 4 GB Connect server out of memory, while a Parquet file is split among
        the executors like any source."""
        session = self.session()
        staged = self._staged(name, rows) if rows.num_rows > STAGE_ROWS else None
        try:
            yield session.read.parquet(str(staged)) if staged else session.createDataFrame(rows)
        finally:
            if staged is not None:
                shutil.rmtree(staged, ignore_errors=True)

    def _staged(self, name: str, rows: pa.Table) -> Path | None:
        """``rows`` written as Parquet under ``<location>/_uploads/`` (timestamps as UTC instants
        in microseconds, which Spark reads as its TIMESTAMP in the session's UTC zone), or None
        when the location is not a local folder (``s3a://``: uploaded as Arrow, as before).
        Folders a killed client left there are swept first (``engines/uploads.py``)."""
        if "://" in self.location:
            return None
        fields = [
            pa.field(f.name, pa.timestamp("us", tz="UTC"), f.nullable) if pa.types.is_timestamp(f.type) else f
            for f in rows.schema
        ]
        uploads.sweep(Path(self.location))  # what killed clients left behind
        folder = uploads.new_folder(Path(self.location), name)
        try:
            schema = pa.schema(fields)
            with pq.ParquetWriter(folder / "part-0.parquet", schema) as writer:
                for batch in rows.to_batches(max_chunksize=1 << 20):  # cast a batch at a time: no second copy
                    writer.write_batch(batch.cast(schema, safe=False))
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        return folder

    def run_with(self, name: str, rows: pa.Table, sql: str) -> pa.Table:
        """``sql`` with ``rows`` named ``name`` in it, answered as Arrow."""
        try:
            with self._uploaded(name, rows) as frame:
                return self._collect(_sql(self.session(), sql, {name: frame}))
        except PantryError:
            raise
        except Exception as err:
            raise self._explained(err, None) from None

    def training_path(self) -> str:
        """``<location>/training_sets/<UTC time>-<8 hex>``: new on every call, sorted by time."""
        return f"{self.location}/training_sets/{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"

    def write_with(self, name: str, rows: pa.Table, sql: str, to: str) -> None:
        """``sql`` over ``rows`` written by the executors as Parquet at ``to`` (which must not
        exist: a failed write never leaves half of a training set where one was)."""
        try:
            with self._uploaded(name, rows) as frame:
                _sql(self.session(), sql, {name: frame}).write.mode("error").parquet(to)
        except PantryError:
            raise
        except Exception as err:
            if "PATH_ALREADY_EXISTS" in f"{_error_class(err)} {err}":
                raise PantryError(
                    f"'{to}' exists already: a training set is written to a new path",
                    field="to",
                    hint="give a path that does not exist yet (a run id or a date in it)",
                ) from None
            raise self._explained(err, None) from None

    def read(self, schema: str, table: str, day: str, start: date | None = None, end: date | None = None) -> pa.Table:
        where = f" WHERE {quoted(day)} BETWEEN DATE '{start}' AND DATE '{end}'" if start and end else ""
        answer = self.run(f"SELECT * FROM {self.table(schema, table, day)} AS t{where} ORDER BY {quoted(day)}")
        # Spark lists partition columns last; the day was the rows' first column when written
        return answer.select([day, *[c for c in answer.column_names if c not in (day, RUN)]])

    def materialized(self, schema: str, asset: str) -> list[date]:
        return sorted({row["__d"] for row in self._published_rows(schema, f"asset = {literal(asset)}")})

    def close(self) -> None:
        if self._session is not None:
            try:
                self._session.stop()
            except Exception:  # noqa: BLE001, S110 - stopping a lost session has nothing to report
                pass
            self._session = None


def location_for(offline_uri: str | None, home: str) -> str:
    """Where Spark keeps Pantry's tables: beside the offline store (``s3a://`` for an S3 one,
    as Hadoop names it), else ``<home>/spark``, a directory the workers must reach too."""
    if offline_uri and offline_uri.startswith("s3://"):
        parts = urlsplit(offline_uri)
        return f"s3a://{parts.netloc}{parts.path.rstrip('/')}/engine"
    return f"{home.rstrip('/')}/spark"
