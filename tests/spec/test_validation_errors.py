"""Every validation error, with its exact message: file, definition, field, hint, line."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from pantry.errors import PantryError
from pantry.spec.load import read_catalog
from pantry.verify.validate import validate

BASE = """
semantic_models:
  - name: orders
    source: data/orders.csv
    defaults: {agg_time_dimension: ordered_at}
    entities:
      - {name: order, type: primary, expr: order_id}
      - {name: customer, type: foreign, expr: customer_id}
    dimensions:
      - {name: ordered_at, type: time, type_params: {time_granularity: day}}
      - {name: status, type: categorical}
    measures:
      - {name: revenue, agg: sum, expr: amount}
      - {name: buyers, agg: count_distinct, expr: customer_id}
  - name: customers
    source: data/customers.csv
    entities:
      - {name: customer, type: primary, expr: customer_id}
    dimensions:
      - {name: segment, type: categorical}
  - name: visits
    source: data/customers.csv
    entities:
      - {name: customer, type: foreign, expr: customer_id}
    dimensions:
      - {name: channel, type: categorical, expr: segment}
metrics:
  - name: completed_revenue
    type: simple
    type_params: {measure: revenue}
    filter: "{{ Dimension('order__status') }} = 'completed'"
  - name: revenue_per_buyer
    type: ratio
    type_params: {numerator: completed_revenue, denominator: buyers}
"""


@pytest.fixture
def check(make_defs: Callable[[dict[str, str]], Path]) -> Callable[[str], str]:
    """Write ``orders.yaml`` with its two data files, validate, return the error text."""

    def run(text: str) -> str:
        defs = make_defs({"orders.yaml": text})
        (defs / "data").mkdir(exist_ok=True)
        pd.DataFrame(
            {
                "order_id": [1],
                "customer_id": [1],
                "ordered_at": ["2024-01-01"],
                "amount": [1.0],
                "status": ["completed"],
            }
        ).to_csv(defs / "data" / "orders.csv", index=False)
        pd.DataFrame({"customer_id": [1], "segment": ["a"]}).to_csv(defs / "data" / "customers.csv", index=False)
        with pytest.raises(PantryError) as info:
            validate(read_catalog(defs))
        return str(info.value)

    return run


def test_base_definitions_are_valid(make_defs: Callable[[dict[str, str]], Path]) -> None:
    defs = make_defs({"orders.yaml": BASE})
    (defs / "data").mkdir()
    pd.DataFrame(
        {"order_id": [1], "customer_id": [1], "ordered_at": ["2024-01-01"], "amount": [1.0], "status": ["x"]}
    ).to_csv(defs / "data" / "orders.csv", index=False)
    pd.DataFrame({"customer_id": [1], "segment": ["a"]}).to_csv(defs / "data" / "customers.csv", index=False)
    catalog = validate(read_catalog(defs))
    assert set(catalog.metrics) == {"completed_revenue", "revenue_per_buyer"}


def test_malformed_yaml_names_its_line(check: Callable[[str], str]) -> None:
    text = BASE.replace("    source: data/orders.csv", "    source: data/orders.csv\n   bad: [", 1)
    assert check(text) == (
        "metrics_defs/orders.yaml: malformed YAML at line 4, column 4: expected <block end>, but found "
        "'<block mapping start>' (check indentation and that every 'key: value' has a space after the colon)"
    )


def test_duplicate_name(check: Callable[[str], str]) -> None:
    text = BASE + "  - name: completed_revenue\n    type: simple\n    type_params: {measure: revenue}\n"
    assert check(text) == (
        "metrics_defs/orders.yaml: metric 'completed_revenue': duplicate name 'completed_revenue', first defined in "
        "metrics_defs/orders.yaml line 27 (rename one of them) [line 34]"
    )


def test_unknown_measure(check: Callable[[str], str]) -> None:
    assert check(BASE.replace("type_params: {measure: revenue}", "type_params: {measure: revenu}")) == (
        "metrics_defs/orders.yaml: metric 'completed_revenue': measure 'revenu' is not a measure (did you mean 'revenue'?) [line 27]"
    )


def test_unknown_metric_in_a_ratio(check: Callable[[str], str]) -> None:
    message = check(BASE.replace("denominator: buyers", "denominator: buyrs"))
    assert message.startswith(
        "metrics_defs/orders.yaml: metric 'revenue_per_buyer': denominator 'buyrs' is not a metric or measure (did you mean 'buyers'?)"
    )
    assert message.endswith("[line 31]")


def test_unknown_dimension(check: Callable[[str], str]) -> None:
    assert check(BASE.replace("order__status", "order__stauts")) == (
        "metrics_defs/orders.yaml: metric 'completed_revenue': filter: 'order__stauts' is not a dimension, entity or "
        "metric_time of semantic model 'orders' (did you mean 'order__status'?) [line 27]"
    )


def test_cycle_among_derived_metrics(check: Callable[[str], str]) -> None:
    text = BASE + (
        "  - {name: a, type: derived, type_params: {expr: b + 1, metrics: [{name: b}]}}\n"
        "  - {name: b, type: derived, type_params: {expr: a * 2, metrics: [a]}}\n"
    )
    assert check(text) == (
        "metrics_defs/orders.yaml: metric 'a': metrics form a cycle: a -> b -> a "
        "(a metric cannot depend on itself, through its inputs or its metric filters; remove one) [line 34]"
    )


def test_filter_that_does_not_parse(check: Callable[[str], str]) -> None:
    message = check(BASE.replace("}} = 'completed'", "}} = = 'completed'"))
    assert message.startswith(
        "metrics_defs/orders.yaml: metric 'completed_revenue': filter does not parse: "
        "'order__status = = 'completed'' is not valid SQL"
    )
    assert message.endswith(
        "(write it as MetricFlow does, e.g. \"{{ Dimension('order__status') }} = 'completed'\") [line 27]"
    )


def test_jinja_that_does_not_render(check: Callable[[str], str]) -> None:
    message = check(BASE.replace("{{ Dimension('order__status') }}", "{{ Dimenson('order__status') }}"))
    assert message.startswith(
        "metrics_defs/orders.yaml: metric 'completed_revenue': filter does not parse: the Jinja does not render: 'Dimenson' is undefined"
    )


def test_expr_that_sqlglot_rejects(check: Callable[[str], str]) -> None:
    assert check(BASE.replace("expr: amount}", "expr: amount +* 2}")) == (
        "metrics_defs/orders.yaml: semantic model 'orders': measure 'revenue': expr 'amount +* 2' is not valid SQL: "
        "Invalid expression / Unexpected token (fix the SQL expression; it is read as DuckDB SQL over the source's columns) [line 12]"
    )


def test_missing_source_file(check: Callable[[str], str], tmp_path: Path) -> None:
    text = BASE.replace(
        "data/customers.csv\n    entities:\n      - {name: customer, type: primary",
        "data/custmers.csv\n    entities:\n      - {name: customer, type: primary",
    )
    assert check(text) == (
        "metrics_defs/orders.yaml: semantic model 'customers': source file 'data/custmers.csv' does not exist "
        f"(looked for {tmp_path}/metrics_defs/data/custmers.csv) (did you mean 'customers.csv' in data/?) [line 14]"
    )


def test_source_column_checked_against_the_real_schema(check: Callable[[str], str]) -> None:
    assert check(BASE.replace("expr: amount}", "expr: amout}")) == (
        "metrics_defs/orders.yaml: semantic model 'orders': measure 'revenue': column 'amout' is not in source "
        "'data/orders.csv' (did you mean 'amount'?) [line 12]"
    )


def test_join_that_would_fan_out(check: Callable[[str], str]) -> None:
    text = BASE + (
        "  - name: revenue_by_channel\n    type: simple\n    type_params: {measure: revenue}\n"
        "    filter: \"{{ Dimension('customer__channel') }} = 'web'\"\n"
    )
    assert check(text) == (
        "metrics_defs/orders.yaml: metric 'revenue_by_channel': filter: 'customer__channel' would join 'orders' to "
        "'visits' on entity 'customer', which is not primary or unique in 'visits'; the join would fan out "
        "(make 'customer' primary or unique in 'visits', or group by a dimension of a model keyed by 'customer') [line 34]"
    )


def test_yaml_typo_in_a_key(check: Callable[[str], str]) -> None:
    assert check(BASE.replace("    measures:", "    measuers:", 1)) == (
        "metrics_defs/orders.yaml: semantic model 'orders': unknown field 'measuers' (did you mean 'measures'?) [line 2]"
    )


def test_several_errors_are_reported_together(check: Callable[[str], str]) -> None:
    text = BASE.replace("expr: amount}", "expr: amout}").replace("denominator: buyers", "denominator: buyrs")
    message = check(text)
    assert message.startswith("2 error(s) in definitions:")
    assert "column 'amout'" in message and "denominator 'buyrs'" in message


def test_dbt_files_load_with_skipped_keys_listed(make_defs: Callable[[dict[str, str]], Path]) -> None:
    defs = make_defs(
        {
            "orders.yaml": BASE,
            "dbt_extra.yml": "version: 2\nmodels:\n  - name: stg_orders\nsaved_queries: []\n",
        }
    )
    (defs / "data").mkdir()
    pd.DataFrame(
        {"order_id": [1], "customer_id": [1], "ordered_at": ["2024-01-01"], "amount": [1.0], "status": ["x"]}
    ).to_csv(defs / "data" / "orders.csv", index=False)
    pd.DataFrame({"customer_id": [1], "segment": ["a"]}).to_csv(defs / "data" / "customers.csv", index=False)
    catalog = validate(read_catalog(defs))
    assert catalog.skipped == (
        "metrics_defs/dbt_extra.yml: 'version' (not used by Pantry)",
        "metrics_defs/dbt_extra.yml: 'models' (not used by Pantry)",
    )


@pytest.mark.parametrize(
    "text,message",
    [
        (
            "semantic_models:\n",
            "metrics_defs/orders.yaml: 'semantic_models' must be a list (write 'semantic_models:' followed by '- name: ...' items) [line 1]",
        ),
        (
            "metrics: 5\n",
            "metrics_defs/orders.yaml: 'metrics' must be a list (write 'metrics:' followed by '- name: ...' items) [line 1]",
        ),
        (
            "project: [1]\n",
            "metrics_defs/orders.yaml: project: 'project' must be a mapping (write 'project: {name: shop, partitions: {start: 2024-01-01}}') [line 1]",
        ),
    ],
)
def test_wrong_shapes_are_errors_not_tracebacks(
    make_defs: Callable[[dict[str, str]], Path], text: str, message: str
) -> None:
    defs = make_defs({"orders.yaml": text})
    with pytest.raises(PantryError) as info:
        read_catalog(defs)
    assert str(info.value) == message
