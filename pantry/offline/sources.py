"""Where a semantic model's rows come from: a file, a glob, an S3 URI or a table.

Why views: the compiled SQL names every model as ``src.<model>``, the way MetricFlow
names a dbt model. Here each such name becomes a DuckDB view over the real data, so the
same SQL runs locally and transpiles unchanged for a warehouse. An ``s3://`` source is
read like the S3 offline store (``s3_store.py``): objects are cached under PANTRY_HOME by
ETag with boto3 and scanned by DuckDB (its httpfs extension cannot be downloaded everywhere).
"""

from __future__ import annotations

import glob
import os
import re
from pathlib import Path

import duckdb

from pantry.compile.sql import SOURCE_SCHEMA, SPINE_TABLE
from pantry.errors import PantryError, did_you_mean
from pantry.offline.memory_db import private_database
from pantry.offline.store import OfflineStore
from pantry.spec.model import Catalog, SemanticModel, TimeSpine

FILE_SUFFIXES = (".parquet", ".csv", ".tsv", ".pq")
# Every source view carries its rows' source order, so "a tie goes to the row that comes
# later in the source" has a meaning that is the same on every run.
FILE_COLUMN = "__pantry_file"
ROW_COLUMN = "__pantry_row"
S3_ATTEMPTS = 3  # bounded: an unreachable endpoint fails in seconds, with a clear message


def source_kind(source: str) -> str:
    """``s3``, ``file`` or ``table``."""
    if source.startswith("s3://"):
        return "s3"
    if source.lower().endswith(FILE_SUFFIXES) or "/" in source or "*" in source:
        return "file"
    return "table"


def source_path(catalog: Catalog, model: SemanticModel) -> Path:
    path = Path(model.source)
    return path if path.is_absolute() else (catalog.root / path)


def _missing(model: SemanticModel, what: str, hint: str) -> PantryError:
    return model.origin.error(
        what,
        definition=f"semantic model '{model.name}'",
        field="source",
        hint=hint,
    )


def _sql_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def s3_cache(offline: OfflineStore | None) -> Path:
    """Where S3 objects are cached: under PANTRY_HOME, beside the offline store."""
    if offline is not None:
        return offline.cache
    return Path(os.environ.get("PANTRY_HOME", "./.pantry")).resolve() / "cache" / "s3"


def s3_source_files(model: SemanticModel, offline: OfflineStore | None) -> list[str]:
    """A model's ``s3://`` source as cached local Parquet files (downloaded only when changed)."""
    from pantry.offline.s3_store import S3Offline

    try:
        return S3Offline(model.source, s3_cache(offline)).source_files()
    except PantryError as err:
        endpoint = os.environ.get("AWS_ENDPOINT_URL", "AWS")
        raise _missing(
            model,
            f"source '{model.source}' cannot be read from {endpoint}"
            + (f" after {S3_ATTEMPTS} attempts" if "did not answer" in err.message else "")
            + f": {err.message}",
            "check the URI, AWS_ENDPOINT_URL and the credentials",
        ) from None


def _home(offline: OfflineStore | None) -> Path:
    """PANTRY_HOME, as the offline store knows it (its S3 cache is ``<home>/cache/s3``)."""
    return s3_cache(offline).parent.parent


def register_model(
    con: duckdb.DuckDBPyConnection, catalog: Catalog, model: SemanticModel, offline: OfflineStore | None = None
) -> None:
    """Create the view ``src.<model>`` over the model's source, or explain why not."""
    kind = source_kind(model.source)
    target = f'{SOURCE_SCHEMA}."{model.name}"'
    if kind == "s3":
        files = ", ".join(_sql_string(f) for f in s3_source_files(model, offline))
        con.execute(
            f"CREATE OR REPLACE VIEW {target} AS SELECT * EXCLUDE (file_row_number), file_row_number AS {ROW_COLUMN} "
            f"FROM read_parquet([{files}], filename='{FILE_COLUMN}', file_row_number=true, hive_partitioning=false)"
        )
        return
    if kind == "table":
        extra = f"'' AS {FILE_COLUMN}, rowid AS {ROW_COLUMN}"
        if offline is not None and offline.warehouse is not None:  # a warehouse engine's table
            offline.warehouse.register(con, model, target, f"'' AS {FILE_COLUMN}, 0 AS {ROW_COLUMN}")
            return
        if offline is None or not offline.register_table(con, model.source, target, extra):
            where = offline.uri if offline is not None else "the offline store"
            raise _missing(
                model,
                f"source table '{model.source}' is not in the offline store ({where})",
                "materialize it first, or give a CSV or Parquet path relative to the definitions folder",
            )
        return
    if model.ingest == "push":
        _register_pushed(con, catalog, model, offline, target)
        return
    _register_file(con, catalog, model, target)


def _register_pushed(
    con: duckdb.DuckDBPyConnection,
    catalog: Catalog,
    model: SemanticModel,
    offline: OfflineStore | None,
    target: str,
) -> None:
    """An ``ingest: push`` model: its declared source and every pushed batch, the first row of
    each event id kept (so a repeated push or a redelivered entry counts once)."""
    from pantry.offline.batch_log import batches

    base = f'{SOURCE_SCHEMA}."__declared_{model.name}"'
    _register_file(con, catalog, model, base)
    files = batches(_home(offline), model.name, offline)
    primary = model.entity(model.primary or "")
    key = primary.expr if primary is not None else ROW_COLUMN
    union = f"SELECT *, 0 AS __pantry_origin FROM {base}"
    if files:
        listed = ", ".join(_sql_string(str(f)) for f in files)
        union += (
            f" UNION ALL BY NAME SELECT * EXCLUDE (file_row_number), file_row_number AS {ROW_COLUMN}, "
            f"1 AS __pantry_origin FROM read_parquet([{listed}], filename='{FILE_COLUMN}', file_row_number=true, "
            "union_by_name=true)"
        )
    con.execute(
        f"CREATE OR REPLACE VIEW {target} AS SELECT * EXCLUDE (__pantry_origin, __pantry_rank) FROM ("
        f"SELECT *, row_number() OVER (PARTITION BY {key} ORDER BY __pantry_origin, {FILE_COLUMN}, {ROW_COLUMN}) "
        f"AS __pantry_rank FROM ({union})) WHERE __pantry_rank = 1"
    )


def _register_file(con: duckdb.DuckDBPyConnection, catalog: Catalog, model: SemanticModel, target: str) -> None:
    path = source_path(catalog, model)
    if not glob.glob(str(path)):
        nearby = [p.name for p in path.parent.glob("*")] if path.parent.is_dir() else []
        close = did_you_mean(path.name, nearby)
        hint = (
            f"{close[:-1]} in {Path(model.source).parent}/?"
            if close
            else "fix the path; it is relative to the definitions folder"
        )
        raise _missing(model, f"source file '{model.source}' does not exist (looked for {path})", hint)
    if path.suffix.lower() in (".parquet", ".pq") or "parquet" in path.name:
        con.execute(
            f"CREATE OR REPLACE VIEW {target} AS SELECT * EXCLUDE (file_row_number), file_row_number AS {ROW_COLUMN} "
            f"FROM read_parquet({_sql_string(str(path))}, filename='{FILE_COLUMN}', file_row_number=true)"
        )
        return
    # CSV has no row numbers of its own: a table keeps insertion order in its rowid
    con.execute(
        f'CREATE OR REPLACE TABLE {SOURCE_SCHEMA}."__csv_{model.name}" AS SELECT * FROM read_csv_auto({_sql_string(str(path))})'
    )
    con.execute(
        f"CREATE OR REPLACE VIEW {target} AS SELECT *, '' AS {FILE_COLUMN}, rowid AS {ROW_COLUMN} "
        f'FROM {SOURCE_SCHEMA}."__csv_{model.name}"'
    )


def _read_spine(
    con: duckdb.DuckDBPyConnection,
    catalog: Catalog,
    spine: TimeSpine,
    table: str,
    columns: str,
    offline: OfflineStore | None = None,
) -> None:
    """``CREATE TABLE table AS SELECT DISTINCT columns`` from a user's spine file (or, on a
    warehouse engine, its table), or an error naming the spine and what is wrong with it."""
    if source_kind(spine.source) == "table" and offline is not None and offline.warehouse is not None:
        con.register("__pantry_spine_rows", offline.warehouse.spine(spine, columns))
        try:
            con.execute(f"CREATE TABLE {table} AS SELECT * FROM __pantry_spine_rows")
        finally:
            con.unregister("__pantry_spine_rows")
        return
    path = Path(spine.source) if Path(spine.source).is_absolute() else catalog.root / spine.source
    where = dict(file=spine.origin.shown_as, line=spine.origin.line, definition=f"time spine '{spine.name}'")
    if not path.exists():
        raise PantryError(
            f"source file '{spine.source}' does not exist (looked for {path})",
            field="source",
            hint="fix the path",
            **where,
        )
    reader = "read_parquet" if "parquet" in path.name or path.suffix == ".pq" else "read_csv_auto"
    try:
        con.execute(f"CREATE TABLE {table} AS SELECT DISTINCT {columns} FROM {reader}({_sql_string(str(path))})")
    except duckdb.Error as err:
        raise PantryError(
            f"cannot be read: {str(err).splitlines()[0]}",
            field="custom_granularities" if "not found" in str(err).lower() else "source",
            hint="the primary column and each custom granularity's column must be in the source",
            **where,
        ) from None


def create_spine(
    con: duckdb.DuckDBPyConnection, catalog: Catalog, for_sql: str | None = None, offline: OfflineStore | None = None
) -> None:
    """The time spines the SQL reads: the daily ``pantry_time_spine(ds, <custom grains>)``,
    the user's (``time_spines:``) or Pantry's own (1990 to 2050), and the user's spines below a
    day (``pantry_time_spine_hour``), each read into memory once per connection."""

    def wanted(table: str) -> bool:
        return for_sql is None or re.search(rf"\b{table}\b", for_sql) is not None

    for fine in catalog.time_spines:
        table = f"{SPINE_TABLE}_{fine.grain}"
        if fine.grain != "day" and wanted(table):
            _read_spine(con, catalog, fine, table, f'CAST("{fine.column}" AS TIMESTAMP) AS ds', offline)
    if not wanted(SPINE_TABLE):
        return
    spine = catalog.daily_spine
    if spine is None:
        con.execute(
            f"CREATE TABLE {SPINE_TABLE} AS SELECT CAST(range AS DATE) AS ds "
            "FROM range(DATE '1990-01-01', DATE '2051-01-01', INTERVAL 1 DAY)"
        )
        return
    columns = [f'CAST("{spine.column}" AS DATE) AS ds'] + [f'"{column}" AS "{name}"' for name, column in spine.custom]
    _read_spine(con, catalog, spine, SPINE_TABLE, ", ".join(columns), offline)


def source_schema(con: duckdb.DuckDBPyConnection, model: SemanticModel) -> dict[str, str]:
    """Column name (lower-cased) -> DuckDB type of a registered model."""
    rows = con.execute(f'DESCRIBE SELECT * FROM {SOURCE_SCHEMA}."{model.name}"').fetchall()
    return {str(r[0]).lower(): str(r[1]) for r in rows if r[0] not in (FILE_COLUMN, ROW_COLUMN)}


def lock_down(
    con: duckdb.DuckDBPyConnection,
    catalog: Catalog,
    models: list[SemanticModel],
    offline: OfflineStore | None = None,
) -> None:
    """Let the connection read only the registered sources, and nothing can undo that.

    Why: a query's ``where`` is checked against an allowlist before it is compiled, but if a
    construct ever slipped through, DuckDB itself must refuse to read a file, attach a
    database, install an extension or change a setting. The models' own files stay readable
    (``allowed_paths``, or the folder of a glob); everything else on disk does not.
    """
    paths: list[str] = []
    folders: list[str] = []
    for model in models:
        if model.ingest == "push":  # its pushed batches, here or (on S3) in the cache
            from pantry.offline.batch_log import ingest_dir

            folders.append(str(ingest_dir(_home(offline), model.name)) + "/")
            folders.append(str(s3_cache(offline)) + "/")
        if source_kind(model.source) == "s3":
            folders.append(str(s3_cache(offline)) + "/")  # the cached copies of its objects
            continue
        if source_kind(model.source) != "file":
            continue
        path = str(source_path(catalog, model))
        if any(ch in path for ch in "*?["):
            fixed = re.split(r"[*?\[]", path, maxsplit=1)[0]
            folders.append(fixed if fixed.endswith("/") else os.path.dirname(fixed) + "/")
        else:
            paths.append(path)
    if paths:
        con.execute("SET allowed_paths = ?", [paths])
    if folders:
        con.execute("SET allowed_directories = ?", [folders])
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")


def connect(
    catalog: Catalog,
    offline: OfflineStore | None = None,
    models: list[SemanticModel] | None = None,
    for_sql: str | None = None,
    locked: bool = False,
    threads: int | None = None,
    memory_limit: str | None = None,
    spill_to: Path | None = None,
) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with the time spine and a view per semantic model.

    In memory on purpose: queries never take the offline store's write lock, so an analyst
    can query while Dagster materializes. With ``for_sql``, only the models and the spine
    that SQL reads are set up, which keeps a small query's overhead to a few milliseconds.
    ``locked`` seals the connection after setup (``lock_down``): metric queries run so. The
    rest is a private database on the process's shared instance (``offline/memory_db.py``).
    """
    config: dict[str, object] = {"threads": threads} if threads else {}
    if memory_limit:
        config["memory_limit"] = memory_limit
    if spill_to is not None:  # past memory_limit, DuckDB spills here (an in-memory database has no file beside it)
        spill_to.mkdir(parents=True, exist_ok=True)
        config["temp_directory"] = str(spill_to)
    if models is None:
        models = list(catalog.semantic_models.values())
        if for_sql is not None:
            read = {m.group(1) for m in re.finditer(rf'\b{SOURCE_SCHEMA}\."?(\w+)"?', for_sql)}
            models = [m for m in models if m.name in read]
    # an instance of its own (20 ms against 1, ``memory_db``) only for settings of its own, or
    # for a source that is an offline store table: the store attaches as ``offline``, and an
    # attached name belongs to the whole instance
    own = bool(config) or locked or any(source_kind(m.source) == "table" for m in models)
    con = duckdb.connect(config=config) if own else private_database()
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {SOURCE_SCHEMA}")
    create_spine(con, catalog, for_sql, offline)
    for model in models:
        register_model(con, catalog, model, offline)
    if locked:
        lock_down(con, catalog, models, offline)
    return con
