"""ml_assets: a daily flight-delay ML pipeline as partitioned Dagster assets."""

__version__ = "0.1.0"
