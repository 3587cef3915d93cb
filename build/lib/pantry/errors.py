"""One error type for everything a user can get wrong.

Why one type: the CLI, the HTTP server and Dagster all need to turn a mistake into a
sentence a person can act on (file, line, definition, field, hint), the way dbt does.
Every layer raises ``PantryError`` so that the message is built in exactly one place.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class PantryError(Exception):
    """A user-facing error that knows where it came from and how to fix it."""

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        definition: str | None = None,
        field: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.message = message
        self.file = file
        self.line = line
        self.definition = definition
        self.field = field
        self.hint = hint
        super().__init__(self.render())

    def public(self) -> str:
        """The message for an HTTP client: the definition, the field and the hint, but not
        the server's file paths and lines, which are the operator's business."""
        parts = [f"{self.definition}: " if self.definition else "", self.message]
        if self.field and self.definition:
            parts.append(f" (field '{self.field}')")
        if self.hint:
            parts.append(f" ({self.hint})")
        return "".join(parts)

    def render(self) -> str:
        """``file: kind 'name': message (hint)``, with the line last so the contract's prefix holds."""
        parts: list[str] = []
        if self.file:
            parts.append(f"{self.file}: ")
        if self.definition:
            parts.append(f"{self.definition}: ")
        parts.append(self.message)
        if self.hint:
            parts.append(f" ({self.hint})")
        if self.line is not None:
            parts.append(f" [line {self.line}]")
        return "".join(parts)


class PantryErrors(PantryError):
    """Several validation errors at once, so a user fixes them all in one pass."""

    def __init__(self, errors: list[PantryError]) -> None:
        self.errors = errors
        text = "\n".join(e.render() for e in errors)
        super().__init__(f"{len(errors)} error(s) in definitions:\n{text}" if len(errors) > 1 else text)

    def render(self) -> str:  # noqa: D102 - the combined text is the message
        return self.message


def did_you_mean(name: str, candidates: Iterable[str]) -> str | None:
    """The nearest valid name, phrased as a hint, or None when nothing is close."""
    matches = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.5)
    return f"did you mean '{matches[0]}'?" if matches else None


class QueryTimeout(PantryError):
    """A metric query ran past its time limit and was interrupted (HTTP 504)."""


class QueryFailed(PantryError):
    """DuckDB failed on a query for a reason that is not the request's fault (HTTP 500)."""
