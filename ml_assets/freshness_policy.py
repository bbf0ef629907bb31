"""The freshness the pipeline promises, declared below the assets and the automation using it.

``deployed_model`` carries a time-window ``FreshnessPolicy``; the daily assets named here carry a
per-partition ``partition_freshness`` check, which the freshness sensor evaluates (never a job's
step). The judging lives in ``automation/freshness.py``.
"""

from __future__ import annotations

import datetime as dt

import dagster as dg

from ml_assets.settings import Settings

CHECK_NAME = "partition_freshness"
FRESHNESS_ASSETS = (
    "raw_flights",
    "raw_weather",
    "flight_features",
    "traffic_features",
    "training_set",
    "model_leaderboard",
    "deployed_model",
)
# Evaluated by the freshness sensor, never as steps of the pipeline's jobs.
SENSOR_EVALUATED_CHECKS = tuple(
    dg.AssetCheckKey(dg.AssetKey(a), CHECK_NAME) for a in FRESHNESS_ASSETS
)


def deployed_model_policy(settings: Settings) -> dg.FreshnessPolicy:
    """``deployed_model`` must be materialized at least every ``freshness_fail_hours``."""
    return dg.FreshnessPolicy.time_window(
        fail_window=dt.timedelta(hours=settings.freshness_fail_hours),
        warn_window=dt.timedelta(hours=settings.freshness_warn_hours),
    )
