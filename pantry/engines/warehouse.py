"""The engine as the offline store sees it: source tables to check, metric days to keep.

A warehouse table as the embedded checks see it: its columns and types, no rows.

Why: a definition's expressions are bound against its source before anything runs (an
``expr`` naming a missing column is a load error with the file and line, not a failed
query later). On an engine the source is the warehouse's table, so its schema is read
once (``SELECT * ... LIMIT 0``) and set up in the checks' in-memory DuckDB as an empty
table of the same columns: every existing check then holds on warehouse sources too.
"""

from __future__ import annotations

from datetime import date

import duckdb
import pandas as pd
import pyarrow as pa
import sqlglot

from pantry.engines.base import Engine
from pantry.engines.relations import relation
from pantry.errors import PantryError
from pantry.spec.model import SemanticModel, TimeSpine

METRICS_SCHEMA = "pantry_metrics"  # the engine's schema of metric days, as the DuckDB file's "metrics"


class EngineWarehouse:
    """``OfflineStore.warehouse``: a model's table read from the engine, a metric's days
    computed there and kept there (``pantry_metrics."<metric>"``)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._schemas: dict[str, pa.Schema] = {}

    def schema(self, model: SemanticModel) -> pa.Schema:
        """The table's columns; a table the engine cannot read is the definition's error."""
        if model.source not in self._schemas:
            table = relation(model).sql(self.engine.dialect)
            try:
                self._schemas[model.source] = self.engine.run(f"SELECT * FROM {table} LIMIT 0").schema
            except PantryError as err:
                raise model.origin.error(
                    f"source table '{model.source}' cannot be read: {err.message}",
                    definition=f"semantic model '{model.name}'",
                    field="source",
                    hint=err.hint,
                ) from None
        return self._schemas[model.source]

    def spine(self, spine: TimeSpine, columns: str) -> pa.Table:
        """A time spine kept as a warehouse table (``node_relation`` on ``time_spines:``): its
        distinct ``columns`` (DuckDB SQL over the spine's own columns, rendered for the engine),
        read whole: a calendar is thousands of rows, and the checks' DuckDB needs its days."""
        model = SemanticModel(spine.name, spine.source, (), (), (), spine.origin)
        select = sqlglot.parse_one(f"SELECT DISTINCT {columns}", read="duckdb").from_(relation(model))
        try:
            return self.engine.run(select.sql(self.engine.dialect))
        except PantryError as err:
            raise spine.origin.error(
                f"time spine table '{spine.source}' cannot be read: {err.message}",
                definition=f"time spine '{spine.name}'",
                field="node_relation",
                hint=err.hint or "the primary column and each custom granularity's column must be in the table",
            ) from None

    def replace_metric_days(self, name: str, frame: pd.DataFrame, start: date, end: date) -> int:
        from pantry.compile.sql import DAY

        rows = pa.Table.from_pandas(frame, preserve_index=False)
        return self.engine.replace_days(METRICS_SCHEMA, name, rows, DAY, start, end, asset=f"metrics/{name}")

    def register(self, con: duckdb.DuckDBPyConnection, model: SemanticModel, target: str, extra: str) -> None:
        empty = pa.schema([_plain(f) for f in self.schema(model)]).empty_table()
        con.register("__pantry_engine_schema", empty)
        try:
            con.execute(f"CREATE OR REPLACE TABLE {target} AS SELECT *, {extra} FROM __pantry_engine_schema")
        finally:
            con.unregister("__pantry_engine_schema")


def _plain(field: pa.Field) -> pa.Field:
    """A column type DuckDB knows: PostgreSQL's ``numeric`` comes as an opaque Arrow type over
    text; its declared precision and scale make it a decimal (an unconstrained one, a double,
    as DuckDB would sum it), any other opaque type its text."""
    kind = field.type
    if isinstance(kind, pa.BaseExtensionType):
        meta = field.metadata or {}
        if meta.get(b"ADBC:postgresql:typname") == b"numeric":
            typmod = int(meta.get(b"POSTGRESQL:typmod", b"-1"))
            precision, scale = ((typmod - 4) >> 16, (typmod - 4) & 0xFFFF) if typmod > 0 else (0, 0)
            kind = pa.decimal128(precision, scale) if 0 < precision <= 38 else pa.float64()
        else:
            kind = kind.storage_type
    return pa.field(field.name, kind)
