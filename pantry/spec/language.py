"""The definition language, declared once: every mapping a definitions file may hold, as a
typed model (pydantic v2) that refuses the keys it does not declare.

Why typed models: a reader that picks the keys it knows out of a dict ignores the others
without a word, and MetricFlow's ``validity_params`` was once ignored that way (a slowly
changing dimension joined every version of a row). Here each mapping is a class with
``extra="forbid"``: a key nobody reads cannot get past it, a list where a mapping belongs is
caught in one place, and the readers (``load.py``, ``feature_views.py``) take attributes
instead of ``dict.get``. ``shape_errors.py`` turns a refusal into Pantry's error: the file,
the line, the definition, the field, and a did-you-mean from the class's own fields.

Why our own models, not dbt-semantic-interfaces' parser: Pantry's language is MetricFlow's
plus feature views, partitions, freshness, push ingestion and streams, which that parser
refuses; and its validation needs the warehouse adapters Pantry does not have. Its JSON
schema stays the reference: ``tests/spec/test_manifest_schema.py`` checks every key it
names is declared here or refused by name.

Values whose meaning is checked by a reader with a better message (a window such as
``7 days``, a grain, a date) are declared as single values (``Value``), so a list or a mapping
there is still a shape error, and the reader says what the text should look like.
"""

from __future__ import annotations

import typing
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, PrivateAttr, model_validator
from pydantic_core import PydanticCustomError

from pantry.spec.yaml_lines import line_of


def _single(value: Any) -> Any:
    if isinstance(value, (dict, list)):
        raise PydanticCustomError("single", "must be a single value")
    return value


def _text(value: Any) -> Any:
    """A name or an expression: YAML reads ``expr: 1`` as a number and ``name: 2024`` as one."""
    _single(value)
    return value if isinstance(value, str) or value is None else str(value)


def _texts(value: Any) -> Any:
    """One text, or a list of them (``filter:``, ``window_groupings:``, ``group_by:``)."""
    if value is None or isinstance(value, list):
        return value
    return [_text(value)]


def _input(value: Any) -> Any:
    """A metric input is a name or a mapping with one: the name alone means ``{name: ...}``."""
    if isinstance(value, (str, int, float)) and not isinstance(value, bool):
        return {"name": str(value)}
    return value


Text = Annotated[str, BeforeValidator(_text)]
Value = Annotated[Any, BeforeValidator(_single)]
Texts = Annotated[list[Text], BeforeValidator(_texts)]
Meta = dict[str, Any]


class Node(BaseModel):
    """A mapping of the language: unknown keys refused, its YAML line kept for errors."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)
    _line: int | None = PrivateAttr(default=None)

    @model_validator(mode="wrap")
    @classmethod
    def _keep_line(cls, data: Any, handler: Any) -> Any:
        made = handler(data)
        made._line = line_of(data)
        return made

    @property
    def line(self) -> int | None:
        return self._line

    def given(self, field: str) -> bool:
        """Whether the file wrote ``field`` (even as null), not just left it out."""
        return field in self.model_fields_set


class Config(Node):
    """dbt's ``config:``: ``meta`` is read (pii, owner); group, tags and docs change no answer,
    and anything else (``enabled``) is refused."""

    meta: Meta | None = None
    group: Value = None
    tags: Any = None
    docs: Any = None


class Described(Node):
    description: Text | None = None
    label: Text | None = None
    meta: Meta | None = None
    config: Config | None = None


# -- semantic models


class Entity(Described):
    name: Text
    type: Text | None = None
    expr: Text | None = None
    role: Text | None = None


class Validity(Node):
    is_start: bool | None = None
    is_end: bool | None = None


class DimensionParams(Node):
    time_granularity: Text | None = None
    validity_params: Validity | None = None


class Dimension(Described):
    name: Text
    type: Text | None = None
    expr: Text | None = None
    type_params: DimensionParams | None = None
    is_partition: bool | None = None


class AggParams(Node):
    percentile: float | None = None
    use_discrete_percentile: bool | None = None
    use_approximate_percentile: bool | None = None


class NonAdditive(Node):
    name: Text | None = None
    window_choice: Text | None = None
    window_groupings: Texts | None = None


class Measure(Described):
    name: Text
    agg: Text | None = None
    expr: Text | None = None
    agg_params: AggParams | None = None
    agg_time_dimension: Text | None = None
    create_metric: bool | None = None
    non_additive_dimension: NonAdditive | None = None


class Defaults(Node):
    agg_time_dimension: Text | None = None


class NodeRelation(Node):
    """dbt's name of a warehouse table: a model's ``source`` spelled as MetricFlow's manifest
    does (read as ``schema_name.alias``, or ``relation_name`` when given)."""

    alias: Text | None = None
    schema_name: Text | None = None
    database: Text | None = None
    relation_name: Text | None = None


class SemanticModel(Described):
    name: Text
    source: Value = None
    node_relation: NodeRelation | None = None
    ingest: Value = None
    model: Value = None  # dbt's ref('...'): the table is read from 'source:'
    defaults: Defaults | None = None
    entities: list[Entity] | None = None
    dimensions: list[Dimension] | None = None
    measures: list[Measure] | None = None
    primary_entity: Text | None = None
    partitions: Any = None


# -- metrics


class MetricInput(Node):
    name: Text
    filter: Texts | None = None
    alias: Text | None = None
    offset_window: Value = None
    offset_to_grain: Text | None = None
    fill_nulls_with: Value = None
    join_to_timespine: bool | None = None


Input = Annotated[MetricInput, BeforeValidator(_input)]


class Cumulative(Node):
    window: Value = None
    grain_to_date: Value = None
    period_agg: Text | None = None


class ConstantProperty(Node):
    base_property: Text | None = None
    conversion_property: Text | None = None


class Conversion(Node):
    base_measure: Input | None = None
    conversion_measure: Input | None = None
    entity: Text | None = None
    calculation: Text | None = None
    window: Value = None
    constant_properties: list[ConstantProperty] | None = None


class TypeParams(Node):
    measure: Input | None = None
    numerator: Input | None = None
    denominator: Input | None = None
    expr: Text | None = None
    metrics: list[Input] | None = None
    window: Value = None
    grain_to_date: Value = None
    cumulative_type_params: Cumulative | None = None
    input_measures: Any = None  # MetricFlow's manifest lists them; Pantry works them out
    conversion_type_params: Conversion | None = None


class Partitions(Node):
    start: Value = None
    end: Value = None


class Freshness(Node):
    fail_after: Value = None
    warn_after: Value = None


class Metric(Described):
    name: Text
    type: Text | None = None
    type_params: TypeParams | None = None
    filter: Texts | None = None
    dimensions: list[Text] | None = None
    partitions: Partitions | None = None
    freshness: Freshness | None = None
    time_granularity: Value = None


# -- saved queries and time spines


class QueryParams(Node):
    metrics: Texts | None = None
    group_by: Texts | None = None
    where: Texts | None = None
    order_by: Texts | None = None
    limit: Value = None


class SavedQuery(Node):
    name: Text
    description: Text | None = None
    label: Text | None = None
    query_params: QueryParams | None = None
    exports: Any = None  # dbt materializes an export in the warehouse; Pantry serves the query
    config: Any = None
    meta: Meta | None = None
    tags: Any = None


class PrimaryColumn(Node):
    name: Text | None = None
    time_granularity: Value = None


class CustomGrain(Node):
    name: Text | None = None
    column_name: Text | None = None


class TimeSpine(Node):
    name: Text
    source: Value = None
    node_relation: NodeRelation | None = None
    primary_column: PrimaryColumn | None = None
    custom_granularities: list[CustomGrain] | None = None
    description: Text | None = None


class DbtSpine(Node):
    """dbt's ``time_spine:`` on a model (the rest of dbt's model YAML is dbt's to check)."""

    standard_granularity_column: Text | None = None
    custom_granularities: list[CustomGrain] | None = None


class Project(Node):
    name: Text | None = None
    partitions: Partitions | None = None


# -- feature views


class Feature(Node):
    name: Text
    measure: Text | None = None
    window: Value = None
    dimension: Text | None = None
    description: Text | None = None
    tags: dict[str, Any] | None = None


class Drift(Node):
    """A view's ``drift:`` settings, read by ``pantry.monitor.drift``."""

    method: Value = None
    threshold: Value = None
    reference_partitions: Value = None
    min_rows: Value = None
    sample_rows: Value = None
    false_alarm_rate: Value = None


class Stream(Node):
    tile: Value = None


class FeatureView(Node):
    name: Text
    entity: Text | None = None
    description: Text | None = None
    owner: Text | None = None
    tags: dict[str, Any] | None = None
    ttl: Value = None
    online: bool | None = None
    freshness: Freshness | None = None
    drift: Drift | None = None
    partitions: Partitions | None = None
    features: list[Feature] | None = None
    meta: Meta | None = None
    stream: Stream | None = None


def keys(model: type[Node]) -> set[str]:
    """The keys a mapping of this kind may hold."""
    return set(model.model_fields)


def nested(model: type[BaseModel], field: str) -> type[BaseModel] | None:
    """The model of a field's mappings (through lists and optionals), or None for a value."""
    info = model.model_fields.get(field)
    if info is None:
        return None
    pending = [info.annotation]
    while pending:
        kind = pending.pop()
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            return kind
        pending.extend(typing.get_args(kind))
    return None


__all__ = ["Node", "keys", "nested"]
