"""Dagster resources: one per external system (lake, landing zone, model registry)."""
