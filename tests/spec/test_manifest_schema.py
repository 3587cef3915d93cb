"""Every key of MetricFlow's semantic manifest is read by Pantry or refused by name.

``validity_params`` was once dropped without a word, and a query then joined every version
of a slowly changing dimension. This test walks the JSON schema that dbt-semantic-interfaces
ships (``make setup`` installs the package without its dependencies; it is read, never
imported) and, for every object with properties:

- the object must be one Pantry declares in its language (``pantry/spec/language.py``, ``READ``), or one it does not
  take at all, with the reason (``NOT_TAKEN``): a new object in the schema fails here;
- every property must be a field of that class (read), or, placed into a
  valid definitions file at that object, be refused with ``unknown field '<key>'``, the
  file and the line.
"""

from __future__ import annotations

import copy
import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from pantry import PantryError, Store
from pantry.spec import language as lang
from pantry.spec.language import keys


def _schema() -> dict[str, Any]:
    spec = importlib.util.find_spec("dbt_semantic_interfaces")
    assert spec is not None and spec.submodule_search_locations, "run 'make setup': it installs dbt-semantic-interfaces"
    path = (
        Path(spec.submodule_search_locations[0]) / "parsing" / "generated_json_schemas" / "default_explicit_schema.json"
    )
    return json.loads(path.read_text())


# schema object -> (Pantry's checked key set, where the object sits in BASE)
READ: dict[str, tuple[set[str], tuple[Any, ...]]] = {
    "semantic_model_schema": (keys(lang.SemanticModel), ("semantic_models", 0)),
    "semantic_model_defaults_schema": (keys(lang.Defaults), ("semantic_models", 0, "defaults")),
    "semantic_model_config_schema": (keys(lang.Config), ("semantic_models", 0, "config")),
    "entity_schema": (keys(lang.Entity), ("semantic_models", 0, "entities", 0)),
    "entity_config_schema": (keys(lang.Config), ("semantic_models", 0, "entities", 0, "config")),
    "dimension_schema": (keys(lang.Dimension), ("semantic_models", 0, "dimensions", 0)),
    "dimension_config_schema": (keys(lang.Config), ("semantic_models", 0, "dimensions", 0, "config")),
    "dimension_type_params_schema": (
        keys(lang.DimensionParams),
        ("semantic_models", 0, "dimensions", 0, "type_params"),
    ),
    "validity_params_schema": (
        keys(lang.Validity),
        ("semantic_models", 1, "dimensions", 0, "type_params", "validity_params"),
    ),
    "measure_schema": (keys(lang.Measure), ("semantic_models", 0, "measures", 0)),
    "measure_config_schema": (keys(lang.Config), ("semantic_models", 0, "measures", 0, "config")),
    "aggregation_type_params_schema": (keys(lang.AggParams), ("semantic_models", 0, "measures", 1, "agg_params")),
    "non_additive_dimension_schema": (
        keys(lang.NonAdditive),
        ("semantic_models", 0, "measures", 2, "non_additive_dimension"),
    ),
    "metric_schema": (keys(lang.Metric), ("metrics", 0)),
    "metric_config_schema": (keys(lang.Config), ("metrics", 0, "config")),
    "metric_type_params": (keys(lang.TypeParams), ("metrics", 0, "type_params")),
    "metric_input_schema": (keys(lang.MetricInput), ("metrics", 2, "type_params", "metrics", 0)),
    "cumulative_type_params_schema": (keys(lang.Cumulative), ("metrics", 1, "type_params", "cumulative_type_params")),
    "conversion_type_params_schema": (keys(lang.Conversion), ("metrics", 3, "type_params", "conversion_type_params")),
    "constant_property_input_schema": (
        keys(lang.ConstantProperty),
        ("metrics", 3, "type_params", "conversion_type_params", "constant_properties", 0),
    ),
    "saved_query_schema": (keys(lang.SavedQuery), ("saved_queries", 0)),
    "saved_query_query_params_schema": (keys(lang.QueryParams), ("saved_queries", 0, "query_params")),
    "time_spine_schema": (keys(lang.TimeSpine), ("time_spines", 0)),
    "time_spine_primary_column_schema": (keys(lang.PrimaryColumn), ("time_spines", 0, "primary_column")),
    "custom_granularity_column_schema": (keys(lang.CustomGrain), ("time_spines", 0, "custom_granularities", 0)),
}
# schema objects Pantry does not take as such, and why
NOT_TAKEN = {
    "node_relation_schema": "a warehouse table's name, read as the model's table (a source in a DuckDB file "
    "needs none): its keys are compared below, its use is tests/engines/test_postgres_engine.py",
    "project_configuration_schema": "Pantry takes 'time_spines:' at the top level of any definitions file",
    "time_spine_table_configuration_schema": "MetricFlow's legacy spine setting; 'time_spines:' replaces it",
    "metric_aggregation_params_schema": "a metric that aggregates a column itself (no measure): refused by name "
    "as 'type_params.metric_aggregation_params' until Pantry implements it",
    "export_schema": "dbt's exports materialize a saved query in the warehouse; Pantry serves it instead",
    "export_config_schema": "part of an export (above)",
    "is-time-dimension": "a schema rule (type: time), not an object of the manifest",
}
# keys MetricFlow's schema knows that a dbt project writes differently: what Pantry reads instead
RENAMED: dict[tuple[str, str], str] = {}

BASE: dict[str, Any] = {
    "semantic_models": [
        {
            "name": "orders",
            "source": "data/orders.csv",
            "defaults": {"agg_time_dimension": "ordered_at"},
            "config": {"meta": {"owner": "shop"}},
            "entities": [{"name": "order", "type": "primary", "expr": "order_id", "config": {"meta": {}}}],
            "dimensions": [
                {
                    "name": "ordered_at",
                    "type": "time",
                    "type_params": {"time_granularity": "day"},
                    "config": {"meta": {}},
                }
            ],
            "measures": [
                {"name": "revenue", "agg": "sum", "expr": "amount", "config": {"meta": {}}},
                {"name": "p90", "agg": "percentile", "expr": "amount", "agg_params": {"percentile": 0.9}},
                {
                    "name": "balance",
                    "agg": "sum",
                    "expr": "amount",
                    "non_additive_dimension": {"name": "ordered_at", "window_choice": "max"},
                },
                {"name": "buys", "agg": "sum", "expr": "1"},
            ],
        },
        {
            "name": "listings",
            "source": "data/listings.csv",
            "primary_entity": "listing",
            "entities": [{"name": "listing", "type": "natural", "expr": "listing_id"}],
            "dimensions": [
                {
                    "name": "valid_from",
                    "type": "time",
                    "type_params": {"time_granularity": "day", "validity_params": {"is_start": True}},
                },
                {
                    "name": "valid_to",
                    "type": "time",
                    "type_params": {"time_granularity": "day", "validity_params": {"is_end": True}},
                },
            ],
        },
    ],
    "metrics": [
        {"name": "revenue", "type": "simple", "type_params": {"measure": "revenue"}, "config": {"meta": {}}},
        {
            "name": "revenue_7d",
            "type": "cumulative",
            "type_params": {"measure": "revenue", "cumulative_type_params": {"window": "7 days"}},
        },
        {
            "name": "revenue_wow",
            "type": "derived",
            "type_params": {
                "expr": "revenue - before",
                "metrics": [{"name": "revenue"}, {"name": "revenue", "offset_window": "7 days", "alias": "before"}],
            },
        },
        {
            "name": "buy_rate",
            "type": "conversion",
            "type_params": {
                "conversion_type_params": {
                    "base_measure": "buys",
                    "conversion_measure": "buys",
                    "entity": "order",
                    "constant_properties": [{"base_property": "order", "conversion_property": "order"}],
                }
            },
        },
    ],
    "saved_queries": [{"name": "daily", "query_params": {"metrics": ["revenue"], "group_by": ["metric_time__day"]}}],
    "time_spines": [
        {
            "name": "spine",
            "source": "data/spine.csv",
            "primary_column": {"name": "ds", "time_granularity": "day"},
            "custom_granularities": [{"name": "fiscal_quarter", "column_name": "fq"}],
        }
    ],
}


def _store(root: Path, doc: dict[str, Any]) -> Store:
    defs = root / "metrics_defs"
    (defs / "data").mkdir(parents=True, exist_ok=True)
    (defs / "data" / "orders.csv").write_text("order_id,ordered_at,amount\n1,2024-01-01,5\n")
    (defs / "data" / "listings.csv").write_text("listing_id,valid_from,valid_to\n1,2024-01-01,\n")
    (defs / "data" / "spine.csv").write_text("ds,fq\n2024-01-01,2024-01-01\n")
    (defs / "manifest.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    return Store(defs=defs, home=root / "home")


def _at(doc: dict[str, Any], path: tuple[Any, ...]) -> Any:
    node = doc
    for step in path:
        node = node[step]
    return node


def test_the_base_file_is_valid(tmp_path: Path) -> None:
    """The file every refusal below is made in: without the injected key, it validates."""
    _store(tmp_path, BASE).validate()


def test_every_object_of_the_schema_is_read_or_not_taken_with_a_reason() -> None:
    objects = {name for name, body in _schema()["definitions"].items() if "properties" in body}
    unplaced = objects - set(READ) - set(NOT_TAKEN)
    assert not unplaced, f"objects of MetricFlow's manifest that Pantry neither reads nor declines: {sorted(unplaced)}"


def _cases() -> list[tuple[str, str]]:
    cases = []
    for name, body in sorted(_schema()["definitions"].items()):
        if name in READ:
            keys, _ = READ[name]
            cases += [(name, p) for p in sorted(body.get("properties", {})) if p not in keys]
    return cases


@pytest.mark.parametrize(("obj", "key"), _cases())
def test_a_key_pantry_does_not_read_is_refused_by_name(tmp_path: Path, obj: str, key: str) -> None:
    if (obj, key) in RENAMED:
        assert RENAMED[(obj, key)] in READ[obj][0]
    doc = copy.deepcopy(BASE)
    _at(doc, READ[obj][1])[key] = "x"
    with pytest.raises(PantryError) as err:
        _store(tmp_path, doc).validate()
    text = str(err.value)
    assert f"unknown field '{key}'" in text and "manifest.yaml" in text and "[line " in text, text


def test_a_node_relation_declares_every_key_of_the_schema() -> None:
    body = _schema()["definitions"]["node_relation_schema"]
    assert set(body["properties"]) <= keys(lang.NodeRelation)
