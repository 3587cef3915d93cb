"""Pantry's Dagster adapters: assets, resources and sensors built from a definitions folder.

Why one package and not three top-level ones: a wheel that installs packages named
``assets``, ``resources`` and ``sensors`` into site-packages shadows a user's own modules
of those names. A project's ``definitions.py`` needs only::

    from pantry_dagster import build_definitions
    defs = build_definitions("metrics_defs")
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg


@contextmanager
def _quiet() -> Iterator[None]:
    """Pantry's own use of Dagster's beta and superseded APIs (code references, observable
    sources, backfill policies, freshness checks) is deliberate and pinned: not the user's
    to act on, so not printed on every ``dagster asset materialize``. Only what happens
    while Pantry builds its definitions is silenced; the user's code and Dagster's CLI
    still warn."""
    with warnings.catch_warnings():
        for category in (dg.BetaWarning, dg.PreviewWarning, dg.SupersessionWarning):
            warnings.simplefilter("ignore", category)
        yield


# Dagster copies every sensor when it resolves the Definitions, after build_definitions has
# returned, and warns again about the owners its own freshness sensor carries
warnings.filterwarnings(
    "ignore", message=r"Parameter `owners` of initializer `SensorDefinition", category=dg.BetaWarning
)

with _quiet():
    from pantry_dagster.assets.location import build_definitions as _build_definitions


def build_definitions(
    defs: str | None = None, home: str | None = None, redis_url: str | None = None, offline_uri: str | None = None
) -> dg.Definitions:
    """Definitions for the folder ``defs`` (default ``PANTRY_DEFS``): every metric and
    feature as partitioned assets, their checks, schedules and sensors."""
    with _quiet():
        return _build_definitions(defs=defs, home=home, redis_url=redis_url, offline_uri=offline_uri)


__all__ = ["build_definitions"]
