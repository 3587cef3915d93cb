"""Push ingestion: rows that arrive while Pantry runs (``ingest: push`` models)."""
