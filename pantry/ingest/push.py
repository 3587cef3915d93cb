"""``store.push(model, rows)``: check a batch against the model, keep it durably, answer.

Why the batch is written before anything else happens: a push returns only once its rows
are in the offline store (``log.append_batch``), so training reads, daily partitions,
metrics and drift checks see them; a crash before then leaves nothing half-written.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pyarrow as pa
import sqlglot
from sqlglot import exp

from pantry.errors import PantryError, did_you_mean
from pantry.ingest.rows import as_batch, check
from pantry.offline.batch_log import append_batch
from pantry.offline.sources import connect, source_schema
from pantry.spec.model import Catalog, SemanticModel


@dataclass
class PushResult:
    """How many rows were kept, and each refused row: its index in the batch and why."""

    model: str
    accepted: int
    refused: list[tuple[int, str]] = field(default_factory=list)
    rows: pa.Table | None = field(default=None, repr=False)  # the kept rows, as stored
    batch: str | None = None  # where they were stored: the batch's file or object key

    def as_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "accepted": self.accepted,
            "refused": [{"row": i, "reason": why} for i, why in self.refused],
        }


def push_model(catalog: Catalog, name: str) -> SemanticModel:
    """The model a push names, refused with the reason unless it declares ``ingest: push``."""
    model = catalog.semantic_models.get(name)
    if model is None:
        raise PantryError(
            f"'{name}' is not a semantic model",
            field="model",
            hint=did_you_mean(name, list(catalog.semantic_models)) or "run 'pantry catalog' to list them",
        )
    if model.ingest != "push":
        raise model.origin.error(
            f"semantic model '{name}' does not accept pushed rows",
            definition=f"semantic model '{name}'",
            field="ingest",
            hint="add 'ingest: push' to the model to let rows in while Pantry runs",
        )
    return model


def _columns(text: str) -> set[str]:
    return {c.name.lower() for c in sqlglot.parse_one(text, read="duckdb").find_all(exp.Column)}


def declared_schema(catalog: Catalog, offline: Any, model: SemanticModel) -> Any:
    """The columns and types of a model's declared source. Why the declared source alone:
    reading every pushed batch (on S3, listing and fetching them) would only repeat it."""
    declared = replace(model, ingest=None)
    con = connect(catalog, offline, models=[declared], for_sql="")
    try:
        return source_schema(con, declared)
    finally:
        con.close()


def push_rows(
    catalog: Catalog, home: Path, offline: Any, name: str, rows: Any, schemas: dict[str, Any] | None = None
) -> PushResult:
    """Check rows and append the good ones as one durable batch. ``schemas`` caches each
    model's declared schema across pushes (a Store keeps one, as it keeps its catalog):
    opening DuckDB on the source costs tens of milliseconds, a large share of a small push."""
    model = push_model(catalog, name)
    try:
        batch = as_batch(rows)
    except TypeError as err:
        raise PantryError(str(err), field="rows") from None
    if len(batch.frame) == 0:
        raise PantryError(f"no rows to push into '{name}'", field="rows", hint="send at least one row")
    cache = {} if schemas is None else schemas
    if model.name not in cache:
        cache[model.name] = declared_schema(catalog, offline, model)
    schema = cache[model.name]
    required: set[str] = set()
    primary = model.entity(model.primary or "")
    if primary is not None:
        required |= _columns(primary.expr)
    time_dim = model.dimension(model.agg_time_dimension or "")
    event_time = None
    if time_dim is not None:
        time_columns = _columns(time_dim.expr)
        required |= time_columns
        event_time = next(iter(time_columns)) if len(time_columns) == 1 else None
    checked = check(batch, schema, required, event_time)
    batch = append_batch(home, model.name, checked.table, offline) if checked.table.num_rows else None
    return PushResult(model.name, checked.table.num_rows, checked.refused, checked.table, batch)
