"""YAML loading that remembers line numbers.

Why: every validation error must name the line a definition starts on, and asset code
references point at that line too. PyYAML drops positions after parsing, so mappings
are built as ``LineDict`` that keep the line where they start (1-based).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from pantry.errors import PantryError


class LineDict(dict):
    """A dict that knows the YAML line it started on."""

    line: int = 0


class _LineLoader(yaml.SafeLoader):
    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> LineDict:  # type: ignore[override]
        mapping = LineDict(super().construct_mapping(node, deep=deep))
        mapping.line = node.start_mark.line + 1
        return mapping


_LineLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    lambda loader, node: loader.construct_mapping(node, deep=True),  # type: ignore[attr-defined]
)


def load_yaml_documents(path: Path, shown_as: str) -> list[Any]:
    """All documents of one YAML file; a syntax error names the file and its line."""
    text = path.read_text(encoding="utf-8")
    try:
        return [doc for doc in yaml.load_all(text, Loader=_LineLoader) if doc is not None]
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        line = mark.line + 1 if mark else None
        column = mark.column + 1 if mark else None
        problem = err.problem or "invalid YAML"
        raise PantryError(
            f"malformed YAML at line {line}, column {column}: {problem}",
            file=shown_as,
            hint="check indentation and that every 'key: value' has a space after the colon",
        ) from None


def line_of(node: Any) -> int | None:
    """The line a mapping started on, if known."""
    return getattr(node, "line", None) or None
