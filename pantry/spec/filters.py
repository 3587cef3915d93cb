"""MetricFlow's Jinja filters, turned into sqlglot conditions over group-by names.

Why render to names and not to columns: a filter such as
``{{ Dimension('customer__segment') }} = 'vip'`` needs a join that only the compiler
knows how to make. Rendering it to the column ``customer__segment`` lets the filter
use the same name resolution, joins and fan-out checks as ``--group-by`` does, and a
``where`` that names ``metric_time__day`` directly works for free.

Why no Jinja engine: a ``where`` comes from any HTTP caller, and a Jinja template can
reach Python objects (``{{ Dimension.__globals__ }}``) or loop for ever. MetricFlow's
filters use only a handful of call forms, so each ``{{ ... }}`` block is parsed as a
Python expression and accepted only as one of those calls, with string arguments that
are plain names. Statements (``{% %}``) and comments (``{# #}``) are refused.
"""

from __future__ import annotations

import ast
import re

import sqlglot
from sqlglot import exp

from pantry.errors import PantryError, did_you_mean
from pantry.spec.where_guard import MAX_WHERE_CHARS, allowed_condition, check_nesting, deep_recursion, read_back

_BLOCK = re.compile(r"\{\{(.*?)\}\}", re.S)
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_CALLS = {"Dimension", "TimeDimension", "Entity", "Metric"}
_METHODS = {"grain", "date_part", "descending"}


def _name(value: str) -> str:
    if not _NAME.fullmatch(value):
        raise ValueError(f"'{value}' is not a name (letters, digits and underscores)")
    return value


def _literal(node: ast.expr) -> object:
    """A call argument: a string, a list of strings, a bool or None; nothing else."""
    if isinstance(node, ast.Constant) and (node.value is None or isinstance(node.value, (str, bool))):
        return node.value
    if isinstance(node, ast.List) and all(isinstance(e, ast.Constant) and isinstance(e.value, str) for e in node.elts):
        return [e.value for e in node.elts]  # type: ignore[attr-defined]
    raise ValueError(f"'{ast.unparse(node)}' is not allowed here: pass names as quoted strings")


def _reference(kind: str, args: list[object], kwargs: dict[str, object]) -> str:
    """What ``Dimension('x')`` and friends mean: a group-by name."""
    allowed = {
        "Dimension": ("name", "entity_path"),
        "Entity": ("name", "entity_path"),
        "TimeDimension": ("name", "grain", "entity_path", "date_part_name"),
        "Metric": ("name", "group_by"),
    }[kind]
    if len(args) > len(allowed):
        raise ValueError(f"{kind}() takes at most {len(allowed)} arguments")
    params = dict(zip(allowed, args))
    for key, value in kwargs.items():
        if key not in allowed or key in params:
            raise ValueError(f"{kind}() has no argument '{key}' here")
        params[key] = value
    name = params.get("name")
    if not isinstance(name, str):
        raise ValueError(f"{kind}() needs a name as its first argument")
    if kind == "Metric":
        # MetricFlow names the filter's column <entity>__<metric>; so do we, and the
        # compiler joins the metric, grouped by that entity, to the rows it filters
        group_by = params.get("group_by")
        entities = [group_by] if isinstance(group_by, str) else group_by
        if not isinstance(entities, list) or len(entities) != 1:
            raise ValueError(f"Metric('{name}') needs group_by with one entity, e.g. group_by=['customer']")
        return f"{_name(entities[0])}__{_name(name)}"
    path = params.get("entity_path") or []
    if not isinstance(path, list):
        raise ValueError(f"{kind}(): entity_path is a list of entity names")
    text = "__".join([_name(p) for p in path] + [_name(name)])
    grain = params.get("grain") or params.get("date_part_name")
    if grain is not None:
        text = f"{text}__{_name(str(grain)).lower()}"
    return text


def reference_name(code: str) -> str:
    """``TimeDimension('metric_time', 'day')`` -> ``metric_time__day``: a saved query's
    ``group_by`` items, read with the same rules as a filter's ``{{ ... }}`` blocks."""
    return _render_block(code)


def _render_block(code: str) -> str:
    try:
        tree = ast.parse(code.strip(), mode="eval").body
    except SyntaxError:
        raise ValueError(f"'{{{{{code}}}}}' is not a MetricFlow reference") from None
    methods: list[tuple[str, list[object]]] = []
    while isinstance(tree, ast.Call) and isinstance(tree.func, ast.Attribute):
        if tree.func.attr not in _METHODS:
            raise ValueError(f"'.{tree.func.attr}()' is not allowed; use .grain('month')")
        methods.insert(0, (tree.func.attr, [_literal(a) for a in tree.args]))
        tree = tree.func.value
    if not isinstance(tree, ast.Call) or not isinstance(tree.func, ast.Name):
        raise ValueError(f"'{{{{{code}}}}}' is not a MetricFlow reference such as {{{{ Dimension('order__status') }}}}")
    kind = tree.func.id
    if kind not in _CALLS:
        hint = did_you_mean(kind, _CALLS)
        raise ValueError(f"'{kind}' is undefined" + (f" ({hint})" if hint else ""))
    kwargs = {}
    for keyword in tree.keywords:
        if keyword.arg is None:
            raise ValueError("'**' is not allowed in a reference")
        kwargs[keyword.arg] = _literal(keyword.value)
    text = _reference(kind, [_literal(a) for a in tree.args], kwargs)
    for method, args in methods:
        if method in ("grain", "date_part"):
            if len(args) != 1 or not isinstance(args[0], str):
                raise ValueError(f".{method}() takes one grain name")
            text = f"{text}__{_name(args[0]).lower()}"
    return text


def render_filter(text: str) -> str:
    """MetricFlow's Jinja references -> plain SQL over group-by names. Raises ValueError."""
    if len(text) > MAX_WHERE_CHARS:
        raise ValueError(f"it is {len(text):,} characters long; at most {MAX_WHERE_CHARS:,} are accepted")
    for opener, what in (("{%", "Jinja statements ({% %})"), ("{#", "Jinja comments ({# #})")):
        if opener in text:
            raise ValueError(f"the Jinja does not render: {what} are not allowed, only {{{{ Dimension(...) }}}} forms")
    try:
        rendered = _BLOCK.sub(lambda m: _render_block(m.group(1)), text)
    except ValueError as err:
        raise ValueError(f"the Jinja does not render: {err}") from None
    if "{{" in rendered or "}}" in rendered:
        raise ValueError("the Jinja does not render: an unclosed '{{' or a stray '}}'")
    return rendered


def parse_filter(text: str) -> exp.Expression:
    """A filter string -> a sqlglot condition whose columns are group-by names."""
    sql = render_filter(text)
    check_nesting(sql)
    try:
        with deep_recursion():
            return _parse_checked(sql)
    except RecursionError:
        raise ValueError("it is nested too deeply") from None


def _parse_checked(sql: str) -> exp.Expression:
    try:
        statements = sqlglot.parse(sql, read="duckdb")
    except sqlglot.errors.ParseError as err:
        first = err.errors[0]["description"] if err.errors else str(err)
        raise ValueError(f"'{sql}' is not valid SQL: {first}") from None
    except sqlglot.errors.SqlglotError as err:  # the tokenizer's errors, such as an unclosed comment
        raise ValueError(f"'{sql}' is not valid SQL: {str(err).splitlines()[0]}") from None
    statements = [s for s in statements if s is not None]
    if len(statements) != 1:
        raise ValueError(f"'{sql}' holds {len(statements)} statements; give one condition")
    return read_back(allowed_condition(statements[0]))


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
