"""The online store: Redis layout, the newer-wins push script, pipelined reads (docs/online.md)."""
