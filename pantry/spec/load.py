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
from pantry.spec import language as lang
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
    ViewNode,
)
from pantry.spec.shape_errors import refusals
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
T = TypeVar("T")
N = TypeVar("N", bound=lang.Node)
ENTITY_TYPES = {"primary", "unique", "foreign", "natural"}
METRIC_TYPES = {"simple", "ratio", "derived", "cumulative", "conversion"}


class _Reader:
    """Collects the errors of one file while turning its YAML into specs."""

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
        """``node``: a YAML mapping or a typed one (``language.Node``); either knows its line."""
        self.errors.append(
            PantryError(message, file=self.shown_as, line=line_of(node), definition=definition, field=field, hint=hint)
        )

    def origin(self, node: Any) -> Origin:
        return Origin(self.path, self.shown_as, line_of(node))

    def named(self, node: Any, what: str) -> bool:
        """A definition is a mapping with a name: anything else is refused before its shape is read."""
        if not isinstance(node, dict):
            self.error(f"{what} must be a mapping with a 'name', got {type(node).__name__}", node)
            return False
        if not node.get("name"):
            self.error(f"{what} has no 'name'", node, field="name", hint="add 'name: <snake_case_name>'")
            return False
        return True

    def typed(self, kind: type[N], node: dict, definition: str) -> N | None:
        """``node`` read as the language's ``kind``, or None with every wrong key and shape reported."""
        doc, problems = refusals(kind, node, definition)
        for p in problems:
            self.errors.append(
                PantryError(
                    p.message, file=self.shown_as, line=p.line, definition=p.definition, field=p.field, hint=p.hint
                )
            )
        return doc


def _filters(value: list[str] | None) -> tuple[str, ...]:
    return tuple(value or ())


def _meta(node: lang.Node) -> dict[str, Any]:
    meta = dict(getattr(node, "meta", None) or {})
    config = getattr(node, "config", None)
    if isinstance(config, lang.Config) and config.meta:
        meta.update(config.meta)
    return meta


def _is_pii(node: lang.Node) -> bool:
    """``meta: {pii: true}`` or dbt's ``config: {meta: {pii: true}}``; a string "true" counts too."""
    value = _meta(node).get("pii", False)
    return value is True or str(value).strip().lower() in ("true", "yes", "1")


def _read_entity(r: _Reader, node: lang.Entity, owner: str) -> Entity:
    definition = f"{owner} entity '{node.name}'"
    kind = str(node.type or "").lower()
    if kind not in ENTITY_TYPES:
        r.error(
            f"type '{node.type}' is not an entity type",
            node,
            definition,
            "type",
            did_you_mean(kind, ENTITY_TYPES) or "use primary, unique, foreign or natural",
        )
    return Entity(node.name, kind, node.expr or node.name, node.line, _is_pii(node))


def _read_dimension(r: _Reader, node: lang.Dimension, owner: str) -> Dimension:
    definition = f"{owner} dimension '{node.name}'"
    kind = str(node.type or "categorical").lower()
    if kind not in ("categorical", "time"):
        r.error(f"type '{node.type}' is not a dimension type", node, definition, "type", "use categorical or time")
    grain = "day"
    params = node.type_params or lang.DimensionParams()
    if kind == "time" and params.time_granularity:
        try:
            grain = parse_grain(params.time_granularity)
        except ValueError as err:
            r.error(str(err), node, definition, "type_params.time_granularity")
    return Dimension(
        node.name,
        kind,
        node.expr or node.name,
        grain,
        bool(node.is_partition),
        node.label,
        node.description,
        node.line,
        _is_pii(node),
        _read_validity(r, node, params, definition, kind),
    )


def _read_validity(
    r: _Reader, node: lang.Dimension, params: lang.DimensionParams, definition: str, kind: str
) -> str | None:
    """``validity_params: {is_start: true}`` or ``{is_end: true}`` (MetricFlow's SCD type II)."""
    if not params.given("validity_params"):
        return None
    value = params.validity_params or lang.Validity()
    start, end = bool(value.is_start), bool(value.is_end)
    if kind != "time" or start == end:
        r.error(
            "a validity dimension is a time dimension that is either the start or the end of a row's window",
            node,
            definition,
            "type_params.validity_params",
            "write {is_start: true} on one time dimension and {is_end: true} on another",
        )
        return None
    return "start" if start else "end"


def _read_measure(r: _Reader, node: lang.Measure, owner: str) -> Measure:
    definition = f"{owner} measure '{node.name}'"
    agg = str(node.agg or "").lower()
    if agg not in AGG_NAMES:
        r.error(
            f"agg '{node.agg}' is not an aggregation",
            node,
            definition,
            "agg",
            did_you_mean(agg, AGG_NAMES) or f"use one of {', '.join(sorted(AGG_NAMES))}",
        )
    agg = AGG_ALIASES.get(agg, agg)
    params = node.agg_params or lang.AggParams()
    kind = aggregation(agg)  # None for an unknown agg, refused above (the reader goes on to find more)
    if kind is not None and kind.quantile and kind.percentile is None and params.percentile is None:
        r.error(
            "a percentile measure needs agg_params.percentile",
            node,
            definition,
            "agg_params",
            "add 'agg_params: {percentile: 0.9}'",
        )
    non_additive = None
    nad = node.non_additive_dimension
    if nad is not None:
        choice = str(nad.window_choice or "min").lower()
        if choice not in ("min", "max"):
            r.error(
                f"window_choice '{choice}' is not min or max", node, definition, "non_additive_dimension.window_choice"
            )
        if not nad.name:
            r.error("needs the name of a time dimension", node, definition, "non_additive_dimension.name")
        else:
            non_additive = NonAdditive(nad.name, choice, tuple(nad.window_groupings or ()))
    return Measure(
        name=node.name,
        non_additive=non_additive,
        agg=agg,
        expr=node.expr if node.expr is not None else node.name,
        agg_time_dimension=node.agg_time_dimension,
        percentile=params.percentile if params.percentile is not None else (kind.percentile if kind else None),
        use_discrete_percentile=bool(params.use_discrete_percentile),
        use_approximate_percentile=bool(params.use_approximate_percentile),
        create_metric=bool(node.create_metric),
        label=node.label,
        description=node.description,
        line=node.line,
    )


def _read_model(r: _Reader, raw: Any) -> SemanticModel | None:
    if not r.named(raw, "a semantic model"):
        return None
    definition = f"semantic model '{raw['name']}'"
    node = r.typed(lang.SemanticModel, raw, definition)
    if node is None:
        return None
    source = _source(r, node, definition)
    model = SemanticModel(
        name=node.name,
        source=source,
        entities=tuple(_read_entity(r, e, definition) for e in node.entities or ()),
        dimensions=tuple(_read_dimension(r, d, definition) for d in node.dimensions or ()),
        measures=tuple(_read_measure(r, m, definition) for m in node.measures or ()),
        origin=r.origin(node),
        agg_time_dimension=node.defaults.agg_time_dimension if node.defaults else None,
        primary_entity=node.primary_entity,
        description=node.description,
        ingest=_read_ingest(r, node, definition),
    )
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


def _source(r: _Reader, node: lang.SemanticModel | lang.TimeSpine, definition: str) -> str:
    """``source:``, or dbt's ``node_relation:`` (a warehouse table, ``schema.alias``): one of them."""
    relation = node.node_relation
    if relation is not None and node.source:
        r.error(
            "has both 'source' and 'node_relation'",
            node,
            definition,
            "node_relation",
            "keep one: they name the same table",
        )
    if relation is not None:
        if relation.relation_name:
            return relation.relation_name.replace('"', "")
        if relation.alias:
            return ".".join(p for p in (relation.database, relation.schema_name, relation.alias) if p)
        r.error(
            "'node_relation' has no 'alias'",
            node,
            definition,
            "node_relation.alias",
            "write {schema_name: ..., alias: ...}",
        )
        return ""
    if not node.source:
        r.error(
            "has no 'source'",
            node,
            definition,
            "source",
            "add 'source: data/<file>.parquet' (a CSV or Parquet path, an s3:// URI or a table name), "
            "or dbt's 'node_relation: {schema_name: ..., alias: ...}'",
        )
    return str(node.source or "")


def _read_ingest(r: _Reader, node: lang.SemanticModel, definition: str) -> str | None:
    if node.ingest is None:
        return None
    if str(node.ingest).lower() != "push":
        r.error(f"ingest '{node.ingest}' is not a way in", node, definition, "ingest", "write 'ingest: push'")
        return None
    if not any(str(e.type or "").lower() == "primary" for e in node.entities or ()):
        r.error(
            "an 'ingest: push' model needs a primary entity: the event id that makes a push idempotent",
            node,
            definition,
            "entities",
            "add '- {name: event, type: primary, expr: event_id}'",
        )
    return "push"


def _read_input(
    r: _Reader, value: lang.MetricInput | None, node: Any, definition: str, field: str
) -> MetricInput | None:
    if value is None:
        return None
    offset = None
    if value.offset_window is not None:
        try:
            offset = parse_offset(value.offset_window)
        except ValueError as err:
            r.error(str(err), node, definition, f"{field}.offset_window")
    return MetricInput(
        name=value.name,
        filter=_filters(value.filter),
        alias=value.alias,
        offset_window=offset,
        offset_to_grain=value.offset_to_grain,
        fill_nulls_with=value.fill_nulls_with,
        join_to_timespine=bool(value.join_to_timespine),
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


def _read_freshness(r: _Reader, value: lang.Freshness | None, node: Any, definition: str) -> Freshness | None:
    if value is None:
        return None
    try:
        fail = parse_window(value.fail_after)
        warn = parse_window(value.warn_after) if value.warn_after else None
        return Freshness(fail, warn)
    except ValueError as err:
        r.error(
            str(err), node, definition, "freshness", "write 'freshness: {fail_after: 26 hours, warn_after: 25 hours}'"
        )
        return None


def _read_metric(r: _Reader, raw: Any) -> Metric | None:
    if not r.named(raw, "a metric"):
        return None
    definition = f"metric '{raw['name']}'"
    node = r.typed(lang.Metric, raw, definition)
    if node is None:
        return None
    kind = str(node.type or "").lower()
    if kind not in METRIC_TYPES:
        hint = did_you_mean(kind, METRIC_TYPES) or "use simple, ratio, derived, cumulative or conversion"
        r.error(f"type '{node.type}' is not a metric type", node, definition, "type", hint)
    params = node.type_params or lang.TypeParams()
    cumulative = params.cumulative_type_params or lang.Cumulative()
    window = cumulative.window if cumulative.window is not None else params.window
    grain_to_date = cumulative.grain_to_date if cumulative.grain_to_date is not None else params.grain_to_date
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
    period_agg = str(cumulative.period_agg or "first").lower()
    if period_agg not in ("first", "last", "average"):
        r.error(
            f"period_agg '{period_agg}' is not first, last or average",
            node,
            definition,
            "cumulative_type_params.period_agg",
        )
    partitions = node.partitions or lang.Partitions()
    inputs = tuple(i for v in params.metrics or () if (i := _read_input(r, v, node, definition, "type_params.metrics")))
    metric = Metric(
        name=node.name,
        type=kind,
        origin=r.origin(node),
        description=node.description,
        label=node.label,
        filter=_filters(node.filter),
        meta=_meta(node),
        measure=_read_input(r, params.measure, node, definition, "type_params.measure"),
        numerator=_read_input(r, params.numerator, node, definition, "type_params.numerator"),
        denominator=_read_input(r, params.denominator, node, definition, "type_params.denominator"),
        expr=params.expr,
        inputs=inputs,
        window=parsed_window,
        grain_to_date=grain_to_date,
        period_agg=period_agg,
        dimensions=tuple(node.dimensions or ()),
        partitions_start=_parse_date(r, partitions.start, node, definition, "partitions.start"),
        partitions_end=_parse_date(r, partitions.end, node, definition, "partitions.end"),
        freshness=_read_freshness(r, node.freshness, node, definition),
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


def _metric_grain(r: _Reader, node: lang.Metric, definition: str) -> str | None:
    """A metric's ``time_granularity``: a standard grain, or a custom one (checked when queried)."""
    value = node.time_granularity
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


def _read_conversion(r: _Reader, params: lang.TypeParams, node: lang.Metric, definition: str) -> Conversion | None:
    """``type_params.conversion_type_params``: every missing or wrong field is named at once."""
    field = "type_params.conversion_type_params"
    example = "'conversion_type_params: {base_measure: visits, conversion_measure: buys, entity: user}'"
    value = params.conversion_type_params
    if value is None:
        r.error(f"a conversion metric needs '{field}'", node, definition, field, f"write {example}")
        return None
    base = _read_input(r, value.base_measure, node, definition, f"{field}.base_measure")
    conversion = _read_input(r, value.conversion_measure, node, definition, f"{field}.conversion_measure")
    for key, found in (("base_measure", base), ("conversion_measure", conversion), ("entity", value.entity)):
        if not found:
            r.error(
                f"a conversion metric needs '{field}.{key}'", node, definition, f"{field}.{key}", f"write {example}"
            )
    calculation = str(value.calculation or "conversion_rate").lower()
    if calculation not in ("conversion_rate", "conversions"):
        r.error(
            f"calculation '{calculation}' is not conversion_rate or conversions",
            node,
            definition,
            f"{field}.calculation",
            did_you_mean(calculation, ["conversion_rate", "conversions"]),
        )
    window = None
    if value.window is not None:
        try:
            window = parse_window(value.window)
        except ValueError as err:
            r.error(str(err), node, definition, f"{field}.window")
    properties: list[tuple[str, str]] = []
    for item in value.constant_properties or ():
        if item.base_property and item.conversion_property:
            properties.append((item.base_property, item.conversion_property))
        else:
            r.error(
                "each constant property needs 'base_property' and 'conversion_property'",
                node,
                definition,
                f"{field}.constant_properties",
                "write '- {base_property: product, conversion_property: product}'",
            )
    if base is None or conversion is None or not value.entity:
        return None
    return Conversion(base, conversion, value.entity, calculation, window, tuple(properties))


def _read_time_spine(r: _Reader, raw: Any) -> TimeSpine | None:
    """``time_spines:`` as in MetricFlow's project configuration, ``source:`` for ``node_relation:``."""
    if not r.named(raw, "a time spine"):
        return None
    definition = f"time spine '{raw['name']}'"
    node = r.typed(lang.TimeSpine, raw, definition)
    if node is None:
        return None
    primary = node.primary_column or lang.PrimaryColumn()
    customs = _custom_grains(r, node.custom_granularities, node, definition)
    source = _source(r, node, definition)
    return _time_spine(r, node, definition, node.name, source, primary.name, primary.time_granularity, customs)


def _read_dbt_time_spine(r: _Reader, node: Any) -> TimeSpine | None:
    """dbt's form: a model with ``time_spine: {standard_granularity_column: ...}``, whose
    column's ``granularity`` is given under ``columns:``, and ``source:`` for its rows. dbt's
    model YAML is dbt's to check: only the keys a spine needs are read."""
    name = str(node["name"])
    definition = f"time spine '{name}'"
    spine = node.get("time_spine")
    if not isinstance(spine, dict):
        r.error(
            f"'time_spine' must be a mapping, got a {type(spine).__name__}",
            node,
            definition,
            "time_spine",
            "write it as 'time_spine: {standard_granularity_column: date_day}'",
        )
        return None
    column = spine.get("standard_granularity_column")  # checked with the mapping below
    columns = node.get("columns") or []
    grain = next(
        (c.get("granularity") for c in columns if isinstance(c, dict) and c.get("name") == column)
        if isinstance(columns, list)
        else (),
        "day",
    )
    typed = r.typed(lang.DbtSpine, spine, f"{definition} time_spine")
    if typed is None:
        return None
    found = _custom_grains(r, typed.custom_granularities, node, definition)
    return _time_spine(r, node, definition, name, node.get("source"), column, grain, found)


def _custom_grains(
    r: _Reader, value: list[lang.CustomGrain] | None, node: Any, definition: str
) -> tuple[tuple[str, str], ...]:
    customs = []
    for item in value or ():
        if item.name:
            customs.append((item.name, item.column_name or item.name))
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
    r: _Reader,
    node: Any,
    definition: str,
    name: str,
    source: Any,
    column: Any,
    grain: Any,
    customs: tuple[tuple[str, str], ...],
) -> TimeSpine | None:
    if not source:
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
    return TimeSpine(name, str(source), str(column), grain, r.origin(node), customs)


def _read_saved_query(r: _Reader, raw: Any) -> SavedQuery | None:
    from pantry.spec.filters import reference_name

    if not r.named(raw, "a saved query"):
        return None
    definition = f"saved query '{raw['name']}'"
    node = r.typed(lang.SavedQuery, raw, definition)
    if node is None:
        return None
    params = node.query_params or lang.QueryParams()
    metrics = tuple(params.metrics or ())
    if not metrics and not params.group_by:  # without metrics: the group-bys' distinct values
        r.error(
            "has no metrics and no group_by",
            node,
            definition,
            "query_params.metrics",
            "add 'query_params: {metrics: [...]}'",
        )
    group_by: list[str] = []
    for item in params.group_by or ():
        try:  # TimeDimension('metric_time', 'day'), Dimension('customer__segment'), or a plain name
            group_by.append(reference_name(item) if "(" in item else item)
        except ValueError as err:
            r.error(f"group_by '{item}': {err}", node, definition, "query_params.group_by")
    order = []
    for item in params.order_by or ():
        descending = item.strip().startswith("-") or ".descending(True)" in item.replace(" ", "")
        text = item.strip().lstrip("-").replace(".descending(True)", "").replace(".descending()", "")
        text = re.sub(r"^Metric\(\s*['\"](\w+)['\"]\s*\)$", r"\1", text)  # a metric, by name
        try:
            text = reference_name(text) if "(" in text else text
        except ValueError as err:
            r.error(f"order_by '{item}': {err}", node, definition, "query_params.order_by")
        order.append(f"-{text}" if descending else text)
    limit = params.limit
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 1):
        r.error(f"limit '{limit}' is not a whole number of at least 1", node, definition, "query_params.limit")
        limit = None
    return SavedQuery(
        name=node.name,
        origin=r.origin(node),
        metrics=metrics,
        group_by=tuple(group_by),
        where=tuple(params.where or ()),
        order=tuple(order),
        limit=limit,
        description=node.description,
        label=node.label,
    )


def _read_project(r: _Reader, doc: Any, value: Any) -> Project | None:
    if not isinstance(value, dict):
        r.error(
            "'project' must be a mapping",
            doc,
            "project",
            "project",
            "write 'project: {name: shop, partitions: {start: 2024-01-01}}'",
        )
        return None
    node = r.typed(lang.Project, value, "project")
    if node is None:
        return None
    partitions = node.partitions or lang.Partitions()
    start = _parse_date(r, partitions.start, node, "project", "partitions.start")
    end = _parse_date(r, partitions.end, node, "project", "partitions.end")
    return Project(node.name or "pantry", start or Project().partitions_start, end)


def _read_view(r: _Reader, raw: Any) -> ViewNode | None:
    """A feature view's shape, checked now; its references (entities, measures) are read once
    every file is in (``feature_views.py``)."""
    if not r.named(raw, "a feature view"):
        return None
    node = r.typed(lang.FeatureView, raw, f"feature view '{raw['name']}'")
    return None if node is None else ViewNode(node, r.origin(node))


def _nodes(r: _Reader, doc: Any, key: str, value: Any) -> list[Any]:
    """The definitions under a top-level key: a list for the plural keys, one for the singular."""
    if not key.endswith("s"):
        return [value]
    if isinstance(value, list):
        return value
    r.error(f"'{key}' must be a list", doc, field=key, hint=f"write '{key}:' followed by '- name: ...' items")
    return []


def defs_files(root: Path) -> list[Path]:
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
    views: list[ViewNode] = []
    saved_queries: list[SavedQuery] = []
    spines: list[TimeSpine] = []
    skipped: list[str] = []
    project = Project()
    for path in defs_files(root):
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
                    project = _read_project(r, doc, value) or project
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
                        if (view := _safely(r, _read_view, node, "feature view")) is not None:
                            views.append(view)
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
