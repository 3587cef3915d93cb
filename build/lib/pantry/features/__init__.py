"""Feature views: tiles at write time, point-in-time reads (docs/features.md)."""
