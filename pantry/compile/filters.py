"""MetricFlow's Jinja filters, turned into sqlglot conditions over group-by names.

Why render to names and not to columns: a filter such as
``{{ Dimension('customer__segment') }} = 'vip'`` needs a join that only the compiler
knows how to make. Rendering it to the column ``customer__segment`` lets the filter
use the same name resolution, joins and fan-out checks as ``--group-by`` does, and a
``where`` that names ``metric_time__day`` directly works for free.
"""

from __future__ import annotations

import jinja2
import sqlglot
from sqlglot import exp

from pantry.errors import PantryError


class _Ref(str):
    """What ``Dimension('x')`` renders to; ``.grain('month')`` appends the grain, as in MetricFlow."""

    def grain(self, grain: str) -> _Ref:
        return _Ref(f"{self}__{grain.lower()}")

    def date_part(self, part: str) -> _Ref:  # MetricFlow's spelling; the grain is the closest we serve
        return self.grain(part)

    def descending(self, _: bool = True) -> _Ref:
        return self


def _dimension(name: str, entity_path: list[str] | None = None) -> _Ref:
    prefix = "__".join(entity_path or [])
    return _Ref(f"{prefix}__{name}" if prefix else name)


def _time_dimension(
    name: str, grain: str | None = None, entity_path: list[str] | None = None, date_part_name: str | None = None
) -> _Ref:
    base = _dimension(name, entity_path)
    grain = grain or date_part_name
    return base.grain(grain) if grain else base


_ENV = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False)
_GLOBALS = {
    "Dimension": _dimension,
    "TimeDimension": _time_dimension,
    "Entity": lambda name, entity_path=None: _dimension(name, entity_path),
    "Metric": lambda name, group_by=None: _Ref(name),
}


def render_filter(text: str) -> str:
    """Jinja -> plain SQL over group-by names. Raises ValueError on bad Jinja."""
    try:
        return _ENV.from_string(text).render(**_GLOBALS)
    except jinja2.TemplateError as err:
        raise ValueError(f"the Jinja does not render: {err}") from None


def parse_filter(text: str) -> exp.Expression:
    """A filter string -> a sqlglot condition whose columns are group-by names."""
    sql = render_filter(text)
    try:
        parsed = sqlglot.parse_one(sql, read="duckdb")
    except sqlglot.errors.ParseError as err:
        first = err.errors[0]["description"] if err.errors else str(err)
        raise ValueError(f"'{sql}' is not valid SQL: {first}") from None
    if parsed is None or isinstance(parsed, (exp.Select, exp.Command)):
        raise ValueError(f"'{sql}' is not a condition")
    return parsed


def filter_names(condition: exp.Expression) -> list[str]:
    """The group-by names a condition reads, in order of appearance."""
    names: list[str] = []
    for column in condition.find_all(exp.Column):
        if column.name not in names:
            names.append(column.name)
    return names


def parse_filter_for(text: str, *, file: str, definition: str, field: str, line: int | None) -> exp.Expression:
    """``parse_filter`` with the error located in a definitions file."""
    try:
        return parse_filter(text)
    except ValueError as err:
        raise PantryError(
            f"filter does not parse: {err}",
            file=file,
            line=line,
            definition=definition,
            field=field,
            hint="write it as MetricFlow does, e.g. \"{{ Dimension('order__status') }} = 'completed'\"",
        ) from None
