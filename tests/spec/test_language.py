"""The definition language as typed models: every mapping refuses what it does not declare,
by name, with the file, the line of the mapping at fault, the definition and a did-you-mean;
shapes are refused in Pantry's words, never pydantic's.

MetricFlow's own objects are swept against dbt-semantic-interfaces' schema in
``test_manifest_schema.py``; this file sweeps Pantry's additions (feature views, their
features, drift, stream, partitions, freshness, project) and the shapes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from pantry.errors import PantryError
from pantry.spec import language as lang
from pantry.spec.language import keys, nested
from pantry.spec.load import read_catalog

FILE = """\
project:
  name: shop
  partitions: {start: 2024-01-01}
semantic_models:
  - name: orders
    source: data/orders.csv
    defaults: {agg_time_dimension: ordered_at}
    entities:
      - {name: customer, type: primary, expr: customer_id}
    dimensions:
      - {name: ordered_at, type: time, type_params: {time_granularity: day}}
    measures:
      - {name: revenue, agg: sum, expr: amount}
metrics:
  - name: revenue
    type: simple
    type_params: {measure: revenue}
    partitions: {start: 2024-01-01}
    freshness: {fail_after: 26 hours}
feature_views:
  - name: spend
    entity: customer
    partitions: {start: 2024-01-01}
    freshness: {fail_after: 26 hours}
    drift: {method: psi}
    features:
      - {name: spend_7d, measure: orders.revenue, window: 7 days}
"""

# (the text a key is added after, the mapping's line, the definition the error names)
PLACES = [
    ("  name: shop\n", 2, "project"),
    ("  partitions: {start: 2024-01-01", 3, "project partitions"),
    ("    partitions: {start: 2024-01-01", 18, "metric 'revenue' partitions"),
    ("    freshness: {fail_after: 26 hours", 19, "metric 'revenue' freshness"),
    ("    entity: customer\n", 21, "feature view 'spend'"),
    ("    partitions: {start: 2024-01-01", 23, "feature view 'spend' partitions"),
    ("    freshness: {fail_after: 26 hours", 24, "feature view 'spend' freshness"),
    ("    drift: {method: psi", 25, "feature view 'spend' drift"),
    ("window: 7 days", 27, "feature view 'spend' feature 'spend_7d'"),
]


def _add(after: str, key: str, occurrence: int = 0) -> str:
    """FILE with ``key: 1`` added to the mapping ``after`` is in (inline or block style)."""
    at = -1
    for _ in range(occurrence + 1):
        at = FILE.index(after, at + 1)
    end = at + len(after)
    if after.endswith("\n"):
        indent = after[: len(after) - len(after.lstrip())]
        return FILE[:end] + f"{indent}{key}: 1\n" + FILE[end:]
    return FILE[:end] + f", {key}: 1" + FILE[end:]


@pytest.fixture
def load(make_defs: Callable[[dict[str, str]], Path]) -> Callable[[str], str]:
    def run(text: str) -> str:
        defs = make_defs({"shop.yaml": text})
        with pytest.raises(PantryError) as info:
            read_catalog(defs)
        return str(info.value)

    return run


def test_the_file_itself_reads(make_defs: Callable[[dict[str, str]], Path]) -> None:
    catalog = read_catalog(make_defs({"shop.yaml": FILE}))
    assert catalog.project.name == "shop" and [v.name for v in catalog.feature_views] == ["spend"]


@pytest.mark.parametrize(("after", "line", "definition"), PLACES)
def test_a_key_nobody_reads_is_refused_where_it_is(
    load: Callable[[str], str], after: str, line: int, definition: str
) -> None:
    occurrence = 1 if after.startswith("    partitions") and "feature view" in definition else 0
    occurrence = 1 if after.startswith("    freshness") and "feature view" in definition else occurrence
    said = load(_add(after, "colour", occurrence))
    assert said.startswith(f"metrics_defs/shop.yaml: {definition}: unknown field 'colour' (allowed fields: "), said
    assert said.endswith(f"[line {line}]"), said


def test_a_misspelt_key_gets_the_nearest_one_the_mapping_declares(load: Callable[[str], str]) -> None:
    said = load(_add("    drift: {method: psi", "treshold"))
    assert said == (
        "metrics_defs/shop.yaml: feature view 'spend' drift: unknown field 'treshold' (did you mean 'threshold'?) "
        "[line 25]"
    )
    said = load(_add("window: 7 days", "windw"))
    assert said == (
        "metrics_defs/shop.yaml: feature view 'spend' feature 'spend_7d': unknown field 'windw' "
        "(did you mean 'window'?) [line 27]"
    )


@pytest.mark.parametrize(
    ("before", "after", "says"),
    [
        (  # a list where a mapping belongs
            "defaults: {agg_time_dimension: ordered_at}",
            "defaults: [ordered_at]",
            "semantic model 'orders': 'defaults' must be a mapping, got a list (write it as "
            "'defaults: {agg_time_dimension: <time dimension>}') [line 5]",
        ),
        (  # a mapping where a single value belongs
            "expr: amount}",
            "expr: {column: amount}}",
            "semantic model 'orders' measure 'revenue': 'expr' must be a single value, got a mapping [line 13]",
        ),
        (  # a mapping where a list belongs
            "    features:\n      - {name: spend_7d, measure: orders.revenue, window: 7 days}\n",
            "    features: {spend_7d: 1}\n",
            "feature view 'spend': 'features' must be a list (write 'features:' followed by "
            "'- {name: ..., measure: ..., window: ...}' items) [line 21]",
        ),
        (  # true or false
            "    entity: customer\n",
            "    entity: customer\n    online: maybe\n",
            "feature view 'spend': 'online' must be true or false, got 'maybe' [line 21]",
        ),
        (  # an item of a named list that is not a mapping
            "      - {name: revenue, agg: sum, expr: amount}",
            "      - revenue",
            "a measure of semantic model 'orders' must be a mapping with a 'name', got str",
        ),
        (  # one without its name
            "      - {name: revenue, agg: sum, expr: amount}",
            "      - {agg: sum, expr: amount}",
            "a measure of semantic model 'orders' has no 'name' (add 'name: <snake_case_name>') [line 13]",
        ),
    ],
)
def test_shapes_are_refused_in_pantrys_words(load: Callable[[str], str], before: str, after: str, says: str) -> None:
    assert before in FILE
    said = load(FILE.replace(before, after, 1))
    assert says in said, said
    assert "Input should be" not in said and "Extra inputs" not in said and "pydantic" not in said


def test_scalars_become_names_and_one_filter_is_a_list(make_defs: Callable[[dict[str, str]], Path]) -> None:
    """YAML reads ``name: 2024`` as a number and ``expr: 1`` as one: both are names here, as
    MetricFlow reads them; ``filter:`` is one text or a list of them."""
    text = FILE.replace("expr: amount}", "expr: 1}").replace(
        "    type_params: {measure: revenue}\n",
        "    type_params: {measure: revenue}\n    filter: \"{{ Dimension('x') }}\"\n",
    )
    text += "  - name: 2024\n    entity: customer\n    features:\n      - {name: n, measure: orders.revenue, window: 1 day}\n"
    catalog = read_catalog(make_defs({"shop.yaml": text}))
    assert catalog.semantic_models["orders"].measure("revenue").expr == "1"  # type: ignore[union-attr]
    assert catalog.metrics["revenue"].filter == ("{{ Dimension('x') }}",)
    assert [v.name for v in catalog.feature_views] == ["spend", "2024"]


def test_every_mapping_class_refuses_unknown_keys_and_is_reachable() -> None:
    """Each class of the language forbids extra keys, and each is reachable from a top-level
    kind, so none is declared and then never checked."""
    roots = [lang.SemanticModel, lang.Metric, lang.SavedQuery, lang.TimeSpine, lang.Project, lang.FeatureView]
    reached: set[type] = set()
    pending: list[type] = list(roots)
    while pending:
        kind = pending.pop()
        if kind in reached:
            continue
        reached.add(kind)
        pending += [found for field in keys(kind) if (found := nested(kind, field)) is not None]
    declared = {
        c for c in vars(lang).values() if isinstance(c, type) and issubclass(c, lang.Node) and c is not lang.Node
    }
    assert declared - reached <= {lang.DbtSpine, lang.Described}  # dbt's spine: read from a dbt model
    assert all(c.model_config.get("extra") == "forbid" for c in declared)


def test_the_drift_mapping_declares_exactly_the_settings_the_monitor_reads() -> None:
    from dataclasses import fields

    from pantry.monitor.drift import DriftSettings

    assert keys(lang.Drift) == {f.name for f in fields(DriftSettings)}
