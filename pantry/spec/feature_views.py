"""``feature_views:`` -> FeatureView specs, with the checks a Feast user expects at load time.

Why separate from metrics: a feature view is keyed by an entity and read point in time,
so its checks differ (an entity that the measure's model can reach, a window that parses,
one name per feature), while it reuses the same measures and dimensions as metrics.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from pantry.errors import PantryError, did_you_mean
from pantry.spec import language as lang
from pantry.spec.aggregations import AGGREGATIONS
from pantry.spec.model import Catalog, Feature, FeatureView, Freshness, Origin, SemanticModel
from pantry.spec.names import NameResolver
from pantry.spec.windows import SUB_DAILY, Window, parse_window


def _error(
    origin: Origin, view: str, message: str, field: str, hint: str | None = None, line: int | None = None
) -> PantryError:
    return origin.error(message, definition=f"feature view '{view}'", field=field, hint=hint, line=line)


def _feature(
    catalog: Catalog,
    origin: Origin,
    view: str,
    entity: str,
    node: lang.Feature,
    errors: list[PantryError],
    streaming: bool = False,
) -> Feature | None:
    line, name = node.line, node.name
    window = None
    if node.window is not None:
        try:
            window = parse_window(node.window)
            if streaming and window.unit in ("month", "quarter", "year", "millisecond"):
                raise ValueError(
                    f"'{node.window}' has no fixed length in tiles; a streaming view's windows are "
                    "seconds, minutes, hours, days or weeks"
                )
            if not streaming and window.unit not in ("day", "week"):
                raise ValueError(
                    f"'{node.window}' is not a whole number of days; feature windows are days or weeks "
                    "(finer windows need 'stream: {tile: 1 minute}' on the view)"
                )
        except ValueError as err:
            errors.append(_error(origin, view, f"feature '{name}': {err}", f"features.{name}.window", None, line))
            return None
    measure, dimension = node.measure, node.dimension
    if bool(measure) == bool(dimension):
        errors.append(
            _error(
                origin,
                view,
                f"feature '{name}' needs exactly one of 'measure' or 'dimension'",
                f"features.{name}",
                "e.g. 'measure: orders.revenue, window: 90 days' or 'dimension: order__status'",
                line,
            )
        )
        return None
    if measure:
        model_name, _, measure_name = str(measure).partition(".")
        model = catalog.semantic_models.get(model_name)
        if model is None or not measure_name:
            candidates = [f"{m.name}.{x.name}" for m in catalog.semantic_models.values() for x in m.measures]
            errors.append(
                _error(
                    origin,
                    view,
                    f"feature '{name}': measure '{measure}' is not a measure",
                    f"features.{name}.measure",
                    did_you_mean(str(measure), candidates) or "write it as <semantic model>.<measure>",
                    line,
                )
            )
            return None
        if model.measure(measure_name) is None:
            errors.append(
                _error(
                    origin,
                    view,
                    f"feature '{name}': measure '{measure}' is not a measure",
                    f"features.{name}.measure",
                    did_you_mean(f"{model_name}.{measure_name}", [f"{model_name}.{x.name}" for x in model.measures]),
                    line,
                )
            )
            return None
        if model.measure(measure_name).non_additive is not None:  # type: ignore[union-attr]
            errors.append(
                _error(
                    origin,
                    view,
                    f"feature '{name}': measure '{measure}' is semi-additive (non_additive_dimension), which a "
                    "windowed feature cannot sum yet",
                    f"features.{name}.measure",
                    "use a dimension feature for the latest value, or a measure without non_additive_dimension",
                    line,
                )
            )
            return None
        if model.entity(entity) is None:
            errors.append(
                _error(
                    origin,
                    view,
                    f"feature '{name}': entity '{entity}' cannot be reached from semantic model '{model_name}'",
                    f"features.{name}.measure",
                    f"add an entity '{entity}' to '{model_name}', or use a measure of a model that has one",
                    line,
                )
            )
            return None
        if window is None:
            errors.append(
                _error(
                    origin,
                    view,
                    f"feature '{name}': a measure feature needs a window",
                    f"features.{name}.window",
                    "add 'window: 30 days'",
                    line,
                )
            )
            return None
        if model.time_dimension_for(model.measure(measure_name)) is None:
            errors.append(
                _error(
                    origin,
                    view,
                    f"feature '{name}': semantic model '{model_name}' has no agg_time_dimension",
                    f"features.{name}.measure",
                    "add 'defaults: {agg_time_dimension: ...}' to the model",
                    line,
                )
            )
            return None
    else:
        home = dimension_model(catalog, str(dimension), entity)
        if isinstance(home, PantryError):
            errors.append(
                _error(origin, view, f"feature '{name}': {home.message}", f"features.{name}.dimension", home.hint, line)
            )
            return None
    return Feature(
        name,
        measure=str(measure) if measure else None,
        window=window,
        dimension=str(dimension) if dimension else None,
        description=node.description,
        tags={str(k): str(v) for k, v in (node.tags or {}).items()},
        line=line,
    )


def dimension_model(catalog: Catalog, dimension: str, entity: str):  # noqa: ANN201 - model or error
    """The model whose rows carry ``dimension`` and the view's entity, with a time to order them."""
    candidates = [
        m
        for m in catalog.semantic_models.values()
        if m.entity(entity) is not None and (m.agg_time_dimension or m.validity_window() is not None)
    ]
    problems: list[PantryError] = []
    for model in candidates:
        try:
            resolved = NameResolver(catalog, model).resolve(dimension)
        except PantryError as err:
            problems.append(err)
            continue
        if resolved.hops or resolved.kind not in ("dimension", "time_dimension"):
            continue
        return model
    if problems:
        return PantryError(problems[0].message, hint=problems[0].hint)
    return PantryError(
        f"dimension '{dimension}' is not on a model with entity '{entity}' and an agg_time_dimension",
        hint="dimension features read the latest row of such a model",
    )


def read_feature_views(catalog: Catalog) -> tuple[dict[str, FeatureView], list[PantryError]]:
    views: dict[str, FeatureView] = {}
    errors: list[PantryError] = []
    for node in catalog.feature_views:
        origin = node.origin
        try:
            view = _read_view(catalog, node.doc, origin, views, errors)
        except (AttributeError, TypeError, KeyError, ValueError, IndexError) as err:
            # a shape no check foresaw: the view, its file and line, never a traceback
            view = None
            errors.append(
                _error(
                    origin,
                    node.name,
                    f"a field has the wrong shape ({type(err).__name__}: {err})",
                    None,
                    "compare its fields with docs/features.md: lists ('- item') and mappings ('key: value') differ",
                )
            )
        if view is not None:
            views[view.name] = view
    return views, errors


def _read_view(
    catalog: Catalog, node: lang.FeatureView, origin: Origin, views: dict[str, FeatureView], errors: list[PantryError]
) -> FeatureView | None:
    entities = {e.name for m in catalog.semantic_models.values() for e in m.entities}
    name = node.name
    if name in views:
        errors.append(origin.duplicate(f"feature view '{name}'", name, views[name].origin))
    entity = node.entity or ""
    if entity not in entities:
        errors.append(
            _error(
                origin,
                name,
                f"entity '{entity}' is not an entity of any semantic model",
                "entity",
                did_you_mean(entity, entities) or f"known entities: {', '.join(sorted(entities))}",
            )
        )
        return None
    features: list[Feature] = []
    seen: set[str] = set()
    streaming = node.given("stream")
    for item in node.features or ():
        feature = _feature(catalog, origin, name, entity, item, errors, streaming)
        if feature is None:
            continue
        if feature.name in seen:
            errors.append(
                _error(
                    origin,
                    name,
                    f"duplicate feature name '{feature.name}'",
                    f"features.{feature.name}",
                    "rename one of them",
                    feature.line,
                )
            )
            continue
        seen.add(feature.name)
        features.append(feature)
    if not node.features:
        errors.append(_error(origin, name, "has no features", "features", "add 'features:' with at least one feature"))
    ttl = freshness = None
    try:
        ttl = parse_window(node.ttl) if node.ttl else None
    except ValueError as err:
        errors.append(_error(origin, name, f"ttl: {err}", "ttl"))
    if node.freshness is not None:
        try:
            freshness = Freshness(
                parse_window(node.freshness.fail_after),
                parse_window(node.freshness.warn_after) if node.freshness.warn_after else None,
            )
        except ValueError as err:
            errors.append(_error(origin, name, f"freshness: {err}", "freshness"))
    partitions = node.partitions or lang.Partitions()
    start = _partition_day(origin, name, partitions.start, "start", errors)
    end = _partition_day(origin, name, partitions.end, "end", errors)
    stream = node.stream or lang.Stream()
    return FeatureView(
        name=name,
        entity=entity,
        features=tuple(features),
        origin=origin,
        description=node.description,
        owner=node.owner or None,
        tags={str(k): str(v) for k, v in (node.tags or {}).items()},
        ttl=ttl,
        online=bool(node.online),
        freshness=freshness,
        drift=node.drift.model_dump(exclude_unset=True) if node.drift else {},
        partitions_start=start,
        partitions_end=end,
        stream_tile=_stream_tile(catalog, origin, name, entity, stream, features, errors) if streaming else None,
    )


STREAM_AGGS = tuple(a.name for a in AGGREGATIONS.values() if a.streams)


def _stream_tile(
    catalog: Catalog,
    origin: Origin,
    view: str,
    entity: str,
    stream: lang.Stream,
    features: list[Feature],
    errors: list[PantryError],
) -> Window | None:
    """``stream: {tile: 1 minute}``: the tile, checked against what a streaming view needs.

    Why these rules: a stamp at every tile boundary must also fall on every day boundary
    (the daily partitions still materialize), a window must be whole tiles (the online
    store keeps whole tiles), and rows only arrive while running through ``ingest: push``.
    """
    try:
        tile = parse_window(stream.tile)
        seconds = tile.as_timedelta().total_seconds()
        if seconds < 1 or seconds != int(seconds) or 86400 % int(seconds):
            raise ValueError(f"'{stream.tile}' does not divide a day into whole seconds")
    except ValueError as err:
        errors.append(
            _error(
                origin,
                view,
                f"stream.tile: {err}",
                "stream.tile",
                "write 'stream: {tile: 1 minute}' (a tile divides a day)",
            )
        )
        return None
    before = len(errors)
    for feature in features:
        if feature.window is not None and feature.window.as_timedelta().total_seconds() % seconds:
            errors.append(
                _error(
                    origin,
                    view,
                    f"feature '{feature.name}': window '{feature.window}' is not a whole number of tiles ({tile} each)",
                    f"features.{feature.name}.window",
                    f"make it a multiple of {tile}",
                    feature.line,
                )
            )
        model = _feature_model(catalog, feature, entity)
        if model is None:
            continue
        if feature.measure:
            measure = model.measure(feature.measure.partition(".")[2])
            if measure is not None and measure.agg not in STREAM_AGGS:
                errors.append(
                    _error(
                        origin,
                        view,
                        f"feature '{feature.name}': a streaming view cannot serve '{measure.agg}' yet",
                        f"features.{feature.name}.measure",
                        f"streaming views serve {', '.join(STREAM_AGGS)} and dimension features; "
                        "put this feature in a daily view",
                        feature.line,
                    )
                )
        if model.ingest != "push":
            errors.append(
                _error(
                    origin,
                    view,
                    f"feature '{feature.name}' reads semantic model '{model.name}', which does not accept pushed rows",
                    f"features.{feature.name}",
                    f"add 'ingest: push' to '{model.name}': a streaming view is fed by pushed rows",
                    feature.line,
                )
            )
        time_dim = model.dimension(model.agg_time_dimension or "")
        if time_dim is not None and time_dim.time_granularity not in SUB_DAILY:
            errors.append(
                _error(
                    origin,
                    view,
                    f"feature '{feature.name}': the agg-time dimension '{time_dim.name}' of '{model.name}' has grain "
                    f"'{time_dim.time_granularity}', too coarse for {tile} tiles",
                    f"features.{feature.name}",
                    f"give '{time_dim.name}' 'type_params: {{time_granularity: second}}'",
                    feature.line,
                )
            )
    return tile if len(errors) == before else None


def _feature_model(catalog: Catalog, feature: Feature, entity: str) -> SemanticModel | None:
    if feature.measure:
        return catalog.semantic_models.get(feature.measure.partition(".")[0])
    home = dimension_model(catalog, str(feature.dimension), entity)
    return home if isinstance(home, SemanticModel) else None


def _partition_day(origin: Origin, view: str, value: Any, bound: str, errors: list[PantryError]) -> date | None:
    """``partitions: {start: ..., end: ...}``: a date, or None when not given."""
    if value is None or isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        errors.append(
            _error(
                origin,
                view,
                f"partitions.{bound} '{value}' is not a date",
                f"partitions.{bound}",
                "write it as YYYY-MM-DD",
            )
        )
        return None
