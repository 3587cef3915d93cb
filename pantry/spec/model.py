"""The catalog as frozen dataclasses.

Why frozen: a loaded catalog is shared by the compiler, the Store, the CLI and the
Dagster factories. Nothing downstream may change a definition behind the others' backs;
a changed YAML file means a new catalog.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from pantry.errors import PantryError
from pantry.spec.windows import Window


@dataclass(frozen=True)
class Origin:
    """Where a definition lives, for error messages and Dagster code references."""

    path: Path
    shown_as: str
    line: int | None = None

    def error(
        self,
        message: str,
        *,
        definition: str | None = None,
        field: str | None = None,
        hint: str | None = None,
        line: int | None = None,
    ) -> PantryError:
        """An error about the definition here: its file and line (``line``: a line inside it,
        the field's own), the rest as given. Why one helper: every check that finds a
        definition wrong names the same place the same way."""
        return PantryError(
            message, file=self.shown_as, line=line or self.line, definition=definition, field=field, hint=hint
        )

    def duplicate(self, definition: str, name: str, first: Origin) -> PantryError:
        """One wording for a name defined twice, whatever kind of definition holds it."""
        return PantryError(
            f"duplicate name '{name}', first defined in {first.shown_as} line {first.line}",
            file=self.shown_as,
            line=self.line,
            definition=definition,
            field="name",
            hint="rename one of them",
        )


@dataclass(frozen=True)
class Entity:
    name: str
    type: str  # primary | unique | foreign | natural
    expr: str
    line: int | None = None
    pii: bool = False  # ``meta: {pii: true}``: its keys need the HTTP ``pii`` scope


@dataclass(frozen=True)
class Dimension:
    name: str
    type: str  # categorical | time
    expr: str
    time_granularity: str = "day"
    is_partition: bool = False
    label: str | None = None
    description: str | None = None
    line: int | None = None
    pii: bool = False  # ``meta: {pii: true}``: its values need the HTTP ``pii`` scope
    # ``type_params.validity_params``: this time dimension starts (``start``) or ends
    # (``end``) the window in which a row of a slowly changing dimension (SCD type II) holds
    validity: str | None = None


@dataclass(frozen=True)
class NonAdditive:
    """A semi-additive measure's ``non_additive_dimension``: add up only the rows at the first
    (``min``) or last (``max``) value of ``name`` in each time bucket and window grouping."""

    name: str
    window_choice: str = "max"
    window_groupings: tuple[str, ...] = ()


@dataclass(frozen=True)
class Measure:
    name: str
    agg: str
    expr: str
    agg_time_dimension: str | None = None
    percentile: float | None = None
    use_discrete_percentile: bool = False
    use_approximate_percentile: bool = False
    create_metric: bool = False
    label: str | None = None
    description: str | None = None
    line: int | None = None
    non_additive: NonAdditive | None = None


@dataclass(frozen=True)
class SemanticModel:
    name: str
    source: str
    entities: tuple[Entity, ...]
    dimensions: tuple[Dimension, ...]
    measures: tuple[Measure, ...]
    origin: Origin
    agg_time_dimension: str | None = None
    primary_entity: str | None = None
    description: str | None = None
    ingest: str | None = None  # "push": rows also arrive while running (pantry.ingest)

    def entity(self, name: str) -> Entity | None:
        return next((e for e in self.entities if e.name == name), None)

    def dimension(self, name: str) -> Dimension | None:
        return next((d for d in self.dimensions if d.name == name), None)

    def measure(self, name: str) -> Measure | None:
        return next((m for m in self.measures if m.name == name), None)

    @property
    def primary(self) -> str | None:
        """The entity this model is keyed by: a primary entity or ``primary_entity:``."""
        for entity in self.entities:
            if entity.type == "primary":
                return entity.name
        return self.primary_entity

    def validity_window(self) -> tuple[Dimension, Dimension | None] | None:
        """An SCD type II model's validity columns: (start, end), or None for a plain model.
        A row holds from its start (inclusive) to its end (exclusive; null: still holds)."""
        start = next((d for d in self.dimensions if d.validity == "start"), None)
        end = next((d for d in self.dimensions if d.validity == "end"), None)
        return (start, end) if start is not None else None

    def time_dimension_for(self, measure: Measure) -> Dimension | None:
        name = measure.agg_time_dimension or self.agg_time_dimension
        return self.dimension(name) if name else None


@dataclass(frozen=True)
class MetricInput:
    """A reference to a measure or metric, in MetricFlow's long form."""

    name: str
    filter: tuple[str, ...] = ()
    alias: str | None = None
    offset_window: Window | None = None
    offset_to_grain: str | None = None
    fill_nulls_with: Any = None
    join_to_timespine: bool = False

    @property
    def column(self) -> str:
        return self.alias or self.name


@dataclass(frozen=True)
class Conversion:
    """A conversion metric's ``conversion_type_params``, as MetricFlow defines them: a base
    event converts when the same entity has a conversion event at or after it, within
    ``window`` (any time when None), with equal ``constant_properties`` (base, conversion)."""

    base: MetricInput
    conversion: MetricInput
    entity: str
    calculation: str = "conversion_rate"  # or "conversions"
    window: Window | None = None
    constant_properties: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Freshness:
    fail_after: Window
    warn_after: Window | None = None


# A daily partition is due a day after its stamp; an hour late warns, two hours fail.
DEFAULT_FRESHNESS = Freshness(fail_after=Window(26, "hour"), warn_after=Window(25, "hour"))


@dataclass(frozen=True)
class SavedQuery:
    """MetricFlow's ``saved_queries:``: a named query, run by ``pantry query --saved-query``."""

    name: str
    origin: Origin
    metrics: tuple[str, ...]
    group_by: tuple[str, ...] = ()
    where: tuple[str, ...] = ()
    order: tuple[str, ...] = ()
    limit: int | None = None
    description: str | None = None
    label: str | None = None


@dataclass(frozen=True)
class Metric:
    name: str
    type: str  # simple | ratio | derived | cumulative | conversion
    origin: Origin
    description: str | None = None
    label: str | None = None
    filter: tuple[str, ...] = ()
    meta: dict[str, Any] = field(default_factory=dict)
    measure: MetricInput | None = None
    numerator: MetricInput | None = None
    denominator: MetricInput | None = None
    expr: str | None = None
    inputs: tuple[MetricInput, ...] = ()
    window: Window | None = None
    grain_to_date: str | None = None
    period_agg: str = "first"
    dimensions: tuple[str, ...] = ()
    partitions_start: date | None = None
    partitions_end: date | None = None  # last partition (inclusive) of a finished data set
    freshness: Freshness | None = None
    implicit: bool = False  # made from a measure (create_metric, or named by a ratio)
    conversion: Conversion | None = None
    # ``time_granularity:``: the grain a bare ``metric_time`` means for this metric (MetricFlow's
    # default grain); None: its measures' agg-time grain, at least a day
    time_granularity: str | None = None

    @property
    def owner(self) -> str | None:
        owner = self.meta.get("owner")
        return str(owner) if owner is not None else None


@dataclass(frozen=True)
class Feature:
    """One feature of a view: a measure over a window, or the latest value of a dimension."""

    name: str
    measure: str | None = None  # "<semantic model>.<measure>"
    window: Window | None = None
    dimension: str | None = None  # a group-by name, such as order__status
    description: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    line: int | None = None

    @property
    def pii(self) -> bool:
        return _tagged_pii(self.tags)


def _tagged_pii(tags: dict[str, str]) -> bool:
    """``pii: "true"`` in YAML tags (strings, as in Dagster's tags), whatever the case."""
    return str(tags.get("pii", "false")).lower() == "true"


@dataclass(frozen=True)
class FeatureView:
    """Features of one entity, materialized together, served together."""

    name: str
    entity: str
    features: tuple[Feature, ...]
    origin: Origin
    description: str | None = None
    owner: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    ttl: Window | None = None
    online: bool = False
    freshness: Freshness | None = None
    drift: dict[str, Any] = field(default_factory=dict)
    partitions_start: date | None = None
    partitions_end: date | None = None
    stream_tile: Window | None = None  # ``stream: {tile: 1 minute}``: a stamp at every tile boundary

    def feature(self, name: str) -> Feature | None:
        return next((f for f in self.features if f.name == name), None)

    @property
    def pii(self) -> bool:
        return _tagged_pii(self.tags)


@dataclass(frozen=True)
class TimeSpine:
    """A user's time spine (MetricFlow's ``time_spines:``): one row per period of ``grain``,
    with a column per custom granularity (``alien_day``, ``fiscal_quarter``)."""

    name: str
    source: str
    column: str
    grain: str
    origin: Origin
    custom: tuple[tuple[str, str], ...] = ()  # (granularity name, column)


@dataclass(frozen=True)
class Project:
    name: str = "pantry"
    partitions_start: date = date(2024, 1, 1)
    partitions_end: date | None = None  # open-ended: live data keeps getting new days


@dataclass(frozen=True)
class ViewNode:
    """A feature view as written (its shape checked, ``language.FeatureView``) and where it is:
    its references are read once every file is in (``feature_views.py``)."""

    doc: Any
    origin: Origin

    @property
    def name(self) -> str:
        return str(self.doc.name)


@dataclass(frozen=True)
class Catalog:
    """Everything in ``metrics_defs/``: validated, resolved, ready to compile."""

    root: Path
    project: Project
    semantic_models: dict[str, SemanticModel]
    metrics: dict[str, Metric]
    feature_views: tuple[ViewNode, ...] = ()
    skipped: tuple[str, ...] = ()
    views: dict[str, FeatureView] = field(default_factory=dict)
    # definitions left out because they (or what they read) are broken: their errors
    broken: tuple[Any, ...] = ()
    saved_queries: dict[str, SavedQuery] = field(default_factory=dict)
    time_spines: tuple[TimeSpine, ...] = ()

    @property
    def daily_spine(self) -> TimeSpine | None:
        """The user's day-grain spine, which replaces Pantry's own; None: Pantry builds one."""
        return next((s for s in self.time_spines if s.grain == "day"), None)

    @property
    def custom_grains(self) -> dict[str, str]:
        """Custom granularity name -> its column on the daily spine."""
        spine = self.daily_spine
        return dict(spine.custom) if spine is not None else {}

    def measure(self, name: str) -> tuple[SemanticModel, Measure] | None:
        for model in self.semantic_models.values():
            found = model.measure(name)
            if found is not None:
                return model, found
        return None

    def models_keyed_by(self, entity: str) -> list[SemanticModel]:
        """Models where ``entity`` is primary, unique or natural: safe join targets."""
        return [
            m
            for m in self.semantic_models.values()
            if (e := m.entity(entity)) is not None and e.type in ("primary", "unique", "natural")
        ]

    def metric_or_measure(self, name: str) -> Metric | None:
        """A metric by name, or the simple metric MetricFlow implies for a bare measure."""
        if name in self.metrics:
            return self.metrics[name]
        found = self.measure(name)
        if found is None:
            return None
        model, measure = found
        return Metric(
            name, "simple", model.origin, description=measure.description, measure=MetricInput(name), implicit=True
        )

    def public_metrics(self) -> list[Metric]:
        return [m for m in self.metrics.values() if not m.implicit or m.meta.get("create_metric")]
