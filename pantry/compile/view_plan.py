"""What a feature view reads: its models, its key column, each feature's aggregation.

Why a plan: the tile writer and the point-in-time reader must agree exactly on column
names and window lengths. Both derive them from one ViewPlan, so they cannot drift.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from pantry.errors import PantryError, did_you_mean
from pantry.spec.feature_views import dimension_model
from pantry.spec.model import Catalog, Feature, FeatureView, Measure, SemanticModel
from pantry.spec.names import NameResolver
from pantry.spec.windows import Window

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def window_days(window: Window) -> int:
    """Whole days covering the window (a streaming view's ``5 minutes`` needs one day of tiles)."""
    if window.unit in ("day", "week"):
        return window.count * (7 if window.unit == "week" else 1)
    return max(1, -(-int(window.as_timedelta().total_seconds()) // 86400))


def stamp_of(day: date) -> datetime:
    """Partition D's values become servable at D + 1 day, 00:00 UTC."""
    return datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=1)


@dataclass(frozen=True)
class PlannedFeature:
    feature: Feature
    model: SemanticModel
    measure: Measure | None  # None for a dimension feature
    days: int  # window length in days; 0 for a dimension feature
    value_expr: str  # SQL over the model's columns
    seconds: int = 0  # window length in seconds; 0 for a dimension feature

    @property
    def agg(self) -> str:
        return self.measure.agg if self.measure else "last"


@dataclass(frozen=True)
class ViewPlan:
    view: FeatureView
    key: str  # the entity_df column holding the entity key
    window: int  # W, the largest window in days: presence looks this far back
    features: tuple[PlannedFeature, ...]
    tile: int | None = None  # a streaming view's tile in seconds; None: daily stamps only
    window_seconds: int = 0  # W in seconds

    @property
    def streaming(self) -> bool:
        return self.tile is not None

    @property
    def models(self) -> list[SemanticModel]:
        seen: dict[str, SemanticModel] = {}
        for planned in self.features:
            seen.setdefault(planned.model.name, planned.model)
        return list(seen.values())

    def feature(self, name: str) -> PlannedFeature:
        for planned in self.features:
            if planned.feature.name == name:
                return planned
        raise PantryError(
            f"'{self.view.name}:{name}' is not a feature",
            hint=did_you_mean(
                f"{self.view.name}:{name}", [f"{self.view.name}:{p.feature.name}" for p in self.features]
            ),
        )


def key_column(catalog: Catalog, view: FeatureView) -> str:
    """The entity's ``expr`` where it is primary, else where the view reads it; a plain column name."""
    exprs = [e.expr for m in catalog.semantic_models.values() if (e := m.entity(view.entity)) and e.type == "primary"]
    exprs += [e.expr for m in catalog.semantic_models.values() if (e := m.entity(view.entity))]
    for expr in exprs:
        if _IDENTIFIER.match(expr):
            return expr
    return view.entity


def plan_view(catalog: Catalog, view: FeatureView) -> ViewPlan:
    planned: list[PlannedFeature] = []
    for feature in view.features:
        if feature.measure:
            model_name, _, measure_name = feature.measure.partition(".")
            model = catalog.semantic_models[model_name]
            measure = model.measure(measure_name)
            assert measure is not None and feature.window is not None
            seconds = int(feature.window.as_timedelta().total_seconds())
            planned.append(PlannedFeature(feature, model, measure, window_days(feature.window), measure.expr, seconds))
        else:
            model = dimension_model(catalog, str(feature.dimension), view.entity)
            assert isinstance(model, SemanticModel)
            resolved = NameResolver(catalog, model).resolve(str(feature.dimension))
            planned.append(PlannedFeature(feature, model, None, 0, str(resolved.expr)))
    windows = [p.days for p in planned if p.days]
    if windows:
        largest = max(windows)
    elif view.ttl is not None:
        largest = max(
            1, window_days(view.ttl) if view.ttl.unit in ("day", "week") else int(view.ttl.as_timedelta().days) or 1
        )
    else:
        raise view.origin.error(
            "a view with only dimension features needs a ttl, which then bounds presence",
            definition=f"feature view '{view.name}'",
            field="ttl",
        )
    tile = int(view.stream_tile.as_timedelta().total_seconds()) if view.stream_tile else None
    if tile is None:
        return ViewPlan(view, key_column(catalog, view), largest, tuple(planned))
    seconds = [p.seconds for p in planned if p.seconds]
    if seconds:
        widest = max(seconds)
    else:
        widest = int(view.ttl.as_timedelta().total_seconds()) if view.ttl is not None else tile
    return ViewPlan(view, key_column(catalog, view), largest, tuple(planned), tile, max(widest, tile))
