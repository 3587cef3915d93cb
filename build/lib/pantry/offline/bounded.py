"""Run a metric query with a time limit, and turn DuckDB's failures into sentences.

Why a timer and ``interrupt()``: DuckDB has no statement timeout setting, but a connection
can be interrupted from another thread, which stops the query within milliseconds and
leaves the process healthy. Why map the errors here: a caller's ``where`` that compares a
date with a number fails inside DuckDB; that is the request's fault (HTTP 422), while a
source file that vanished is the server's (HTTP 500). Either way, no traceback.
"""

from __future__ import annotations

import re
import threading

import duckdb
import pandas as pd

from pantry.errors import PantryError, QueryFailed, QueryTimeout
from pantry.offline.metric_tables import run_frame

# DuckDB errors that a request can cause: wrong types in a where, a bad cast, a bad literal
_REQUEST_ERRORS = (
    duckdb.BinderException,
    duckdb.ConversionException,
    duckdb.InvalidInputException,
    duckdb.OutOfRangeException,
    duckdb.ParserException,
    duckdb.PermissionException,
    duckdb.CatalogException,
)


# errors whose message quotes a value of the data: shown without it, since the value may
# come from a column the caller may not read
_QUOTING_VALUES = (duckdb.ConversionException, duckdb.InvalidInputException, duckdb.OutOfRangeException)
_QUOTED = re.compile(r"""'(?:[^']|'')*'""")


def _first_line(err: Exception) -> str:
    line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return _QUOTED.sub("'…'", line) if isinstance(err, _QUOTING_VALUES) else line


def run_bounded(con: duckdb.DuckDBPyConnection, sql: str, timeout: float | None) -> pd.DataFrame:
    """``run_frame`` that gives up after ``timeout`` seconds (None: no limit)."""
    timer = threading.Timer(timeout, con.interrupt) if timeout else None
    if timer is not None:
        timer.daemon = True
        timer.start()
    try:
        return run_frame(con, sql)
    except duckdb.InterruptException:
        raise QueryTimeout(
            f"the query ran longer than {timeout:g} s and was stopped",
            field="where",
            hint="narrow it with --start-time/--end-time, fewer group-by names or a where; "
            "PANTRY_QUERY_TIMEOUT sets the limit",
        ) from None
    except duckdb.OutOfMemoryException:
        raise PantryError(
            "the query needs more memory than a query may take",
            field="where",
            hint="narrow it with --start-time/--end-time or fewer group-by names; PANTRY_QUERY_MEMORY sets the limit",
        ) from None
    except _REQUEST_ERRORS as err:
        raise PantryError(
            f"the query cannot run: {_first_line(err)}",
            field="where",
            hint="check that the where compares each group-by name with a value of its type",
        ) from None
    except duckdb.Error as err:
        raise QueryFailed(f"the offline store failed on the query: {_first_line(err)}") from None
    finally:
        if timer is not None:
            timer.cancel()
