"""Monitoring: Evidently drift, data checks, the record of verdicts, and Slack alerts.

The engine judges and remembers; Dagster (``pantry_dagster/``) only reports what it
judged. ``pantry drift`` runs the same code as the asset checks.
"""
