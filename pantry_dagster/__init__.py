"""Pantry's Dagster adapters: assets, resources and sensors built from a definitions folder.

Why one package and not three top-level ones: a wheel that installs packages named
``assets``, ``resources`` and ``sensors`` into site-packages shadows a user's own modules
of those names. A project's ``definitions.py`` needs only::

    from pantry_dagster import build_definitions
    defs = build_definitions("metrics_defs")
"""

from pantry_dagster.assets.location import build_definitions

__all__ = ["build_definitions"]
