"""Broken definitions shown in Dagster: one ``broken/...`` asset each, never silently missing.

Why assets: the code location loads the sound definitions (``pantry/verify/sound.py``), so a
typo in one team's metric does not take every other asset down; the broken one appears in
the asset graph, in group ``broken_definitions``, with its error as description and
metadata, and materializing it fails with that error.
"""

from __future__ import annotations

import re

import dagster as dg

from pantry.errors import PantryError
from pantry.spec.model import Catalog
from pantry.verify.sound import label, named, why_broken


def _key(err: PantryError) -> dg.AssetKey:
    text = label(err) or f"file {err.file or 'definitions'}"
    parts = re.findall(r"[A-Za-z0-9_]+", text.replace("semantic model", "semantic_model"))
    return dg.AssetKey(["broken", "_".join(parts)])


def build_broken_assets(catalog: Catalog) -> list[dg.AssetsDefinition]:
    """One asset per left-out definition (errors about the same one grouped), with the root
    cause when it was left out for something else's sake (a metric on a broken measure)."""
    grouped: dict[dg.AssetKey, list[PantryError]] = {}
    for err in catalog.broken:
        grouped.setdefault(_key(err), []).append(err)
    return [_one(key, errors, catalog) for key, errors in grouped.items()]


def _one(key: dg.AssetKey, errors: list[PantryError], catalog: Catalog) -> dg.AssetsDefinition:
    lines = [str(e) for e in errors]
    which = named(errors[0])
    found = why_broken(catalog, *which) if which else None
    if found is not None and found[1] is not None:
        lines.append(f"Root cause: {label(found[1])} is broken: {found[1]}")
    text = "\n".join(lines)

    @dg.asset(
        key=key,
        group_name="broken_definitions",
        description=f"Left out of the store: its definition is broken.\n\n{text}",
        metadata={
            "errors": dg.MetadataValue.md("\n".join(f"- {line}" for line in lines)),
            "file": errors[0].file or "",
        },
        kinds={"yaml"},
    )
    def _broken() -> None:
        raise dg.Failure(description=f"fix the definition, then reload the code location: {text}")

    return _broken
