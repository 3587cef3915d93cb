"""One bad definition is not a dead store: load what is sound, report what is not.

Why: in a shared ``metrics_defs/``, one team's typo must not stop every other team's
queries, training reads and Dagster runs. ``pantry validate`` still fails on any problem
(CI should); everything else loads the sound part:

- a definition with an error is left out, and so is whatever depends on it (a metric on
  a left-out measure, a derived metric on a left-out metric, a view on a left-out model),
  found by validating again without it until nothing fails;
- the finest unit is left out: a broken measure or dimension drops that measure or
  dimension, not its whole semantic model; a broken source drops the model;
- ``Catalog.broken`` keeps every error, so the CLI and Python warn once, a query that names
  a left-out metric is told why, and Dagster shows each as a ``broken/...`` asset.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import TYPE_CHECKING

from pantry.errors import PantryError, PantryErrors
from pantry.spec.load import read_catalog
from pantry.spec.model import Catalog
from pantry.verify import memo
from pantry.verify.validate import validate

if TYPE_CHECKING:
    from pathlib import Path

    from pantry.offline.store import OfflineStore

ROUNDS = 8  # each round leaves out what the previous one's removals broke
_DEFINITION = re.compile(r"^(semantic model|metric|feature view|saved query) '([^']+)'")
_PART = re.compile(r"^(measures|dimensions|entities)\.([^.]+)")
_ITEM = re.compile(r"^semantic model '[^']+' (measure|dimension|entity) '([^']+)'")
_GROUPS = {"measure": "measures", "dimension": "dimensions", "entity": "entities"}


def named(err: PantryError) -> tuple[str, str] | None:
    """(kind, name) of the definition an error is about, or None (a whole file)."""
    found = _DEFINITION.match(err.definition or "")
    return (found.group(1), found.group(2)) if found else None


def _without(catalog: Catalog, errors: list[PantryError]) -> Catalog:
    models = dict(catalog.semantic_models)
    metrics = dict(catalog.metrics)
    views = list(catalog.feature_views)
    saved = dict(catalog.saved_queries)
    for err in errors:
        which = named(err)
        if which is None:
            continue
        kind, name = which
        if kind == "metric":
            metrics.pop(name, None)
        elif kind == "saved query":
            saved.pop(name, None)
        elif kind == "feature view":
            views = [v for v in views if v.name != name]
        elif name in models:
            part = _PART.match(err.field or "")
            item_of = _ITEM.match(err.definition or "")
            model = models[name]
            if item_of is not None:
                part = re.match(r"(\w+)\.(.+)", f"{_GROUPS[item_of.group(1)]}.{item_of.group(2)}")
            if part is None:
                models.pop(name)
                metrics = {k: m for k, m in metrics.items() if not (m.implicit and model.measure(k) is not None)}
                continue
            group, item = part.groups()
            kept = tuple(x for x in getattr(model, group) if x.name != item)
            models[name] = replace(model, **{group: kept})
            if group == "measures":
                metrics = {k: m for k, m in metrics.items() if not (m.implicit and k == item)}
    return replace(catalog, semantic_models=models, metrics=metrics, feature_views=tuple(views), saved_queries=saved)


def _transient(err: PantryError) -> bool:
    """A source that an endpoint did not serve (S3 down, credentials refused): the definition
    may be fine, so it is not left out for the life of the store; the error stands."""
    return err.field == "source" and "s3://" in err.message and "cannot be read" in err.message


def load_sound(root: Path, offline: OfflineStore | None = None) -> Catalog:
    """The sound definitions under ``root``, validated; ``broken`` holds every error left out.

    Raises PantryErrors only when nothing can be isolated (an error names no definition and
    nothing else fails, such as a duplicate name): then there is no sound part to trust."""
    kept, digest = memo.recall(root, offline)
    if kept is not None:
        return kept
    catalog = read_catalog(root, collect=True)
    sources = memo.sources_now(catalog)
    broken: list[PantryError] = list(catalog.broken)
    catalog = _without(replace(catalog, broken=()), broken)
    for _ in range(ROUNDS):
        try:
            checked = validate(catalog, offline=offline)
        except PantryErrors as errs:
            found = list(errs.errors)
        except PantryError as err:
            found = [err]
        else:
            sound = replace(checked, broken=tuple(broken))
            memo.keep(root, offline, digest, sources, sound)
            return sound
        if any(_transient(e) for e in found):
            raise PantryErrors(found)  # an outage, not a definition: nothing is left out for it
        reduced = _without(catalog, found)
        broken += found
        if reduced == catalog:
            raise PantryErrors(broken)
        catalog = reduced
    raise PantryErrors(broken)


def label(err: PantryError) -> str | None:
    which = named(err)
    if which is None:
        return None
    kind, name = which
    part = _PART.match(err.field or "") if kind == "semantic model" else None
    item = _ITEM.match(err.definition or "")
    if item is not None:
        return f"{item.group(1)} '{item.group(2)}' of {kind} '{name}'"
    if part is not None:
        return f"{part.group(1)[:-1].replace('entitie', 'entity')} '{part.group(2)}' of {kind} '{name}'"
    return f"{kind} '{name}'"


def broken_summary(catalog: Catalog) -> str:
    """One line naming what is left out, for a warning."""
    names = sorted({text for e in catalog.broken if (text := label(e))})
    whole = sorted({e.file for e in catalog.broken if named(e) is None and e.file})
    parts = names + [f"file {f}" for f in whole]
    files = sorted({e.file for e in catalog.broken if e.file})
    return (
        f"{len(catalog.broken)} problem(s) in {', '.join(files) or 'the definitions'}; left out: "
        f"{', '.join(parts) or 'nothing'}. Queries that do not touch them still answer; "
        "'pantry validate' lists every problem."
    )


def why_broken(catalog: Catalog, kind: str, name: str) -> tuple[PantryError, PantryError | None] | None:
    """The error that left out ``kind`` ``name`` (a metric or a feature view), and the root
    cause when that error is about something else left out before it (a measure, a metric)."""
    for err in catalog.broken:
        if named(err) == (kind, name):
            quoted = set(re.findall(r"'([^']+)'", err.message))
            quoted |= {part for q in list(quoted) for part in re.split(r"\.|__", q)}  # 'events.amount' names 'amount'
            quoted -= {name}
            for other in catalog.broken:
                text = label(other) or ""
                if other is not err and any(f"'{q}'" in text for q in quoted):
                    return err, other
            return err, None
    return None
