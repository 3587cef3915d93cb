"""Feature views: tiles at write time, point-in-time reads (DESIGN.md section 3)."""
