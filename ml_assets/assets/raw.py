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
from ml_assets.assets.data_errors import persistent_failures
from ml_assets.assets.range_runs import BACKFILL_POLICY, label, per_day
from ml_assets.assets.versions import versioned
from ml_assets.errors import classified, retry_policy
from ml_assets.partitions import daily
from ml_assets.resources.landing_zone import LandingZone
from ml_assets.settings import Settings
from ml_assets.types import Frame

GROUP = "raw"


def build_raw_assets(settings: Settings) -> list[dg.AssetsDefinition]:
    @dg.asset(
        partitions_def=daily, group_name=GROUP, kinds={"pandas", "parquet"}, owners=OWNERS,
        code_version="2", io_manager_key="lake", retry_policy=retry_policy(settings),
        backfill_policy=BACKFILL_POLICY,
    )  # fmt: skip
    @classified
    def raw_flights(context: dg.AssetExecutionContext, landing: LandingZone) -> Frame:
        """One day's departures from the landing zone, typed and keyed by ``flight_id``."""
        from ml_assets.checks.contracts import load_references
        from ml_assets.checks.volume import lake_days

        with persistent_failures(label(context, "raw_flights")):
            references = load_references(landing)
            stored = lake_days(settings.lake_base, "raw_flights")
        accepted: dict[str, int] = {}  # rows of the days this run accepted (range runs)

        def compute(day: str) -> Frame:
            return _raw_flights(context, landing, references, day, stored, accepted)

        return per_day(context, compute, version=True)

    def _raw_flights(
        context, landing: LandingZone, references, day: str, stored: set[str],
        accepted: dict[str, int],
    ) -> Frame:  # fmt: skip
        from ml_assets.checks.contracts import ContractGate
        from ml_assets.models.prepare import prepare_flights
        from ml_assets.sources.landing_files import daily_path

        gate = ContractGate(
            context, settings, file=str(daily_path(landing.base_path, "flights", day)),
            on_reject=lambda: landing.reject("flights", day), partition=day,
        )  # fmt: skip
        with persistent_failures(f"raw_flights[{day}]"):
            params = gate.params(references)
        landed = gate.read(lambda: landing.read_daily("flights", day))
        landed = gate.check("landed_flights", landed, params)
        volume = _guard_volume(gate, landing, day, gate.rows_in or 0, stored, accepted)
        with persistent_failures(f"raw_flights[{day}]"):
            frame = prepare_flights(landed, day)
        frame = gate.check("raw_flights", frame, params)
        extra = {
            "cancelled": int(frame["is_delayed"].isna().sum()),
            "delayed_share": float(frame["is_delayed"].mean()),
            **volume,
        }
        frame = gate.finish(frame, "raw_flights", extra)
        accepted[day] = int(volume["volume_rows"])
        return frame

    def _guard_volume(
        gate, landing: LandingZone, day: str, rows: int, stored: set[str], accepted: dict[str, int]
    ) -> dict[str, Any]:
        """Refuse a day far below its reference (rule volume_drop) unless an override accepts it."""
        from ml_assets.checks.volume import RULE, earlier_days, judge_volume, lake_rows

        base, share = settings.lake_base, settings.volume_guard_share
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
            gate.context.log.warning(
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
        gate.refuse(
            RULE,
            f"{verdict.describe()}{stale}. If the day is genuinely this small, land it again "
            "with `ml-assets land --accept-volume-drop` (or write its sha256 to "
            f"flights/{day}.accept-volume-drop before landing it).",
        )

    @dg.asset(
        partitions_def=daily, group_name=GROUP, kinds={"pandas", "parquet"}, owners=OWNERS,
        code_version="2", io_manager_key="lake", retry_policy=retry_policy(settings),
        backfill_policy=BACKFILL_POLICY,
    )  # fmt: skip
    @classified
    def raw_weather(context: dg.AssetExecutionContext, landing: LandingZone) -> Frame:
        """One day's hourly weather at EWR, JFK and LGA."""
        return per_day(context, lambda day: _raw_weather(context, landing, day), version=True)

    def _raw_weather(context, landing: LandingZone, day: str) -> Frame:
        from ml_assets.checks.contracts import ContractGate
        from ml_assets.models.prepare import prepare_weather
        from ml_assets.sources.landing_files import daily_path

        gate = ContractGate(
            context, settings, file=str(daily_path(landing.base_path, "weather", day)),
            on_reject=lambda: landing.reject("weather", day), partition=day,
        )  # fmt: skip
        params = gate.params()
        landed = gate.read(lambda: landing.read_daily("weather", day))
        landed = gate.check("landed_weather", landed, params)
        with persistent_failures(f"raw_weather[{day}]"):
            frame = prepare_weather(landed, day)
        frame = gate.finish(gate.check("raw_weather", frame, params), "raw_weather")
        return frame

    @dg.asset(
        group_name=GROUP,
        kinds={"pandas", "parquet"},
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

    return [raw_flights, raw_weather, planes]
