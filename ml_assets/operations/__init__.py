"""Operator tooling: the ``ml-assets`` CLI, backfill planning, stale detection and launching,
partition-range runs through a Dagster instance, and the webserver + daemon supervisor.

Nothing else in ``ml_assets`` imports this package: it sits on top of the code location.
"""
