"""Feature engineering: the fan-in flight branch and the traffic branch of the diamond.

Both assets check their frame against its contract before returning (``checks/contracts.py``).
"""

import dagster as dg

from ml_assets.assets import OWNERS
from ml_assets.assets.data_errors import persistent_failures
from ml_assets.assets.range_runs import BACKFILL_POLICY, label, per_day
from ml_assets.errors import classified, retry_policy
from ml_assets.partitions import daily, trailing
from ml_assets.resources.lake_ranges import window
from ml_assets.resources.landing_zone import LandingZone
from ml_assets.settings import Settings
from ml_assets.types import Frame

GROUP = "features"


def build_feature_assets(settings: Settings) -> list[dg.AssetsDefinition]:
    horizon = settings.prediction_horizon_hours

    @dg.asset(
        partitions_def=daily, group_name=GROUP, kinds={"pandas", "parquet"}, owners=OWNERS,
        code_version="2", io_manager_key="lake", retry_policy=retry_policy(settings),
        backfill_policy=BACKFILL_POLICY,
        ins={"raw_weather": dg.AssetIn(partition_mapping=trailing(2))},
        metadata={"prediction_horizon_hours": horizon},
    )  # fmt: skip
    @classified
    def flight_features(
        context: dg.AssetExecutionContext,
        landing: LandingZone,
        raw_flights: Frame,
        raw_weather: Frame,
        planes: Frame,
    ) -> Frame:
        """Fan-in: each flight with the origin's weather at prediction time and its plane."""
        from ml_assets.checks.contracts import load_references

        with persistent_failures(label(context, "flight_features")):
            references = load_references(landing)
        return per_day(
            context,
            lambda day: _flight_features(
                context, window(raw_flights, day, 1), window(raw_weather, day, 2), planes,
                references, day,
            ),
        )  # fmt: skip

    def _flight_features(context, raw_flights, raw_weather, planes, references, day) -> Frame:
        from ml_assets.checks.contracts import ContractGate
        from ml_assets.models.features import build_flight_features

        gate = ContractGate(context, settings, partition=day)
        with persistent_failures(f"flight_features[{day}]"):
            frame = build_flight_features(raw_flights, raw_weather, planes, horizon)
            params = gate.params(references)
        frame = gate.check("flight_features", frame, params)
        return gate.finish(
            frame,
            "flight_features",
            {
                "weather_matched_share": float(frame["wx_temp"].notna().mean()),
                "plane_matched_share": float(frame["seats"].notna().mean()),
            },
        )

    @dg.asset(
        partitions_def=daily, group_name=GROUP, kinds={"pandas", "parquet"}, owners=OWNERS,
        code_version="2", io_manager_key="lake", retry_policy=retry_policy(settings),
        backfill_policy=BACKFILL_POLICY,
        ins={"raw_flights": dg.AssetIn(partition_mapping=trailing(settings.history_days + 1))},
        metadata={"history_days": settings.history_days, "prediction_horizon_hours": horizon},
    )  # fmt: skip
    @classified
    def traffic_features(context: dg.AssetExecutionContext, raw_flights: Frame) -> Frame:
        """Schedule congestion, trailing delay rates and the day's delays known at prediction time."""
        days = settings.history_days + 1
        return per_day(
            context, lambda day: _traffic_features(context, window(raw_flights, day, days), day)
        )

    def _traffic_features(context, raw_flights, day: str) -> Frame:
        from ml_assets.checks.contracts import ContractGate
        from ml_assets.models.features import build_traffic_features

        gate = ContractGate(context, settings, partition=day)
        with persistent_failures(f"traffic_features[{day}]"):
            frame = build_traffic_features(raw_flights, day, horizon)
        return gate.finish(
            gate.check("traffic_features", frame, gate.params()),
            "traffic_features",
            {"history_days_loaded": int(raw_flights["flight_date"].nunique()) - 1},
        )

    return [flight_features, traffic_features]
