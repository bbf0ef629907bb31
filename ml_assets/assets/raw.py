"""Ingestion: landed files -> typed daily frames, plus the static plane reference table."""

import dagster as dg

from ml_assets.assets import OWNERS
from ml_assets.assets.errors import persistent_failures
from ml_assets.partitions import daily
from ml_assets.resources.landing import LandingZone
from ml_assets.settings import Settings
from ml_assets.types import Frame

GROUP = "raw"


def build_raw_assets(settings: Settings) -> list[dg.AssetsDefinition]:
    @dg.asset(
        partitions_def=daily, group_name=GROUP, kinds={"pandas", "parquet"}, owners=OWNERS,
        code_version="1", io_manager_key="lake",
    )  # fmt: skip
    def raw_flights(context: dg.AssetExecutionContext, landing: LandingZone) -> Frame:
        """One day's departures from the landing zone, typed and keyed by ``flight_id``."""
        from ml_assets.models.prepare import prepare_flights

        day = context.partition_key
        with persistent_failures(f"raw_flights[{day}]"):
            frame = prepare_flights(landing.read_daily("flights", day), day)
        context.add_output_metadata(
            {
                "cancelled": int(frame["is_delayed"].isna().sum()),
                "delayed_share": float(frame["is_delayed"].mean()),
            }
        )
        return frame

    @dg.asset(
        partitions_def=daily, group_name=GROUP, kinds={"pandas", "parquet"}, owners=OWNERS,
        code_version="1", io_manager_key="lake",
    )  # fmt: skip
    def raw_weather(context: dg.AssetExecutionContext, landing: LandingZone) -> Frame:
        """One day's hourly weather at EWR, JFK and LGA."""
        from ml_assets.models.prepare import prepare_weather

        day = context.partition_key
        with persistent_failures(f"raw_weather[{day}]"):
            return prepare_weather(landing.read_daily("weather", day), day)

    @dg.asset(
        group_name=GROUP,
        kinds={"pandas", "parquet"},
        owners=OWNERS,
        code_version="1",
        io_manager_key="lake",
    )
    def planes(landing: LandingZone) -> Frame:
        """Reference data: one row per tail number (year built, seats, engines)."""
        from ml_assets.models.prepare import prepare_planes

        with persistent_failures("planes"):
            return prepare_planes(landing.read_reference("planes"))

    return [raw_flights, raw_weather, planes]
