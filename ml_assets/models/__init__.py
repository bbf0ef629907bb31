"""The data science: pure functions with no Dagster import and no IO."""
