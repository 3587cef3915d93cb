"""Reference and schema checks that need the whole catalog, run at load time.

Why at load time: a broken definition must fail in ``pantry validate`` and when Dagster
loads the code location, with the file and the field, never as a SQL error in the
middle of a backfill. The checks are the ones dbt users expect from ``mf validate``
plus one more: every column an ``expr`` reads is checked against the real source schema.
"""

from __future__ import annotations

from dataclasses import replace

import duckdb
import sqlglot
from sqlglot import exp

from pantry.compile.sql import SOURCE_SCHEMA
from pantry.errors import PantryError, PantryErrors, did_you_mean
from pantry.offline.sources import connect, register_model, source_schema
from pantry.offline.store import OfflineStore
from pantry.spec.aggregations import aggregation, counts
from pantry.spec.feature_views import read_feature_views
from pantry.spec.filters import filter_names, parse_filter
from pantry.spec.model import Catalog, Metric, SemanticModel
from pantry.spec.names import NameResolver, output_name
from pantry.spec.windows import GRAINS


def _err(
    metric_or_model: Metric | SemanticModel,
    kind: str,
    message: str,
    field: str,
    hint: str | None = None,
    line: int | None = None,
) -> PantryError:
    return metric_or_model.origin.error(
        message, definition=f"{kind} '{metric_or_model.name}'", field=field, hint=hint, line=line
    )


def _parse_sql(text: str) -> tuple[exp.Expression | None, str | None]:
    try:
        return sqlglot.parse_one(text, read="duckdb"), None
    except sqlglot.errors.ParseError as err:
        first = err.errors[0]["description"] if err.errors else str(err)
        return None, first


def _binds(con: duckdb.DuckDBPyConnection, model: SemanticModel, text: str, agg: str | None) -> str | None:
    """DuckDB's reason why ``text`` (inside its aggregation, for a measure) does not bind
    against the model's real source, or None. A bind reads no rows: DESCRIBE only plans."""
    from pantry.compile.sql import qualified

    try:  # rendered as the compiler renders it: sqlglot qualifies and quotes names ('at' is a keyword)
        value = f"({qualified(text, 'm0').sql('duckdb')})"
    except Exception as err:  # noqa: BLE001 - sqlglot's own errors: the text does not parse
        return str(err).splitlines()[0]
    found = aggregation(agg)
    select = (found.duckdb if found is not None else "{}").format(value)
    try:
        con.execute(f'DESCRIBE SELECT {select} FROM {SOURCE_SCHEMA}."{model.name}" AS m0').fetchall()
    except duckdb.Error as err:
        first = str(err).strip().splitlines()[0]
        return first.split(": ", 1)[1] if ": " in first else first
    return None


def _model_checks(
    catalog: Catalog,
    model: SemanticModel,
    schema: dict[str, str] | None,
    con: duckdb.DuckDBPyConnection | None = None,
) -> list[PantryError]:
    errors: list[PantryError] = []
    items = [("entity", e.name, e.expr, "expr", e.line, None) for e in model.entities]
    items += [("dimension", d.name, d.expr, "expr", d.line, None) for d in model.dimensions]
    items += [("measure", m.name, m.expr, "expr", m.line, m.agg) for m in model.measures]
    for kind, name, text, field, line, agg in items:
        tree, problem = _parse_sql(text)
        if tree is None:
            errors.append(
                _err(
                    model,
                    "semantic model",
                    f"{kind} '{name}': {field} '{text}' is not valid SQL: {problem}",
                    f"{kind}s.{name}.{field}",
                    "fix the SQL expression; it is read as DuckDB SQL over the source's columns",
                    line,
                )
            )
            continue
        if schema is None:
            continue
        missing = [c for c in tree.find_all(exp.Column) if c.name.lower() not in schema]
        for column in missing:
            errors.append(
                _err(
                    model,
                    "semantic model",
                    f"{kind} '{name}': column '{column.name}' is not in source '{model.source}'",
                    f"{kind}s.{name}.{field}",
                    did_you_mean(column.name.lower(), schema) or f"the source has: {', '.join(schema)}",
                    line,
                )
            )
        # parsing is not enough ('price * * quantity' parses): bind it where it will run
        if not missing and con is not None and (reason := _binds(con, model, text, agg)) is not None:
            inside = f" inside agg: {agg}" if agg else ""
            errors.append(
                _err(
                    model,
                    "semantic model",
                    f"{kind} '{name}': {field} '{text}' does not run on source '{model.source}'{inside}: {reason}",
                    f"{kind}s.{name}.{field}",
                    "fix the expression; it is DuckDB SQL over the source's columns"
                    + (f" ({', '.join(f'{c} {t}' for c, t in schema.items())})" if len(schema) <= 12 else ""),
                    line,
                )
            )
    time_names = {d.name for d in model.dimensions if d.type == "time"}
    for label, value in [("defaults.agg_time_dimension", model.agg_time_dimension)] + [
        (f"measures.{m.name}.agg_time_dimension", m.agg_time_dimension) for m in model.measures
    ]:
        if value and value not in time_names:
            errors.append(
                _err(
                    model,
                    "semantic model",
                    f"agg_time_dimension '{value}' is not a time dimension of this model",
                    label,
                    did_you_mean(value, time_names) or "declare it under dimensions: with type: time",
                )
            )
    for measure in model.measures:
        nad = measure.non_additive
        if nad is None:
            continue
        if nad.name not in time_names:
            errors.append(
                _err(
                    model,
                    "semantic model",
                    f"measure '{measure.name}': non_additive_dimension '{nad.name}' is not a time dimension of this model",
                    f"measures.{measure.name}.non_additive_dimension.name",
                    did_you_mean(nad.name, time_names) or "name a time dimension of this model",
                    measure.line,
                )
            )
        for name in nad.window_groupings:
            if model.entity(name) is None:
                errors.append(
                    _err(
                        model,
                        "semantic model",
                        f"measure '{measure.name}': window_groupings '{name}' is not an entity of this model",
                        f"measures.{measure.name}.non_additive_dimension.window_groupings",
                        did_you_mean(name, [e.name for e in model.entities]) or "name an entity of this model",
                        measure.line,
                    )
                )
    primaries = [e for e in model.entities if e.type == "primary"]
    if len(primaries) > 1:
        errors.append(
            _err(
                model,
                "semantic model",
                "has more than one primary entity",
                "entities",
                "keep one primary entity; mark the others unique or foreign",
            )
        )
    return errors


def _metric_checks(catalog: Catalog, metric: Metric) -> list[PantryError]:
    errors: list[PantryError] = []
    measures = [m.name for s in catalog.semantic_models.values() for m in s.measures]
    names = list(catalog.metrics) + measures
    refs = []
    if metric.measure is not None:
        if catalog.measure(metric.measure.name) is None:
            errors.append(
                _err(
                    metric,
                    "metric",
                    f"measure '{metric.measure.name}' is not a measure",
                    "type_params.measure",
                    did_you_mean(metric.measure.name, measures),
                )
            )
        refs.append(("type_params.measure", metric.measure))
    for field, ref in (("numerator", metric.numerator), ("denominator", metric.denominator)):
        if ref is not None:
            if catalog.metric_or_measure(ref.name) is None:
                errors.append(
                    _err(
                        metric,
                        "metric",
                        f"{field} '{ref.name}' is not a metric or measure",
                        f"type_params.{field}",
                        did_you_mean(ref.name, names),
                    )
                )
            refs.append((f"type_params.{field}", ref))
    for ref in metric.inputs:
        if catalog.metric_or_measure(ref.name) is None:
            errors.append(
                _err(
                    metric,
                    "metric",
                    f"input metric '{ref.name}' is not a metric",
                    "type_params.metrics",
                    did_you_mean(ref.name, names),
                )
            )
        if ref.offset_window is not None and ref.offset_window.unit not in (*GRAINS, *catalog.custom_grains):
            custom = list(catalog.custom_grains)
            errors.append(
                _err(
                    metric,
                    "metric",
                    f"offset_window '{ref.offset_window}' counts '{ref.offset_window.unit}', which is not a time "
                    "unit or a custom granularity of the time spine",
                    "type_params.metrics.offset_window",
                    did_you_mean(ref.offset_window.unit, [*GRAINS, *custom])
                    or "write '7 days', '1 month', or a custom granularity of time_spines:",
                )
            )
        if ref.offset_to_grain and ref.offset_to_grain not in GRAINS:
            errors.append(
                _err(
                    metric,
                    "metric",
                    f"offset_to_grain '{ref.offset_to_grain}' is not a time grain",
                    "type_params.metrics.offset_to_grain",
                    did_you_mean(str(ref.offset_to_grain), GRAINS) or f"use one of {', '.join(GRAINS)}",
                )
            )
        if ref.offset_to_grain and ref.offset_window:
            errors.append(
                _err(
                    metric,
                    "metric",
                    "an input has both offset_window and offset_to_grain",
                    "type_params.metrics.offset_to_grain",
                    "keep one of them",
                )
            )
        refs.append(("type_params.metrics", ref))
    if metric.conversion is not None:
        errors.extend(_conversion_checks(catalog, metric, measures))
        refs.append(("type_params.conversion_type_params.base_measure", metric.conversion.base))
    if metric.expr is not None:
        tree, problem = _parse_sql(str(metric.expr))
        if tree is None:
            errors.append(
                _err(metric, "metric", f"expr '{metric.expr}' is not valid SQL: {problem}", "type_params.expr")
            )
        else:
            known = {i.column for i in metric.inputs}
            for column in tree.find_all(exp.Column):
                if column.name not in known:
                    errors.append(
                        _err(
                            metric,
                            "metric",
                            f"expr reads '{column.name}', which is not one of its input metrics",
                            "type_params.expr",
                            did_you_mean(column.name, known)
                            or "list it under type_params.metrics (with alias: if renamed)",
                        )
                    )
    filters = [("filter", f) for f in metric.filter] + [
        (f"{field}.filter", f) for field, ref in refs for f in ref.filter
    ]
    home = _home_model(catalog, metric)
    for field, text in filters:
        try:
            condition = parse_filter(text)
        except ValueError as err:
            errors.append(
                _err(
                    metric,
                    "metric",
                    f"filter does not parse: {err}",
                    field,
                    "write it as MetricFlow does, e.g. \"{{ Dimension('order__status') }} = 'completed'\"",
                )
            )
            continue
        if home is not None:
            errors.extend(_names_resolve(catalog, metric, home, filter_names(condition), field))
    if home is not None and metric.dimensions:
        errors.extend(_names_resolve(catalog, metric, home, list(metric.dimensions), "dimensions"))
    return errors


def _conversion_checks(catalog: Catalog, metric: Metric, measures: list[str]) -> list[PantryError]:
    """Both measures exist and have a time; the entity and each constant property belong to
    the model on its side."""
    conversion = metric.conversion
    assert conversion is not None
    field = "type_params.conversion_type_params"
    errors: list[PantryError] = []
    sides: dict[str, SemanticModel] = {}
    for key, ref in (("base_measure", conversion.base), ("conversion_measure", conversion.conversion)):
        found = catalog.measure(ref.name)
        if found is None:
            errors.append(
                _err(
                    metric,
                    "metric",
                    f"'{ref.name}' is not a measure",
                    f"{field}.{key}",
                    did_you_mean(ref.name, measures),
                )
            )
            continue
        model, measure = found
        sides[key] = model
        if not (counts(measure.agg) or (measure.agg == "sum" and measure.expr.strip() == "1")):
            errors.append(
                _err(
                    metric,
                    "metric",
                    f"measure '{ref.name}' is agg '{measure.agg}': a conversion counts events",
                    f"{field}.{key}",
                    "use a count, count_distinct or sum of 1 measure, as MetricFlow requires",
                )
            )
        if key == "conversion_measure" and ref.filter:
            errors.append(
                _err(
                    metric,
                    "metric",
                    "a filter on the conversion measure is not supported (MetricFlow does not fully support it either)",
                    f"{field}.{key}.filter",
                    "filter the base measure, or give the metric a filter on base dimensions",
                )
            )
        if model.time_dimension_for(measure) is None:
            errors.append(
                _err(
                    metric,
                    "metric",
                    f"measure '{ref.name}' has no agg_time_dimension: a conversion needs the time of each event",
                    f"{field}.{key}",
                    f"add 'defaults: {{agg_time_dimension: ...}}' to semantic model '{model.name}'",
                )
            )
        if model.entity(conversion.entity) is None:
            errors.append(
                _err(
                    metric,
                    "metric",
                    f"entity '{conversion.entity}' is not an entity of semantic model '{model.name}' ({key})",
                    f"{field}.entity",
                    did_you_mean(conversion.entity, [e.name for e in model.entities])
                    or "name an entity both semantic models have",
                )
            )
    for base_name, conversion_name in conversion.constant_properties:
        for key, name in (("base_measure", base_name), ("conversion_measure", conversion_name)):
            model = sides.get(key)
            if model is not None and model.entity(name) is None and model.dimension(name) is None:
                errors.append(
                    _err(
                        metric,
                        "metric",
                        f"constant property '{name}' is not an entity or dimension of semantic model '{model.name}'",
                        f"{field}.constant_properties",
                        did_you_mean(name, [e.name for e in model.entities] + [d.name for d in model.dimensions]),
                    )
                )
    return errors


def _names_resolve(
    catalog: Catalog, metric: Metric, home: SemanticModel, names: list[str], field: str
) -> list[PantryError]:
    errors = []
    resolver = NameResolver(catalog, home)
    for name in names:
        try:
            resolver.resolve(output_name(name))
        except PantryError as err:
            errors.append(_err(metric, "metric", f"{field}: {err.message}", field, err.hint))
    return errors


def _home_model(catalog: Catalog, metric: Metric) -> SemanticModel | None:
    """The model of a simple or cumulative metric's measure (a conversion's base measure),
    where its filters resolve."""
    ref = metric.conversion.base if metric.conversion is not None else metric.measure
    if ref is not None and (found := catalog.measure(ref.name)):
        return found[0]
    return None


def _cycles(catalog: Catalog) -> list[PantryError]:
    errors: list[PantryError] = []
    state: dict[str, int] = {}

    def inputs(metric: Metric) -> list[str]:
        refs = list(metric.inputs) + [r for r in (metric.numerator, metric.denominator) if r]
        names = [r.name for r in refs if r.name in catalog.metrics]
        # metric filters: {{ Metric('orders', group_by=['customer']) }} reads 'orders'
        texts = list(metric.filter) + [f for r in [*refs, metric.measure] if r for f in r.filter]
        for text in texts:
            try:
                used = filter_names(parse_filter(text))
            except ValueError:
                continue  # reported by _metric_checks
            names += [n.split("__")[-1] for n in used if n.count("__") == 1 and n.split("__")[-1] in catalog.metrics]
        return names

    def visit(name: str, path: list[str]) -> None:
        state[name] = 1
        for child in inputs(catalog.metrics[name]):
            if state.get(child) == 1:
                cycle = path[path.index(child) :] + [child] if child in path else [name, child]
                metric = catalog.metrics[child]
                errors.append(
                    _err(
                        metric,
                        "metric",
                        f"metrics form a cycle: {' -> '.join(cycle)}",
                        "type_params.metrics",
                        "a metric cannot depend on itself, through its inputs or its metric filters; remove one",
                    )
                )
            elif state.get(child) is None:
                visit(child, path + [child])
        state[name] = 2

    for name in catalog.metrics:
        if state.get(name) is None:
            visit(name, [name])
    return errors


def _partition_range_checks(catalog: Catalog, views: dict) -> list[PantryError]:
    """``partitions.end`` (own or the project's) must not come before ``partitions.start``."""
    errors: list[PantryError] = []
    project = catalog.project
    defined = [("metric", m) for m in catalog.metrics.values() if not m.implicit]
    defined += [("feature view", v) for v in views.values()]
    for kind, item in defined:
        start = item.partitions_start or project.partitions_start
        end = item.partitions_end or project.partitions_end
        if end is not None and end < start:
            errors.append(
                item.origin.error(
                    f"partitions.end {end} comes before partitions.start {start}",
                    definition=f"{kind} '{item.name}'",
                    field="partitions.end",
                    hint="give an end on or after the start (the project's partitions apply where a definition gives none)",
                )
            )
    return errors


def _key_type_checks(con: duckdb.DuckDBPyConnection, catalog: Catalog, views: dict) -> list[PantryError]:
    """A feature view's entity key must be an integer or a string in every model that has it.

    Why: online keys are text (``pantry:<view>:<key>``), so a key must have one exact text;
    1.5 has none that every client would agree on, and a DOUBLE 1e16 is not the id it was.
    Integers of any width and DECIMAL(p, 0) are canonical (layout.key_text).
    """
    errors: list[PantryError] = []
    for view in views.values():
        for model in catalog.semantic_models.values():
            entity = model.entity(view.entity)
            if entity is None:
                continue
            try:
                described = con.execute(f'DESCRIBE SELECT {entity.expr} AS k FROM {SOURCE_SCHEMA}."{model.name}"')
                kind = str(described.fetchall()[0][1]).upper()
            except duckdb.Error:
                continue  # an expr that does not run is reported by the model's own checks
            fractional = kind.startswith("DECIMAL") and not kind.replace(" ", "").endswith(",0)")
            if kind in ("FLOAT", "DOUBLE", "REAL") or fractional:
                errors.append(
                    view.origin.error(
                        f"entity '{view.entity}' has key type {kind} in semantic model '{model.name}' "
                        f"(expr '{entity.expr}'); online keys must be integers or strings",
                        definition=f"feature view '{view.name}'",
                        field="entity",
                        hint=f"cast it in the model's entity: expr: CAST({entity.expr} AS BIGINT)",
                    )
                )
    return errors


def _saved_query_checks(catalog: Catalog) -> list[PantryError]:
    """A saved query must compile: its metrics, group-bys, filters and order all resolve."""
    from pantry.compile.context import QueryRequest
    from pantry.compile.render import compile_sql

    errors: list[PantryError] = []
    for saved in catalog.saved_queries.values():
        request = QueryRequest(
            metrics=saved.metrics, group_by=saved.group_by, where=saved.where, order=saved.order, limit=saved.limit
        )
        try:
            compile_sql(catalog, request, "duckdb")
        except PantryError as err:
            errors.append(
                saved.origin.error(
                    f"does not compile: {err.message}",
                    definition=f"saved query '{saved.name}'",
                    field=f"query_params.{err.field}" if err.field else "query_params",
                    hint=err.hint,
                )
            )
    return errors


def validate(catalog: Catalog, *, check_sources: bool = True, offline: OfflineStore | None = None) -> Catalog:
    """Raise PantryErrors listing every problem; return the catalog when it is sound."""
    errors: list[PantryError] = []
    schemas: dict[str, dict[str, str] | None] = {}
    con = connect(catalog, offline, models=[]) if check_sources else None
    for model in catalog.semantic_models.values():
        schema = None
        if con is not None:
            try:
                register_model(con, catalog, model, offline)
                schema = source_schema(con, model)
            except PantryError as err:
                errors.append(err)
            except Exception as err:  # noqa: BLE001 - a source DuckDB cannot read is a user error
                errors.append(
                    _err(
                        model,
                        "semantic model",
                        f"source '{model.source}' cannot be read: {err}",
                        "source",
                        "check the file is valid CSV or Parquet",
                    )
                )
        schemas[model.name] = schema
        errors.extend(_model_checks(catalog, model, schema, con))
    for metric in catalog.metrics.values():
        errors.extend(_metric_checks(catalog, metric))
    errors.extend(_cycles(catalog))
    views, view_errors = read_feature_views(catalog)
    errors.extend(view_errors)
    errors.extend(_partition_range_checks(catalog, views))
    if con is not None:
        if not errors:
            errors.extend(_key_type_checks(con, catalog, views))
        con.close()
    if not errors:
        errors.extend(_saved_query_checks(catalog))
    if errors:
        raise PantryErrors(errors)
    return replace(catalog, views=views)
