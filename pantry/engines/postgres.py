"""PostgreSQL as an engine, through ADBC (``adbc-driver-postgresql``): SQL in, Arrow out.

Why ADBC and not psycopg: rows come back as Arrow columns (the COPY binary protocol), not as
a Python tuple per row, so a result of a million rows costs no per-value Python; and the
same path takes Snowflake's and BigQuery's ADBC drivers.

What a query connection may do: every transaction on it is ``READ ONLY`` (set once, when it
connects), and each statement carries ``statement_timeout``. Reading the sources is the
role's business: docs/engines.md gives the grants (``SELECT`` on the source schemas, nothing
else).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from typing import Any

import pyarrow as pa

from pantry.engines.base import Engine
from pantry.engines.names import literal, quoted
from pantry.engines.url import masked
from pantry.errors import PantryError, QueryFailed, QueryTimeout

ATTEMPTS = 3  # a server that does not answer: tried this often, a second apart at most, then refused
# SQLSTATE classes and codes -> what the user did wrong
_TIMEOUT = "57014"  # query_canceled: statement_timeout
_MISSING_TABLE, _MISSING_COLUMN, _NO_PRIVILEGE = "42P01", "42703", "42501"
_LOGIN = ("28P01", "28000", "3D000")  # wrong password, no such role, no such database


def _sqlstate(err: Exception) -> str:
    return str(getattr(err, "sqlstate", None) or "")


def _line(err: Exception) -> str:
    text = str(err).strip()
    for prefix in ("IO: ", "INVALID_ARGUMENT: ", "INTERNAL: ", "UNKNOWN: "):
        text = text.removeprefix(prefix)
    text = text.removeprefix("[libpq] ")
    return text.splitlines()[0] if text else type(err).__name__


class PostgresEngine(Engine):
    """A PostgreSQL database named by a ``postgresql://`` URL."""

    dialect = "postgres"

    def __init__(self, url: str) -> None:
        self.url = url
        self._connection: Any = None

    @property
    def shown(self) -> str:
        return masked(self.url)

    def _connect(self, read_only: bool = True) -> Any:
        """A connection, with bounded retries for a server that is not there (yet): a refused
        login is not retried, it will not get better. Queries get a read-only one."""
        import adbc_driver_manager
        import adbc_driver_postgresql.dbapi as dbapi

        last = ""
        for attempt in range(ATTEMPTS):
            try:
                con = dbapi.connect(self.url)
                if read_only:
                    with con.cursor() as cur:
                        cur.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
                    con.commit()
                return con
            except adbc_driver_manager.Error as err:
                last = _line(err)
                if _sqlstate(err) in _LOGIN or "password authentication failed" in last or "does not exist" in last:
                    raise PantryError(
                        f"PostgreSQL at {self.shown} refused the login: {last}",
                        field="engine",
                        hint="check the user, password and database in PANTRY_ENGINE",
                    ) from None
                if attempt + 1 < ATTEMPTS:
                    time.sleep(0.25 * 2**attempt)
        raise PantryError(
            f"cannot reach PostgreSQL at {self.shown} ({ATTEMPTS} attempts): {last}",
            field="engine",
            hint="is the server running and listening there? PANTRY_ENGINE names it",
        )

    def _con(self) -> Any:
        if self._connection is None:
            self._connection = self._connect()
        return self._connection

    def run(self, sql: str, timeout: float | None = None) -> pa.Table:
        import adbc_driver_manager

        con = self._con()
        try:
            with con.cursor() as cur:
                cur.execute(f"SET statement_timeout = {int(timeout * 1000) if timeout else 0}")
                cur.execute(sql)
                table = cur.fetch_arrow_table()
            con.rollback()  # read only: nothing to keep, and the next statement starts clean
            return table
        except adbc_driver_manager.Error as err:
            self._recover()
            raise self._explained(err, timeout) from None

    def _recover(self) -> None:
        """After a failed statement the transaction is aborted: roll it back, or reconnect next time."""
        try:
            self._connection.rollback()
        except Exception:  # noqa: BLE001 - a broken connection is dropped and made again
            self.close()

    def _explained(self, err: Exception, timeout: float | None) -> PantryError:
        state, line = _sqlstate(err), _line(err)
        if state == _TIMEOUT:
            return QueryTimeout(
                f"the query ran longer than {timeout:g} s on {self.shown} and was stopped",
                field="where",
                hint="narrow it with --start-time/--end-time, fewer group-by names or a where; "
                "PANTRY_QUERY_TIMEOUT sets the limit",
            )
        if state == _MISSING_TABLE:
            return PantryError(
                f"{self.shown}: {line}",
                field="source",
                hint="create the table, or point the model's source (or node_relation) at one that exists",
            )
        if state == _MISSING_COLUMN:
            return PantryError(
                f"{self.shown}: {line}",
                field="expr",
                hint="the table has no such column: fix the definition's expr, or the table",
            )
        if state == _NO_PRIVILEGE:
            return PantryError(
                f"{self.shown}: {line}",
                field="engine",
                hint="the engine's role needs SELECT on the source tables (docs/engines.md lists the grants)",
            )
        if state.startswith("22"):  # data exceptions: a where comparing a date with a number, say
            return PantryError(
                f"the query cannot run on {self.shown}: {line}",
                field="where",
                hint="check that the where compares each group-by name with a value of its type",
            )
        if state.startswith("08") or not state:
            return PantryError(
                f"lost PostgreSQL at {self.shown}: {line}",
                field="engine",
                hint="is the server running? the next query connects again",
            )
        return QueryFailed(f"the engine {self.shown} failed on the query: {line}")

    @contextmanager
    def _writing(self, schema: str, table: str, asset: str, start: date, end: date) -> Iterator[Any]:
        """One transaction on a connection of its own (the query connection is read only): the
        schema made if new, the days ``start..end`` of ``table`` deleted, then the caller's
        writes, then COMMIT; any failure rolls all of it back, so the old days stay."""
        import adbc_driver_manager

        con = self._connect(read_only=False)
        try:
            with con.cursor() as cur:
                cur.execute(f"CREATE SCHEMA IF NOT EXISTS {quoted(schema)}")
                yield cur
            con.commit()
        except adbc_driver_manager.Error as err:
            con.rollback()
            raise PantryError(
                f"writing {asset} for {start}..{end} to {self.shown} failed, the stored days are unchanged: {_line(err)}",
                field="engine",
                hint="the engine's writing role needs CREATE on the database and rights on its pantry schemas",
            ) from None
        except BaseException:
            con.rollback()
            raise
        finally:
            con.close()

    @staticmethod
    def _replace(cur: Any, schema: str, table: str, day: str, start: date, end: date, asset: str) -> int:
        """Count what the caller wrote for ``start..end``, and log the write beside the table."""
        target = f"{quoted(schema)}.{quoted(table)}"
        cur.execute(f"SELECT count(*) FROM {target} WHERE {quoted(day)} BETWEEN DATE '{start}' AND DATE '{end}'")
        written = int(cur.fetchone()[0])
        log = f"{quoted(schema)}.pantry_materializations"
        cur.execute(
            f"CREATE TABLE IF NOT EXISTS {log} (asset text, partition_start date, partition_end date, rows bigint, "
            "materialized_at timestamptz)"
        )
        cur.execute(f"INSERT INTO {log} VALUES ({literal(asset)}, DATE '{start}', DATE '{end}', {written}, now())")
        return written

    def replace_days(
        self, schema: str, table: str, rows: pa.Table, day: str, start: date, end: date, asset: str
    ) -> int:
        """The table made from ``rows``' columns if new and compared if not, the days replaced
        by ``rows`` (ADBC's COPY), logged: one transaction."""
        target = f"{quoted(schema)}.{quoted(table)}"
        with self._writing(schema, table, asset, start, end) as cur:
            cur.adbc_ingest(table, rows.slice(0, 0), mode="create_append", db_schema_name=schema)
            cur.execute(f"SELECT * FROM {target} LIMIT 0")
            existing = [c[0] for c in cur.description or []]
            if existing != rows.column_names:
                raise PantryError(
                    f"stored table {target} on {self.shown} has columns {existing}, the definition now gives "
                    f"{rows.column_names}",
                    definition=asset,
                    field="dimensions",
                    hint=f"the definition changed shape; DROP TABLE {target} and backfill",
                )
            cur.execute(f"DELETE FROM {target} WHERE {quoted(day)} BETWEEN DATE '{start}' AND DATE '{end}'")
            if rows.num_rows:
                cur.adbc_ingest(table, rows, mode="append", db_schema_name=schema)
            return self._replace(cur, schema, table, day, start, end, asset)

    def replace_days_from(
        self, schema: str, table: str, day: str, selects: dict[date, str], asset: str, index: tuple[str, ...] = ()
    ) -> int:
        """As ``replace_days``, each day's rows made by an ``INSERT ... SELECT`` in the server."""
        if not selects:
            return 0
        target = f"{quoted(schema)}.{quoted(table)}"
        start, end = min(selects), max(selects)
        with self._writing(schema, table, asset, start, end) as cur:
            cur.execute(
                f"CREATE TABLE IF NOT EXISTS {target} AS SELECT DATE '{start}' AS {quoted(day)}, q.* "
                f"FROM ({selects[start]}) AS q WITH NO DATA"
            )
            if index:  # a training read looks rows up by key and stamp: without it, a hash of the whole table
                columns = ", ".join(quoted(c) for c in index)
                cur.execute(f"CREATE INDEX IF NOT EXISTS {quoted(table + '__lookup')} ON {target} ({columns})")
            cur.execute(f"DELETE FROM {target} WHERE {quoted(day)} BETWEEN DATE '{start}' AND DATE '{end}'")
            for each, sql in sorted(selects.items()):
                cur.execute(f"INSERT INTO {target} SELECT DATE '{each}' AS {quoted(day)}, q.* FROM ({sql}) AS q")
            return self._replace(cur, schema, table, day, start, end, asset)

    def run_with(self, name: str, rows: pa.Table, sql: str) -> pa.Table:
        """A session of its own (a read-only one cannot make a temporary table); the upload
        is ADBC's COPY, the answer Arrow; the session's end drops the table."""
        import adbc_driver_manager

        con = self._connect(read_only=False)
        try:
            with con.cursor() as cur:
                cur.adbc_ingest(name, rows, mode="create", temporary=True)
                cur.execute(f'ANALYZE "{name}"')  # its size and keys, so the planner picks lookups or a hash
                cur.execute(sql)
                answer = cur.fetch_arrow_table()
            con.rollback()
            return answer
        except adbc_driver_manager.Error as err:
            con.rollback()
            raise self._explained(err, None) from None
        finally:
            con.close()

    def read(self, schema: str, table: str, day: str, start: date | None = None, end: date | None = None) -> pa.Table:
        where = f" WHERE {quoted(day)} BETWEEN DATE '{start}' AND DATE '{end}'" if start and end else ""
        return self.run(f"SELECT * FROM {quoted(schema)}.{quoted(table)}{where} ORDER BY {quoted(day)}")

    def materialized(self, schema: str, asset: str) -> list[date]:
        log = f"{quoted(schema)}.pantry_materializations"
        found = self.run(f"SELECT to_regclass({literal(log)}) IS NOT NULL AS found")
        if not found.column(0)[0].as_py():
            return []  # nothing written to this schema yet
        days = self.run(
            f"""SELECT DISTINCT CAST(g.d AS DATE) AS day
            FROM {log} AS m, generate_series(m.partition_start, m.partition_end, INTERVAL '1 day') AS g(d)
            WHERE m.asset = {literal(asset)}
            ORDER BY day"""
        )
        return [d.as_py() for d in days.column(0)]

    def close(self) -> None:
        if self._connection is not None:
            try:
                self._connection.close()
            except Exception:  # noqa: BLE001, S110 - closing a dead connection has nothing to report
                pass
            self._connection = None
