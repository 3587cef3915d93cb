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

from pantry.offline.sources import connect, source_kind, source_path, source_schema
from pantry.spec.model import Catalog, SemanticModel
from pantry_dagster.assets.metadata import code_reference, source_key


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


def build_source_checks(catalog: Catalog) -> list[dg.AssetChecksDefinition]:
    """A ``schema`` check per source: the columns the definitions use, missing or retyped fail, new ones warn.

    The same verdict is also reached whenever a feature view that reads the source is
    materialized; a failure blocks that view's online push."""
    from pantry.monitor.checks import schema_check
    from pantry.monitor.verdicts import record
    from pantry_dagster.assets.checks import check_result
    from pantry_dagster.resources.alerts import SlackAlerts, send_alerts
    from pantry_dagster.resources.offline import OfflineStore

    def build(model: SemanticModel) -> dg.AssetChecksDefinition:
        @dg.asset_check(
            asset=source_key(model.name),
            name="schema",
            description="Columns the definitions use: a missing or retyped column fails, a new one warns",
        )
        def schema(
            context: dg.AssetCheckExecutionContext, offline: OfflineStore, alerts: SlackAlerts
        ) -> dg.AssetCheckResult:
            store = offline.store()
            con = connect(store.definitions, models=[model])
            try:
                verdict = schema_check(store, model, source_schema(con, model))
            finally:
                con.close()
            record(store.home, [verdict])
            send_alerts(context, alerts)
            return check_result(source_key(model.name), "schema", [verdict], 1)

        return schema

    return [build(model) for model in catalog.semantic_models.values()]
