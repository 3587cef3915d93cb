"""``sources/<semantic model>``: observable source assets over the model's data.

Why observe and not ingest: the sources are files or tables someone else writes. An
observation records a data version (size and modification time, or the row count of a
table), so Dagster can tell when a metric's inputs changed.
"""

import glob
import hashlib
import os

import dagster as dg
from dagster import AssetExecutionContext

from assets.metadata import code_reference, source_key
from pantry.offline.sources import connect, source_kind, source_path, source_schema
from pantry.spec.model import Catalog, SemanticModel


def _version(catalog: Catalog, model: SemanticModel) -> str:
    if source_kind(model.source) != "file":
        return model.source
    files = sorted(glob.glob(str(source_path(catalog, model))))
    stats = [f"{f}:{os.stat(f).st_size}:{os.stat(f).st_mtime_ns}" for f in files]
    return hashlib.sha256("\n".join(stats).encode()).hexdigest()[:16]


def build_source_assets(catalog: Catalog) -> list[dg.SourceAsset]:
    assets = []
    con = connect(catalog)
    schemas = {name: source_schema(con, model) for name, model in catalog.semantic_models.items()}
    con.close()
    for model in catalog.semantic_models.values():

        def observe(context: AssetExecutionContext, model: SemanticModel = model) -> dg.DataVersion:
            return dg.DataVersion(_version(catalog, model))

        assets.append(
            dg.observable_source_asset(
                key=source_key(model.name),
                description=model.description or f"Source of semantic model '{model.name}': {model.source}",
                group_name="sources",
                metadata={
                    "source": model.source,
                    "dagster/column_schema": dg.TableSchema(
                        columns=[dg.TableColumn(name=n, type=t) for n, t in schemas[model.name].items()]
                    ),
                    "dagster/code_references": code_reference(model.origin, f"semantic model {model.name}"),
                },
            )(observe)
        )
    return assets
