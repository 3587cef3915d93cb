"""The one Dagster code location: Definitions built from PANTRY_DEFS, and nothing else."""

from assets.location import build_definitions

defs = build_definitions()
