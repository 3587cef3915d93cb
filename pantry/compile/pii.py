"""Which group-by names in a metrics query reveal pii-marked dimensions or entity keys.

Why by name and not by resolved column: the check must run before anything is compiled
or read, so that a request without the ``pii`` scope learns nothing, not even an error
that depends on the data. A name is judged by its last part (the dimension or entity it
shows) and the entity it is reached through, which is how MetricFlow names resolve.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from pantry.errors import PantryError
from pantry.spec.filters import filter_names, parse_filter
from pantry.spec.model import Catalog
from pantry.spec.names import output_name
from pantry.spec.windows import GRAINS


@dataclass(frozen=True)
class PiiNames:
    """The catalog's pii marks, gathered once (``meta: {pii: true}`` on entities and dimensions)."""

    entities: frozenset[str]
    dimensions: frozenset[tuple[str, str]]  # (entity it is reached through, dimension)

    @classmethod
    def of(cls, catalog: Catalog) -> PiiNames:
        models = catalog.semantic_models.values()
        return cls(
            frozenset(e.name for m in models for e in m.entities if e.pii),
            frozenset((e.name, d.name) for m in models for d in m.dimensions if d.pii for e in m.entities),
        )

    def __bool__(self) -> bool:
        return bool(self.entities or self.dimensions)

    def marked(self, name: str) -> bool:
        parts = output_name(name).split("__")
        if len(parts) > 1 and parts[-1] in GRAINS:
            parts = parts[:-1]
        if parts[0] == "metric_time":
            return False
        if parts[-1] in self.entities:
            return True
        return len(parts) >= 2 and (parts[-2], parts[-1]) in self.dimensions

    def read_by(self, group_by: Iterable[str], where: Iterable[str]) -> list[str]:
        """The pii names that a query's group-by and where read, in order."""
        names = [output_name(n) for n in group_by]
        for text in where:
            try:
                names += [output_name(n) for n in filter_names(parse_filter(text))]
            except ValueError as err:
                raise PantryError(f"the where condition does not parse: {err}", field="where") from None
        return [n for n in dict.fromkeys(names) if self.marked(n)]
