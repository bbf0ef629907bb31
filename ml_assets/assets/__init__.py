"""Thin Dagster wrappers: load inputs, call a pure function from ``models/``, record metadata."""

OWNERS = ["team:ml-platform"]
