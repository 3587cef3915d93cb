"""Read ``metrics_defs/`` into a Catalog: YAML shape first, references second.

Why two passes: shape errors (a typo in a key, a missing ``name``) are found per file,
while references (a ratio naming a metric in another file) need every file read first.
Both passes collect errors instead of stopping at the first, so a user fixes a batch
in one go. MetricFlow's long forms are normalised here, so nothing downstream knows
there were two spellings.
"""

from __future__ import annotations

import difflib
import re
import warnings
from collections.abc import Callable
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any, TypeVar

from pantry.errors import PantryError, PantryErrors, did_you_mean
from pantry.spec.aggregations import ALIASES as AGG_ALIASES
from pantry.spec.aggregations import NAMES as AGG_NAMES
from pantry.spec.aggregations import aggregation
from pantry.spec.model import (
    Catalog,
    Conversion,
    Dimension,
    Entity,
    Freshness,
    Measure,
    Metric,
    MetricInput,
    NonAdditive,
    Origin,
    Project,
    SavedQuery,
    SemanticModel,
    TimeSpine,
)
from pantry.spec.windows import GRAINS as GRAIN_NAMES
from pantry.spec.windows import parse_grain, parse_offset, parse_window
from pantry.spec.yaml_lines import line_of, load_yaml_documents

TOP_LEVEL = {
    "project",
    "semantic_models",
    "metrics",
    "feature_views",
    "semantic_model",
    "metric",
    "saved_queries",
    "saved_query",
    "time_spines",
}
TIME_SPINE_KEYS = {"name", "source", "primary_column", "custom_granularities", "description"}
SAVED_QUERY_KEYS = {"name", "description", "label", "query_params", "exports", "config", "meta", "tags"}
QUERY_PARAM_KEYS = {"metrics", "group_by", "where", "order_by", "limit"}
SKIPPED_TOP_LEVEL = {
    "models",
    "groups",
    "exposures",
    "sources",
    "version",
    "seeds",
    "snapshots",
    "macros",
    "data_tests",
    "unit_tests",
}
MODEL_KEYS = {
    "name",
    "source",
    "ingest",
    "model",
    "defaults",
    "entities",
    "dimensions",
    "measures",
    "description",
    "label",
    "primary_entity",
    "config",
    "meta",
    "partitions",
}
# what to write instead, for keys of MetricFlow's manifest that a Pantry file spells otherwise
KEY_HINTS = {
    "node_relation": "Pantry reads a model's table from 'source:' (a CSV or Parquet path, an s3:// URI or "
    "schema.table); write source: <schema>.<alias>",
    "metric_aggregation_params": "a metric that aggregates a column itself is not read yet: define a measure "
    "and name it in type_params.measure",
}
ENTITY_KEYS = {"name", "type", "expr", "description", "label", "role", "config", "meta"}
DIMENSION_KEYS = {"name", "type", "expr", "type_params", "description", "label", "is_partition", "config", "meta"}
DIMENSION_PARAM_KEYS = {"time_granularity", "validity_params"}
VALIDITY_KEYS = {"is_start", "is_end"}
MEASURE_KEYS = {
    "name",
    "agg",
    "expr",
    "agg_params",
    "agg_time_dimension",
    "create_metric",
    "description",
    "label",
    "non_additive_dimension",
    "config",
    "meta",
}
METRIC_KEYS = {
    "name",
    "type",
    "type_params",
    "filter",
    "description",
    "label",
    "meta",
    "config",
    "dimensions",
    "partitions",
    "freshness",
    "time_granularity",
}
TYPE_PARAMS_KEYS = {
    "measure",
    "numerator",
    "denominator",
    "expr",
    "metrics",
    "window",
    "grain_to_date",
    "cumulative_type_params",
    "input_measures",
    "conversion_type_params",
}
INPUT_KEYS = {"name", "filter", "alias", "offset_window", "offset_to_grain", "fill_nulls_with", "join_to_timespine"}
T = TypeVar("T")
ENTITY_TYPES = {"primary", "unique", "foreign", "natural"}
METRIC_TYPES = {"simple", "ratio", "derived", "cumulative", "conversion"}
CONVERSION_KEYS = {"base_measure", "conversion_measure", "entity", "calculation", "window", "constant_properties"}
# The nested objects of MetricFlow's manifest, each read with its own keys checked, so that a
# key Pantry does not read is refused by name (tests/spec/test_manifest_schema.py walks
# dbt-semantic-interfaces' JSON schema against these sets).
AGG_PARAM_KEYS = {"percentile", "use_discrete_percentile", "use_approximate_percentile"}
NON_ADDITIVE_KEYS = {"name", "window_choice", "window_groupings"}
DEFAULTS_KEYS = {"agg_time_dimension"}
CUMULATIVE_KEYS = {"window", "grain_to_date", "period_agg"}
CONSTANT_PROPERTY_KEYS = {"base_property", "conversion_property"}
PRIMARY_COLUMN_KEYS = {"name", "time_granularity"}
CUSTOM_GRAIN_KEYS = {"name", "column_name"}
# dbt's config on a model, entity, dimension, measure or metric: ``meta`` is read (pii, owner);
# group, tags and docs describe and change no answer; anything else (``enabled``) is refused
CONFIG_KEYS = {"meta", "group", "tags", "docs"}


def _shape(value: Any) -> str:
    return {list: "list", dict: "mapping", str: "string", bool: "boolean"}.get(type(value), type(value).__name__)


class _Reader:
    """Collects shape errors for one file while turning its YAML into specs."""

    def __init__(self, path: Path, shown_as: str) -> None:
        self.path = path
        self.shown_as = shown_as
        self.errors: list[PantryError] = []

    def error(
        self,
        message: str,
        node: Any = None,
        definition: str | None = None,
        field: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.errors.append(
            PantryError(message, file=self.shown_as, line=line_of(node), definition=definition, field=field, hint=hint)
        )

    def origin(self, node: Any) -> Origin:
        return Origin(self.path, self.shown_as, line_of(node))

    def check_keys(self, node: dict, allowed: set[str], definition: str) -> None:
        if "config" in allowed and isinstance(node.get("config"), dict) and allowed is not SAVED_QUERY_KEYS:
            self.check_keys(node["config"], CONFIG_KEYS, f"{definition} config")
        for key in node:
            if key not in allowed:
                self.error(
                    f"unknown field '{key}'",
                    node,
                    definition,
                    key,
                    KEY_HINTS.get(str(key))
                    or did_you_mean(str(key), allowed)
                    or f"allowed fields: {', '.join(sorted(allowed))}",
                )

    def require_mapping(self, node: Any, what: str) -> bool:
        if not isinstance(node, dict):
            self.error(f"{what} must be a mapping with a 'name', got {type(node).__name__}", node)
            return False
        if not node.get("name"):
            self.error(f"{what} has no 'name'", node, field="name", hint="add 'name: <snake_case_name>'")
            return False
        return True

    def mapping(self, node: dict, field: str, definition: str, example: str) -> dict:
        """``node[field]`` when it is a mapping (or absent: ``{}``); a list or a scalar where a
        mapping belongs is an error naming the field, with an example of the right shape."""
        value = node.get(field)
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.error(
                f"'{field}' must be a mapping, got a {_shape(value)}",
                node,
                definition,
                field,
                f"write it as {example}",
            )
            return {}
        return value

    def as_list(self, value: Any, what: str, node: Any, definition: str) -> list:
        if value is None:
            return []
        if not isinstance(value, list):
            self.error(
                f"'{what}' must be a list", node, definition, what, hint=f"write '{what}:' followed by '- ...' items"
            )
            return []
        return value


def _filters(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, list):
        return tuple(str(v) for v in value)
    return (str(value),)


def _meta(node: dict) -> dict[str, Any]:
    meta = dict(node.get("meta") or {}) if isinstance(node.get("meta"), dict) else {}
    config = node.get("config") if isinstance(node.get("config"), dict) else {}
    if isinstance(config.get("meta"), dict):
        meta.update(config["meta"])
    return meta


def _is_pii(node: dict) -> bool:
    """``meta: {pii: true}`` or dbt's ``config: {meta: {pii: true}}``; a string "true" counts too."""
    value = _meta(node).get("pii", False)
    return value is True or str(value).strip().lower() in ("true", "yes", "1")


def _read_entity(r: _Reader, node: Any, owner: str) -> Entity | None:
    if not r.require_mapping(node, f"an entity of {owner}"):
        return None
    definition = f"{owner} entity '{node['name']}'"
    r.check_keys(node, ENTITY_KEYS, definition)
    kind = str(node.get("type", "")).lower()
    if kind not in ENTITY_TYPES:
        r.error(
            f"type '{node.get('type')}' is not an entity type",
            node,
            definition,
            "type",
            did_you_mean(kind, ENTITY_TYPES) or "use primary, unique, foreign or natural",
        )
    return Entity(str(node["name"]), kind, str(node.get("expr") or node["name"]), line_of(node), _is_pii(node))


def _read_dimension(r: _Reader, node: Any, owner: str) -> Dimension | None:
    if not r.require_mapping(node, f"a dimension of {owner}"):
        return None
    definition = f"{owner} dimension '{node['name']}'"
    r.check_keys(node, DIMENSION_KEYS, definition)
    kind = str(node.get("type", "categorical")).lower()
    if kind not in ("categorical", "time"):
        r.error(
            f"type '{node.get('type')}' is not a dimension type", node, definition, "type", "use categorical or time"
        )
    grain = "day"
    params = r.mapping(node, "type_params", definition, "'type_params: {time_granularity: day}'")
    r.check_keys(params, DIMENSION_PARAM_KEYS, f"{definition} type_params")
    if kind == "time" and params.get("time_granularity"):
        try:
            grain = parse_grain(params["time_granularity"])
        except ValueError as err:
            r.error(str(err), node, definition, "type_params.time_granularity")
    validity = _read_validity(r, node, params, definition, kind)
    return Dimension(
        str(node["name"]),
        kind,
        str(node.get("expr") or node["name"]),
        grain,
        bool(node.get("is_partition", False)),
        node.get("label"),
        node.get("description"),
        line_of(node),
        _is_pii(node),
        validity,
    )


def _read_validity(r: _Reader, node: dict, params: dict, definition: str, kind: str) -> str | None:
    """``validity_params: {is_start: true}`` or ``{is_end: true}`` (MetricFlow's SCD type II)."""
    if "validity_params" not in params:
        return None
    value = params.get("validity_params")
    field = "type_params.validity_params"
    if not isinstance(value, dict):
        r.error(
            "'validity_params' must be a mapping", node, definition, field, "write {is_start: true} or {is_end: true}"
        )
        return None
    r.check_keys(value, VALIDITY_KEYS, f"{definition} {field}")
    start, end = bool(value.get("is_start")), bool(value.get("is_end"))
    if kind != "time" or start == end:
        r.error(
            "a validity dimension is a time dimension that is either the start or the end of a row's window",
            node,
            definition,
            field,
            "write {is_start: true} on one time dimension and {is_end: true} on another",
        )
        return None
    return "start" if start else "end"


def _read_measure(r: _Reader, node: Any, owner: str) -> Measure | None:
    if not r.require_mapping(node, f"a measure of {owner}"):
        return None
    definition = f"{owner} measure '{node['name']}'"
    r.check_keys(node, MEASURE_KEYS, definition)
    agg = str(node.get("agg", "")).lower()
    if agg not in AGG_NAMES:
        r.error(
            f"agg '{node.get('agg')}' is not an aggregation",
            node,
            definition,
            "agg",
            did_you_mean(agg, AGG_NAMES) or f"use one of {', '.join(sorted(AGG_NAMES))}",
        )
    agg = AGG_ALIASES.get(agg, agg)
    params = r.mapping(node, "agg_params", definition, "'agg_params: {percentile: 0.9}'")
    r.check_keys(params, AGG_PARAM_KEYS, f"{definition} agg_params")
    percentile = params.get("percentile")
    kind = aggregation(agg)  # None for an unknown agg, refused above (the reader goes on to find more)
    if kind is not None and kind.quantile and kind.percentile is None and percentile is None:
        r.error(
            "a percentile measure needs agg_params.percentile",
            node,
            definition,
            "agg_params",
            "add 'agg_params: {percentile: 0.9}'",
        )
    expr = node.get("expr")
    non_additive = None
    if node.get("non_additive_dimension") is not None:
        nad = r.mapping(
            node, "non_additive_dimension", definition, "'non_additive_dimension: {name: ds, window_choice: max}'"
        )
        r.check_keys(nad, NON_ADDITIVE_KEYS, f"{definition} non_additive_dimension")
        choice = str(nad.get("window_choice", "min")).lower()
        if choice not in ("min", "max"):
            r.error(
                f"window_choice '{choice}' is not min or max", node, definition, "non_additive_dimension.window_choice"
            )
        if nad and not nad.get("name"):
            r.error("needs the name of a time dimension", node, definition, "non_additive_dimension.name")
        if nad.get("name"):
            groupings = _strings(
                r, nad.get("window_groupings"), node, definition, "non_additive_dimension.window_groupings"
            )
            non_additive = NonAdditive(str(nad["name"]), choice, groupings)
    return Measure(
        name=str(node["name"]),
        non_additive=non_additive,
        agg=agg,
        expr=str(expr if expr is not None else node["name"]),
        agg_time_dimension=node.get("agg_time_dimension"),
        percentile=float(percentile) if percentile is not None else (kind.percentile if kind else None),
        use_discrete_percentile=bool(params.get("use_discrete_percentile", False)),
        use_approximate_percentile=bool(params.get("use_approximate_percentile", False)),
        create_metric=bool(node.get("create_metric", False)),
        label=node.get("label"),
        description=node.get("description"),
        line=line_of(node),
    )


def _read_model(r: _Reader, node: Any) -> SemanticModel | None:
    if not r.require_mapping(node, "a semantic model"):
        return None
    name = str(node["name"])
    definition = f"semantic model '{name}'"
    r.check_keys(node, MODEL_KEYS, definition)
    source = node.get("source")
    if not source:
        r.error(
            "has no 'source'",
            node,
            definition,
            "source",
            "add 'source: data/<file>.parquet' (a CSV or Parquet path, an s3:// URI or a table name)",
        )
    defaults = r.mapping(node, "defaults", definition, "'defaults: {agg_time_dimension: <time dimension>}'")
    r.check_keys(defaults, DEFAULTS_KEYS, f"{definition} defaults")
    model = _model(r, node, name, source, defaults, definition)
    starts = [d.name for d in model.dimensions if d.validity == "start"]
    ends = [d.name for d in model.dimensions if d.validity == "end"]
    if (starts or ends) and (len(starts) != 1 or len(ends) > 1):
        r.error(
            f"an SCD type II model has one validity start and at most one end; found start {starts or 'none'}, "
            f"end {ends or 'none'}",
            node,
            definition,
            "dimensions",
            "mark one time dimension {is_start: true} and one {is_end: true} in type_params.validity_params",
        )
    return model


def _model(r: _Reader, node: Any, name: str, source: Any, defaults: dict, definition: str) -> SemanticModel:
    return SemanticModel(
        name=name,
        source=str(source or ""),
        entities=tuple(
            e
            for n in r.as_list(node.get("entities"), "entities", node, definition)
            if (e := _read_entity(r, n, definition))
        ),
        dimensions=tuple(
            d
            for n in r.as_list(node.get("dimensions"), "dimensions", node, definition)
            if (d := _read_dimension(r, n, definition))
        ),
        measures=tuple(
            m
            for n in r.as_list(node.get("measures"), "measures", node, definition)
            if (m := _read_measure(r, n, definition))
        ),
        origin=r.origin(node),
        agg_time_dimension=defaults.get("agg_time_dimension"),
        primary_entity=node.get("primary_entity"),
        description=node.get("description"),
        ingest=_read_ingest(r, node, definition),
    )


def _read_ingest(r: _Reader, node: dict, definition: str) -> str | None:
    value = node.get("ingest")
    if value is None:
        return None
    if str(value).lower() != "push":
        r.error(f"ingest '{value}' is not a way in", node, definition, "ingest", "write 'ingest: push'")
        return None
    entities = [e for e in node.get("entities") or [] if isinstance(e, dict) and e.get("type") == "primary"]
    if not entities:
        r.error(
            "an 'ingest: push' model needs a primary entity: the event id that makes a push idempotent",
            node,
            definition,
            "entities",
            "add '- {name: event, type: primary, expr: event_id}'",
        )
    return "push"


def _read_input(r: _Reader, value: Any, node: Any, definition: str, field: str) -> MetricInput | None:
    if value is None:
        return None
    if isinstance(value, str):
        return MetricInput(value)
    if not isinstance(value, dict) or not value.get("name"):
        r.error(f"'{field}' must be a name or a mapping with 'name'", node, definition, field)
        return None
    r.check_keys(value, INPUT_KEYS, f"{definition} {field}")
    offset = None
    if value.get("offset_window") is not None:
        try:
            offset = parse_offset(value["offset_window"])
        except ValueError as err:
            r.error(str(err), node, definition, f"{field}.offset_window")
    return MetricInput(
        name=str(value["name"]),
        filter=_filters(value.get("filter")),
        alias=value.get("alias"),
        offset_window=offset,
        offset_to_grain=value.get("offset_to_grain"),
        fill_nulls_with=value.get("fill_nulls_with"),
        join_to_timespine=bool(value.get("join_to_timespine", False)),
    )


def _parse_date(r: _Reader, value: Any, node: Any, definition: str, field: str) -> date | None:
    if value is None:
        return None
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        r.error(f"'{value}' is not a date", node, definition, field, "write it as YYYY-MM-DD")
        return None


def _read_freshness(r: _Reader, value: Any, node: Any, definition: str) -> Freshness | None:
    if value is None:
        return None
    try:
        fail = parse_window(value.get("fail_after"))
        warn = parse_window(value["warn_after"]) if value.get("warn_after") else None
        return Freshness(fail, warn)
    except (ValueError, AttributeError) as err:
        r.error(
            str(err), node, definition, "freshness", "write 'freshness: {fail_after: 26 hours, warn_after: 25 hours}'"
        )
        return None


def _read_metric(r: _Reader, node: Any) -> Metric | None:
    if not r.require_mapping(node, "a metric"):
        return None
    name = str(node["name"])
    definition = f"metric '{name}'"
    r.check_keys(node, METRIC_KEYS, definition)
    kind = str(node.get("type", "")).lower()
    if kind not in METRIC_TYPES:
        hint = did_you_mean(kind, METRIC_TYPES) or "use simple, ratio, derived, cumulative or conversion"
        r.error(f"type '{node.get('type')}' is not a metric type", node, definition, "type", hint)
    params = node.get("type_params") or {}
    if isinstance(params, dict):
        r.check_keys(params, TYPE_PARAMS_KEYS, f"{definition} type_params")
    else:
        r.error("'type_params' must be a mapping", node, definition, "type_params")
        params = {}
    cumulative = r.mapping(params, "cumulative_type_params", definition, "'cumulative_type_params: {window: 7 days}'")
    r.check_keys(cumulative, CUMULATIVE_KEYS, f"{definition} cumulative_type_params")
    window = cumulative.get("window", params.get("window"))
    grain_to_date = cumulative.get("grain_to_date", params.get("grain_to_date"))
    parsed_window = None
    if window is not None:
        try:
            parsed_window = parse_window(window)
        except ValueError as err:
            r.error(str(err), node, definition, "type_params.window")
    if grain_to_date is not None:
        try:
            grain_to_date = parse_grain(grain_to_date)
        except ValueError as err:
            r.error(str(err), node, definition, "type_params.grain_to_date")
    period_agg = str(cumulative.get("period_agg", "first")).lower()
    if period_agg not in ("first", "last", "average"):
        r.error(
            f"period_agg '{period_agg}' is not first, last or average",
            node,
            definition,
            "cumulative_type_params.period_agg",
        )
    partitions = r.mapping(node, "partitions", definition, "'partitions: {start: 2024-01-01}'")
    inputs = tuple(
        i
        for v in r.as_list(params.get("metrics"), "type_params.metrics", node, definition)
        if (i := _read_input(r, v, node, definition, "type_params.metrics"))
    )
    metric = Metric(
        name=name,
        type=kind,
        origin=r.origin(node),
        description=node.get("description"),
        label=node.get("label"),
        filter=_filters(node.get("filter")),
        meta=_meta(node),
        measure=_read_input(r, params.get("measure"), node, definition, "type_params.measure"),
        numerator=_read_input(r, params.get("numerator"), node, definition, "type_params.numerator"),
        denominator=_read_input(r, params.get("denominator"), node, definition, "type_params.denominator"),
        expr=params.get("expr"),
        inputs=inputs,
        window=parsed_window,
        grain_to_date=grain_to_date,
        period_agg=period_agg,
        dimensions=tuple(str(d) for d in r.as_list(node.get("dimensions"), "dimensions", node, definition)),
        partitions_start=_parse_date(r, partitions.get("start"), node, definition, "partitions.start"),
        partitions_end=_parse_date(r, partitions.get("end"), node, definition, "partitions.end"),
        freshness=_read_freshness(r, node.get("freshness"), node, definition),
        conversion=_read_conversion(r, params, node, definition) if kind == "conversion" else None,
        time_granularity=_metric_grain(r, node, definition),
    )
    required = {
        "simple": ("measure",),
        "cumulative": ("measure",),
        "ratio": ("numerator", "denominator"),
        "derived": ("expr", "inputs"),
    }
    for attr in required.get(kind, ()):
        if not getattr(metric, attr):
            shown = "type_params.metrics" if attr == "inputs" else f"type_params.{attr}"
            r.error(f"a {kind} metric needs '{shown}'", node, definition, shown)
    return metric


def _metric_grain(r: _Reader, node: dict, definition: str) -> str | None:
    """A metric's ``time_granularity``: a standard grain, or a custom one (checked when queried)."""
    value = node.get("time_granularity")
    if value is None:
        return None
    try:
        return parse_grain(str(value))
    except ValueError:
        if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", str(value)):
            return str(value).lower()  # a custom granularity of the time spine
        r.error(
            f"'{value}' is not a time grain",
            node,
            definition,
            "time_granularity",
            "write e.g. 'time_granularity: month'",
        )
        return None


def _read_conversion(r: _Reader, params: dict[str, Any], node: Any, definition: str) -> Conversion | None:
    """``type_params.conversion_type_params``: every missing or wrong field is named at once."""
    field = "type_params.conversion_type_params"
    example = "'conversion_type_params: {base_measure: visits, conversion_measure: buys, entity: user}'"
    if "conversion_type_params" not in params:
        r.error(f"a conversion metric needs '{field}'", node, definition, field, f"write {example}")
        return None
    value = r.mapping(params, "conversion_type_params", definition, example)
    r.check_keys(value, CONVERSION_KEYS, f"{definition} {field}")
    base = _read_input(r, value.get("base_measure"), node, definition, f"{field}.base_measure")
    conversion = _read_input(r, value.get("conversion_measure"), node, definition, f"{field}.conversion_measure")
    for key, found in (("base_measure", base), ("conversion_measure", conversion), ("entity", value.get("entity"))):
        if not found:
            r.error(
                f"a conversion metric needs '{field}.{key}'", node, definition, f"{field}.{key}", f"write {example}"
            )
    calculation = str(value.get("calculation", "conversion_rate")).lower()
    if calculation not in ("conversion_rate", "conversions"):
        r.error(
            f"calculation '{calculation}' is not conversion_rate or conversions",
            node,
            definition,
            f"{field}.calculation",
            did_you_mean(calculation, ["conversion_rate", "conversions"]),
        )
    window = None
    if value.get("window") is not None:
        try:
            window = parse_window(value["window"])
        except ValueError as err:
            r.error(str(err), node, definition, f"{field}.window")
    properties: list[tuple[str, str]] = []
    for item in r.as_list(value.get("constant_properties"), f"{field}.constant_properties", node, definition):
        if isinstance(item, dict):
            r.check_keys(item, CONSTANT_PROPERTY_KEYS, f"{definition} {field}.constant_properties")
        if isinstance(item, dict) and item.get("base_property") and item.get("conversion_property"):
            properties.append((str(item["base_property"]), str(item["conversion_property"])))
        else:
            r.error(
                "each constant property needs 'base_property' and 'conversion_property'",
                node,
                definition,
                f"{field}.constant_properties",
                "write '- {base_property: product, conversion_property: product}'",
            )
    if base is None or conversion is None or not value.get("entity"):
        return None
    return Conversion(base, conversion, str(value["entity"]), calculation, window, tuple(properties))


def _read_time_spine(r: _Reader, node: Any) -> TimeSpine | None:
    """``time_spines:`` as in MetricFlow's project configuration, ``source:`` for ``node_relation:``."""
    if not r.require_mapping(node, "a time spine"):
        return None
    name = str(node["name"])
    definition = f"time spine '{name}'"
    r.check_keys(node, TIME_SPINE_KEYS, definition)
    primary = r.mapping(node, "primary_column", definition, "'primary_column: {name: ds, time_granularity: day}'")
    r.check_keys(primary, PRIMARY_COLUMN_KEYS, f"{definition} primary_column")
    customs = _custom_grains(r, node.get("custom_granularities"), node, definition)
    return _time_spine(r, node, definition, name, primary.get("name"), primary.get("time_granularity"), customs)


def _read_dbt_time_spine(r: _Reader, node: Any) -> TimeSpine | None:
    """dbt's form: a model with ``time_spine: {standard_granularity_column: ...}``, whose
    column's ``granularity`` is given under ``columns:``, and ``source:`` for its rows."""
    name = str(node["name"])
    definition = f"time spine '{name}'"
    spine = r.mapping(node, "time_spine", definition, "'time_spine: {standard_granularity_column: date_day}'")
    column = spine.get("standard_granularity_column")
    grain = next(
        (
            c.get("granularity")
            for c in r.as_list(node.get("columns"), "columns", node, definition)
            if isinstance(c, dict) and c.get("name") == column
        ),
        "day",
    )
    customs = _custom_grains(r, spine.get("custom_granularities"), node, definition)
    return _time_spine(r, node, definition, name, column, grain, customs)


def _custom_grains(r: _Reader, value: Any, node: Any, definition: str) -> tuple[tuple[str, str], ...]:
    customs = []
    for item in r.as_list(value, "custom_granularities", node, definition):
        if isinstance(item, dict):
            r.check_keys(item, CUSTOM_GRAIN_KEYS, f"{definition} custom_granularities")
        if isinstance(item, dict) and item.get("name"):
            customs.append((str(item["name"]), str(item.get("column_name") or item["name"])))
        else:
            r.error(
                "each custom granularity needs a 'name'",
                node,
                definition,
                "custom_granularities",
                "write '- {name: fiscal_quarter, column_name: fq}'",
            )
    return tuple(customs)


FINER_THAN_PANTRY = {"nanosecond", "microsecond"}


class SkippedDefinition(UserWarning):
    """A definition MetricFlow accepts that Pantry leaves out, on purpose and by name."""


def _time_spine(
    r: _Reader, node: Any, definition: str, name: str, column: Any, grain: Any, customs: tuple[tuple[str, str], ...]
) -> TimeSpine | None:
    if not node.get("source"):
        r.error(
            "a time spine needs 'source:'",
            node,
            definition,
            "source",
            "give a CSV or Parquet path, as for a semantic model",
        )
        return None
    if not column:
        r.error("a time spine needs its primary column", node, definition, "primary_column.name")
        return None
    if str(grain).lower() in FINER_THAN_PANTRY:
        # MetricFlow's projects declare spines down to the nanosecond; Pantry's finest grain is
        # the millisecond. Such a spine is skipped, by name, and the rest of the file stands.
        warnings.warn(
            SkippedDefinition(
                f"{r.shown_as}: {definition}: skipped, its grain '{str(grain).lower()}' is finer than Pantry's finest "
                f"(millisecond) [line {line_of(node)}]"
            ),
            stacklevel=2,
        )
        return None
    try:
        grain = parse_grain(grain or "day")
    except ValueError as err:
        r.error(str(err), node, definition, "primary_column.time_granularity")
        return None
    for custom, _ in customs:
        if custom.lower() in GRAIN_NAMES:
            r.error(
                f"custom granularity '{custom}' has the name of a standard grain",
                node,
                definition,
                "custom_granularities",
                "rename it",
            )
    return TimeSpine(name, str(node["source"]), str(column), grain, r.origin(node), customs)


def _strings(r: _Reader, value: Any, node: Any, definition: str, field: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(v, (str, int, float)) for v in value):
        return tuple(str(v) for v in value)
    r.error(f"'{field}' must be a list of strings", node, definition, field, f"write '{field}: [a, b]'")
    return ()


def _read_saved_query(r: _Reader, node: Any) -> SavedQuery | None:
    from pantry.spec.filters import reference_name

    if not r.require_mapping(node, "a saved query"):
        return None
    name = str(node["name"])
    definition = f"saved query '{name}'"
    r.check_keys(node, SAVED_QUERY_KEYS, definition)
    params = r.mapping(node, "query_params", definition, "'query_params: {metrics: [revenue], group_by: [...]}'")
    r.check_keys(params, QUERY_PARAM_KEYS, f"{definition} query_params")
    metrics = _strings(r, params.get("metrics"), node, definition, "query_params.metrics")
    if not metrics and not params.get("group_by"):  # without metrics: the group-bys' distinct values
        r.error(
            "has no metrics and no group_by",
            node,
            definition,
            "query_params.metrics",
            "add 'query_params: {metrics: [...]}'",
        )
    group_by: list[str] = []
    for item in _strings(r, params.get("group_by"), node, definition, "query_params.group_by"):
        try:  # TimeDimension('metric_time', 'day'), Dimension('customer__segment'), or a plain name
            group_by.append(reference_name(item) if "(" in item else item)
        except ValueError as err:
            r.error(f"group_by '{item}': {err}", node, definition, "query_params.group_by")
    order = []
    for item in _strings(r, params.get("order_by"), node, definition, "query_params.order_by"):
        descending = item.strip().startswith("-") or ".descending(True)" in item.replace(" ", "")
        text = item.strip().lstrip("-").replace(".descending(True)", "").replace(".descending()", "")
        text = re.sub(r"^Metric\(\s*['\"](\w+)['\"]\s*\)$", r"\1", text)  # a metric, by name
        try:
            text = reference_name(text) if "(" in text else text
        except ValueError as err:
            r.error(f"order_by '{item}': {err}", node, definition, "query_params.order_by")
        order.append(f"-{text}" if descending else text)
    limit = params.get("limit")
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 1):
        r.error(f"limit '{limit}' is not a whole number of at least 1", node, definition, "query_params.limit")
        limit = None
    return SavedQuery(
        name=name,
        origin=r.origin(node),
        metrics=metrics,
        group_by=tuple(group_by),
        where=_strings(r, params.get("where"), node, definition, "query_params.where"),
        order=tuple(order),
        limit=limit,
        description=node.get("description"),
        label=node.get("label"),
    )


def _nodes(r: _Reader, doc: Any, key: str, value: Any) -> list[Any]:
    """The definitions under a top-level key: a list for the plural keys, one for the singular."""
    if not key.endswith("s"):
        return [value]
    if isinstance(value, list):
        return value
    r.error(f"'{key}' must be a list", doc, field=key, hint=f"write '{key}:' followed by '- name: ...' items")
    return []


def _defs_files(root: Path) -> list[Path]:
    """YAML files under ``root``, leaving out hidden folders and files (``.git/``,
    ``.telemetry/``, ``.pantry/``): a ``DAGSTER_HOME`` or a tool's state kept inside the
    definitions folder is not a definition."""
    return sorted(
        p
        for p in root.rglob("*")
        if p.suffix in (".yaml", ".yml")
        and p.is_file()
        and not any(part.startswith(".") for part in p.relative_to(root).parts)
    )


def _foreign(doc: dict[Any, Any]) -> bool:
    """A YAML file that is not Pantry's or dbt's (a tool's config, say): none of its top-level
    keys is ours, and none is close enough to one to be a typo worth reporting."""
    known = sorted(TOP_LEVEL | SKIPPED_TOP_LEVEL)
    return not any(str(key) in known or difflib.get_close_matches(str(key), known, n=1, cutoff=0.75) for key in doc)


def read_catalog(root: Path, collect: bool = False) -> Catalog:
    """Read every YAML file under ``root``; raise PantryErrors listing all shape errors, or with
    ``collect``, keep them in ``Catalog.broken`` beside the definitions that did load."""
    root = Path(root)
    if not root.is_dir():
        raise PantryError(f"definitions folder '{root}' does not exist", hint="set PANTRY_DEFS or create metrics_defs/")
    errors: list[PantryError] = []
    models: list[SemanticModel] = []
    metrics: list[Metric] = []
    views: list[dict[str, Any]] = []
    saved_queries: list[SavedQuery] = []
    spines: list[TimeSpine] = []
    skipped: list[str] = []
    project = Project()
    for path in _defs_files(root):
        shown_as = f"{root.name}/{path.relative_to(root).as_posix()}"
        r = _Reader(path, shown_as)
        try:
            documents = load_yaml_documents(path, shown_as)
        except PantryError as err:
            errors.append(err)
            continue
        for doc in documents:
            if not isinstance(doc, dict):
                r.error("a definitions file must be a mapping with keys such as 'semantic_models:' and 'metrics:'")
                continue
            if _foreign(doc):
                skipped.append(f"{shown_as}: no Pantry definitions in it")
                continue
            for key, value in doc.items():
                if (
                    key == "models"
                    and isinstance(value, list)
                    and any(isinstance(m, dict) and "time_spine" in m for m in value)
                ):
                    # dbt's model-level form: a model with ``time_spine:`` and ``source:``
                    for node in value:
                        if isinstance(node, dict) and "time_spine" in node:
                            if (spine := _safely(r, _read_dbt_time_spine, node, "time spine")) is not None:
                                spines.append(spine)
                    skipped.append(f"{shown_as}: 'models' other than time spines (not used by Pantry)")
                elif key == "time_spines":
                    for node in _nodes(r, doc, key, value):
                        if (spine := _safely(r, _read_time_spine, node, "time spine")) is not None:
                            spines.append(spine)
                elif key in SKIPPED_TOP_LEVEL:
                    skipped.append(f"{shown_as}: '{key}' (not used by Pantry)")
                elif key == "project":
                    if not isinstance(value, dict) or not isinstance(value.get("partitions") or {}, dict):
                        r.error(
                            "'project' must be a mapping",
                            doc,
                            "project",
                            "project",
                            "write 'project: {name: shop, partitions: {start: 2024-01-01}}'",
                        )
                        continue
                    start = _parse_date(
                        r, (value.get("partitions") or {}).get("start"), value, "project", "partitions.start"
                    )
                    end = _parse_date(r, (value.get("partitions") or {}).get("end"), value, "project", "partitions.end")
                    project = Project(str(value.get("name", "pantry")), start or Project().partitions_start, end)
                elif key in ("semantic_models", "semantic_model"):
                    for node in _nodes(r, doc, key, value):
                        if (model := _safely(r, _read_model, node, "semantic model")) is not None:
                            models.append(model)
                elif key in ("metrics", "metric"):
                    for node in _nodes(r, doc, key, value):
                        if (metric := _safely(r, _read_metric, node, "metric")) is not None:
                            metrics.append(metric)
                elif key in ("saved_queries", "saved_query"):
                    for node in _nodes(r, doc, key, value):
                        if (saved := _safely(r, _read_saved_query, node, "saved query")) is not None:
                            saved_queries.append(saved)
                elif key == "feature_views":
                    for node in _nodes(r, doc, key, value):
                        if r.require_mapping(node, "a feature view"):
                            views.append(dict(node, __file__=shown_as, __path__=str(path), __line__=line_of(node)))
                else:
                    r.error(
                        f"unknown top-level key '{key}'",
                        doc,
                        field=key,
                        hint=did_you_mean(str(key), TOP_LEVEL | SKIPPED_TOP_LEVEL)
                        or "use semantic_models:, metrics: or feature_views:",
                    )
        errors.extend(r.errors)
    if errors and not collect:
        raise PantryErrors(errors)
    catalog = Catalog(
        root,
        project,
        *_index(models, metrics),
        feature_views=tuple(views),
        skipped=tuple(skipped),
        saved_queries={q.name: q for q in saved_queries},
        time_spines=tuple(spines),
    )
    return replace(catalog, broken=tuple(errors)) if collect else catalog


def _safely(r: _Reader, read: Callable[[_Reader, Any], T | None], node: Any, kind: str) -> T | None:
    """``read(r, node)``, where a shape no check foresaw (a list where a mapping belongs, deep
    inside) becomes an error naming the file, the definition and the line, never a traceback."""
    try:
        return read(r, node)
    except (AttributeError, TypeError, KeyError, ValueError, IndexError) as err:
        name = node.get("name") if isinstance(node, dict) else None
        r.error(
            f"a field has the wrong shape ({type(err).__name__}: {err})",
            node,
            f"{kind} '{name}'" if name else kind,
            None,
            "compare its fields with docs/definitions.md: lists ('- item') and mappings ('key: value') are not interchangeable",
        )
        return None


def _index(models: list[SemanticModel], metrics: list[Metric]) -> tuple[dict[str, SemanticModel], dict[str, Metric]]:
    """Name the definitions, refusing duplicates, and add metrics implied by measures."""
    errors: list[PantryError] = []
    by_model: dict[str, SemanticModel] = {}
    seen_measures: dict[str, SemanticModel] = {}
    for model in models:
        if model.name in by_model:
            errors.append(
                model.origin.duplicate(f"semantic model '{model.name}'", model.name, by_model[model.name].origin)
            )
        by_model[model.name] = model
        for measure in model.measures:
            if measure.name in seen_measures and seen_measures[measure.name] is not model:
                errors.append(
                    model.origin.error(
                        f"duplicate measure name '{measure.name}', also in semantic model '{seen_measures[measure.name].name}'",
                        definition=f"semantic model '{model.name}'",
                        field="measures",
                        hint="measure names are global, as in MetricFlow; rename one",
                    )
                )
            seen_measures[measure.name] = model
    by_metric: dict[str, Metric] = {}
    for metric in metrics:
        if metric.name in by_metric:
            errors.append(
                metric.origin.duplicate(f"metric '{metric.name}'", metric.name, by_metric[metric.name].origin)
            )
        by_metric[metric.name] = metric
    for model in by_model.values():
        for measure in model.measures:
            if measure.create_metric and measure.name not in by_metric:
                by_metric[measure.name] = Metric(
                    measure.name,
                    "simple",
                    model.origin,
                    description=measure.description,
                    label=measure.label,
                    measure=MetricInput(measure.name),
                    meta={"create_metric": True},
                    implicit=True,
                )
    if errors:
        raise PantryErrors(errors)
    return by_model, by_metric
