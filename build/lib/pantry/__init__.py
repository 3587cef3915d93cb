"""Pantry: business metrics and ML features, defined once and served consistently."""

from pantry.api.store import Store
from pantry.errors import PantryError

__all__ = ["PantryError", "Store"]
