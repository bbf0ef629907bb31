"""Ingestion: landed files -> typed daily frames, plus the static plane reference table.

Each raw asset checks its landing file (``sources/landing.read_csv``), then the landed rows
(``landed_*`` contract) and the typed frame (``raw_*`` contract) before returning; see
``ml_assets/checks/contracts.py``. A bad day file fails the step without retries and is moved to
``<landing>/rejected/``, so the last good partition stays in the lake. ``raw_flights`` also
refuses a day far smaller than its reference (``checks/volume.py``, rule ``volume_drop``) unless an
operator's ``<day>.accept-volume-drop`` marker names that file.
"""

from typing import Any

import dagster as dg

from ml_assets.assets import OWNERS
from ml_assets.assets.daily_asset import DailyAssetSpec, DayContext, daily_asset
from ml_assets.assets.data_errors import persistent_failures
from ml_assets.assets.versions import versioned
from ml_assets.errors import classified, retry_policy
from ml_assets.resources.landing_zone import LandingZone
from ml_assets.settings import Settings
from ml_assets.types import Frame

GROUP = "raw"
KINDS = frozenset({"pandas", "parquet"})


def raw_flights(day: str, inputs: dict[str, Any], ctx: DayContext) -> Frame:
    """The day's landed flights, checked, volume-guarded and typed."""
    from ml_assets.checks.volume import lake_days
    from ml_assets.models.prepare import prepare_flights

    if "stored" not in ctx.shared:  # once per step: the stored days, and the days it accepted
        ctx.shared["stored"] = lake_days(ctx.settings.lake_base, "raw_flights")
        ctx.shared["accepted"] = {}
    stored, accepted = ctx.shared["stored"], ctx.shared["accepted"]
    landed = ctx.check("landed_flights", inputs["landed"])
    volume = _guard_volume(ctx, len(inputs["landed"]), stored, accepted)
    ctx.add_metadata(volume)
    accepted[day] = int(volume["volume_rows"])
    return prepare_flights(landed, day)


def _flight_counts(frame: Frame) -> dict[str, Any]:
    return {
        "cancelled": int(frame["is_delayed"].isna().sum()),
        "delayed_share": float(frame["is_delayed"].mean()),
    }


RAW_FLIGHTS = DailyAssetSpec(
    name="raw_flights",
    group=GROUP,
    kinds=KINDS,
    code_version="2",
    description="One day's departures from the landing zone, typed and keyed by ``flight_id``.",
    landing="flights",
    contract="raw_flights",
    references=True,
    describe=_flight_counts,
)


def _guard_volume(
    ctx: DayContext, rows: int, stored: set[str], accepted: dict[str, int]
) -> dict[str, Any]:
    """Refuse a day far below its reference (rule volume_drop) unless an override accepts it."""
    from ml_assets.checks.volume import RULE, earlier_days, judge_volume, lake_rows

    day, landing = ctx.day, ctx.resources["landing"]
    base, share = ctx.settings.lake_base, ctx.settings.volume_guard_share
    replaced = lake_rows(base, "raw_flights", [day]).get(day) if day in stored else None
    earlier: dict[str, int] = {}
    if replaced is None:
        days = earlier_days(day, stored | set(accepted))
        earlier = lake_rows(base, "raw_flights", [d for d in days if d not in accepted])
        earlier |= {d: accepted[d] for d in days if d in accepted}
    verdict = judge_volume(rows, share, replaced, earlier)
    metadata = verdict.metadata()
    if not verdict.dropped:
        metadata["volume_guard"] = "passed" if verdict.reference is not None else "no history"
        return metadata
    override = landing.volume_override("flights", day)
    if override is not None and override.accepted:
        ctx.log.warning(
            f"raw_flights[{day}]: {RULE} accepted by operator override {override.marker}: "
            f"{verdict.describe()}"
        )
        metadata["volume_guard"] = f"{RULE} accepted by operator override"
        metadata["volume_override"] = dg.MetadataValue.path(override.marker)
        metadata["volume_override_note"] = override.note
        return metadata
    stale = (
        f"; the marker {override.marker} names another version of the file (this one: "
        f"sha256 {override.sha256})"
        if override is not None
        else ""
    )
    ctx.refuse(
        RULE,
        f"{verdict.describe()}{stale}. If the day is genuinely this small, land it again "
        "with `ml-assets land --accept-volume-drop` (or write its sha256 to "
        f"flights/{day}.accept-volume-drop before landing it).",
    )


def raw_weather(day: str, inputs: dict[str, Any], ctx: DayContext) -> Frame:
    """The day's landed weather, checked and typed."""
    from ml_assets.models.prepare import prepare_weather

    return prepare_weather(ctx.check("landed_weather", inputs["landed"]), day)


RAW_WEATHER = DailyAssetSpec(
    name="raw_weather",
    group=GROUP,
    kinds=KINDS,
    code_version="2",
    description="One day's hourly weather at EWR, JFK and LGA.",
    landing="weather",
    contract="raw_weather",
)


def build_raw_assets(settings: Settings) -> list[dg.AssetsDefinition]:
    @dg.asset(
        group_name=GROUP,
        kinds=set(KINDS),
        owners=OWNERS,
        code_version="2",
        io_manager_key="lake",
        retry_policy=retry_policy(settings),
    )
    @classified
    def planes(context: dg.AssetExecutionContext, landing: LandingZone) -> Frame:
        """Reference data: one row per tail number (year built, seats, engines)."""
        from ml_assets.checks.contracts import ContractGate
        from ml_assets.models.prepare import prepare_planes
        from ml_assets.sources.landing_files import reference_path

        gate = ContractGate(
            context, settings, file=str(reference_path(landing.base_path, "planes"))
        )
        landed = gate.read(lambda: landing.read_reference("planes"))
        with persistent_failures("planes"):
            frame = prepare_planes(landed)
        return versioned(context, gate.finish(gate.check("planes", frame, gate.params()), "planes"))

    return [
        daily_asset(RAW_FLIGHTS, settings, raw_flights),
        daily_asset(RAW_WEATHER, settings, raw_weather),
        planes,
    ]
