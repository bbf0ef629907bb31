"""Feature engineering: the fan-in flight branch and the traffic branch of the diamond.

Both assets check their frame against its contract before returning (``checks/contracts.py``).
"""

from typing import Any

import dagster as dg

from ml_assets.assets.daily_asset import DailyAssetSpec, DayContext, daily_asset
from ml_assets.settings import Settings
from ml_assets.types import Frame

GROUP = "features"
KINDS = frozenset({"pandas", "parquet"})


def flight_features(day: str, inputs: dict[str, Any], ctx: DayContext) -> Frame:
    """Each of the day's flights with the origin's weather at prediction time and its plane."""
    from ml_assets.models.features import build_flight_features

    return build_flight_features(
        inputs["raw_flights"],
        inputs["raw_weather"],
        inputs["planes"],
        ctx.settings.prediction_horizon_hours,
    )


def _matched_shares(frame: Frame) -> dict[str, Any]:
    return {
        "weather_matched_share": float(frame["wx_temp"].notna().mean()),
        "plane_matched_share": float(frame["seats"].notna().mean()),
    }


def traffic_features(day: str, inputs: dict[str, Any], ctx: DayContext) -> Frame:
    """The day's congestion and delay features from the trailing days' flights."""
    from ml_assets.models.features import build_traffic_features

    raw_flights = inputs["raw_flights"]
    ctx.add_metadata({"history_days_loaded": int(raw_flights["flight_date"].nunique()) - 1})
    return build_traffic_features(raw_flights, day, ctx.settings.prediction_horizon_hours)


def build_feature_assets(settings: Settings) -> list[dg.AssetsDefinition]:
    horizon = settings.prediction_horizon_hours
    flights = DailyAssetSpec(
        name="flight_features",
        group=GROUP,
        kinds=KINDS,
        code_version="2",
        description="Fan-in: each flight with the origin's weather at prediction time and its "
        "plane.",
        ins={"raw_flights": None, "raw_weather": 2, "planes": None},
        contract="flight_features",
        references=True,
        describe=_matched_shares,
        versioned=False,
        metadata={"prediction_horizon_hours": horizon},
    )
    traffic = DailyAssetSpec(
        name="traffic_features",
        group=GROUP,
        kinds=KINDS,
        code_version="2",
        description="Schedule congestion, trailing delay rates and the day's delays known at "
        "prediction time.",
        ins={"raw_flights": settings.history_days + 1},
        contract="traffic_features",
        versioned=False,
        metadata={"history_days": settings.history_days, "prediction_horizon_hours": horizon},
    )
    return [
        daily_asset(flights, settings, flight_features),
        daily_asset(traffic, settings, traffic_features),
    ]
