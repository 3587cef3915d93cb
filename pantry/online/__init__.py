"""The online store: Redis layout, the newer-wins push script, pipelined reads (DESIGN.md section 5)."""
