"""The one Dagster code location: Definitions built from PANTRY_DEFS, and nothing else."""

from pantry_dagster import build_definitions

defs = build_definitions()
