"""A definition checked against the language (``language.py``), its refusals as Pantry's errors.

Why here and not in pydantic's words: "Extra inputs are not permitted at entities.0.exr"
names neither the file, nor the definition, nor the line, nor the key that was meant. Each
refusal becomes one sentence in the form every other definition error has: the definition
(``semantic model 'orders' measure 'revenue'``), what is wrong, a hint (the nearest key the
class declares, or an example of the right shape), and the line of the mapping at fault.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from pantry.errors import did_you_mean
from pantry.spec.language import Node, keys, nested
from pantry.spec.yaml_lines import line_of

N = TypeVar("N", bound=Node)

# list fields whose items are named definitions of their own: errors inside one name it
NAMED = {"entities": "entity", "dimensions": "dimension", "measures": "measure", "features": "feature"}
# the right shape of a mapping, shown when something else stands in its place
EXAMPLES = {
    "defaults": "'defaults: {agg_time_dimension: <time dimension>}'",
    "type_params": "'type_params: {time_granularity: day}'",
    "validity_params": "{is_start: true} or {is_end: true}",
    "agg_params": "'agg_params: {percentile: 0.9}'",
    "non_additive_dimension": "'non_additive_dimension: {name: ds, window_choice: max}'",
    "partitions": "'partitions: {start: 2024-01-01}'",
    "freshness": "'freshness: {fail_after: 26 hours, warn_after: 25 hours}'",
    "cumulative_type_params": "'cumulative_type_params: {window: 7 days}'",
    "conversion_type_params": "'conversion_type_params: {base_measure: visits, conversion_measure: buys, entity: user}'",
    "primary_column": "'primary_column: {name: ds, time_granularity: day}'",
    "query_params": "'query_params: {metrics: [revenue], group_by: [...]}'",
    "stream": "'stream: {tile: 1 minute}'",
    "drift": "'drift: {method: auto, threshold: 0.1}'",
    "tags": "'tags: {pii: \"false\"}'",
    "config": "'config: {meta: {owner: shop}}'",
    "meta": "'meta: {owner: shop}'",
}
# the items of a list, shown when something else stands in its place
ITEMS = {
    "features": "- {name: ..., measure: ..., window: ...}",
    "entities": "- {name: ..., type: primary, expr: ...}",
    "dimensions": "- {name: ..., type: categorical}",
    "measures": "- {name: ..., agg: sum, expr: ...}",
}
# what to write instead, for keys of MetricFlow's manifest that a Pantry file spells otherwise
KEY_HINTS = {
    "metric_aggregation_params": "a metric that aggregates a column itself is not read yet: define a measure "
    "and name it in type_params.measure",
}


@dataclass(frozen=True)
class Refusal:
    """One shape error, placed: the caller adds the file."""

    message: str
    definition: str
    field: str | None
    hint: str | None
    line: int | None


def _shape(value: Any) -> str:
    for kind, word in ((bool, "boolean"), (dict, "mapping"), (list, "list"), (str, "string")):
        if isinstance(value, kind):
            return word
    return type(value).__name__


def _article(word: str) -> str:
    return f"an {word}" if word[0] in "aeiou" else f"a {word}"


def _place(
    model: type[BaseModel], node: Any, loc: Sequence[str | int], definition: str
) -> tuple[type[BaseModel] | None, Any, str, list[str], int | None]:
    """Walk ``loc`` (the path to the mapping holding the error) from the definition's node:
    the class there, its node, the named definition it sits in, the path below that, the line."""
    current: Any = node
    kind: type[BaseModel] | None = model
    path: list[str] = []
    line = line_of(node)
    parent: str | None = None
    for step in loc:
        if isinstance(step, int):
            current = current[step] if isinstance(current, list) and step < len(current) else None
            if parent in NAMED and isinstance(current, dict) and current.get("name"):
                definition = f"{definition} {NAMED[parent]} '{current['name']}'"
                path = []
        else:
            current = current.get(step) if isinstance(current, dict) else None
            kind = nested(kind, step) if kind is not None else None
            path.append(step)
            parent = step
        line = line_of(current) or line
    return kind, current, definition, path, line


def refusals(model: type[N], node: dict, definition: str) -> tuple[N | None, list[Refusal]]:
    """``node`` read as ``model``, or the reasons it cannot be, one per wrong key or shape."""
    try:
        return model.model_validate(node), []
    except ValidationError as err:
        found: list[Refusal] = []
        for problem in err.errors(include_url=False):
            found.append(_refusal(model, node, tuple(problem["loc"]), problem["type"], definition, problem))
        unique = list(dict.fromkeys(found))
        return None, unique


def _refusal(model: type[BaseModel], node: dict, loc: tuple, kind: str, definition: str, problem: dict) -> Refusal:
    *above, last = loc
    holder, here, named, path, line = _place(model, node, above, definition)
    where = f"{named} {'.'.join(path)}" if path else named
    if isinstance(last, int):  # an item of a list
        field = ".".join(path)
        if above and above[-1] in NAMED:
            what = f"{_article(NAMED[above[-1]])} of {named}"
            if kind == "missing":
                return Refusal(f"{what} has no 'name'", named, "name", "add 'name: <snake_case_name>'", line)
            item = here[last] if isinstance(here, list) and last < len(here) else None
            return Refusal(
                f"{what} must be a mapping with a 'name', got {type(item).__name__}", named, None, None, line
            )
        return Refusal(
            f"each item of '{field}' must be a mapping",
            named,
            field,
            f"write '{field}:' followed by '- ...' items",
            line,
        )
    field = str(last)
    dotted = ".".join([*path, field])
    value = here.get(field) if isinstance(here, dict) else None
    if kind == "extra_forbidden":
        allowed = keys(holder) if holder is not None else set()  # type: ignore[arg-type]
        hint = KEY_HINTS.get(field) or did_you_mean(field, allowed) or f"allowed fields: {', '.join(sorted(allowed))}"
        return Refusal(f"unknown field '{field}'", where, field, hint, line)
    if kind == "missing":
        if len(above) >= 2 and isinstance(above[-1], int) and above[-2] in NAMED:
            what = f"{_article(NAMED[str(above[-2])])} of {named}"
            return Refusal(f"{what} has no '{field}'", named, field, f"add '{field}: <snake_case_name>'", line)
        return Refusal(f"has no '{field}'", where, dotted, f"add '{field}: ...'", line)
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        example = EXAMPLES.get(field)
        return Refusal(
            f"'{field}' must be a mapping, got a {_shape(value)}",
            where,
            dotted,
            f"write it as {example}" if example else None,
            line,
        )
    if kind in ("list_type", "tuple_type"):
        items = ITEMS.get(field, "- ...")
        return Refusal(
            f"'{field}' must be a list", where, dotted, f"write '{field}:' followed by '{items}' items", line
        )
    if kind == "single" or kind.startswith("string"):
        return Refusal(f"'{field}' must be a single value, got a {_shape(value)}", where, dotted, None, line)
    if kind.startswith("bool"):
        return Refusal(f"'{field}' must be true or false, got '{value}'", where, dotted, None, line)
    if kind.startswith(("float", "int")):
        return Refusal(f"'{field}' must be a number, got '{value}'", where, dotted, None, line)
    return Refusal(f"'{field}': {problem['msg']}", where, dotted, None, line)


__all__ = ["KEY_HINTS", "Refusal", "refusals"]
