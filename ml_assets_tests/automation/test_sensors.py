"""The landing sensor against a real instance: new, repeated, corrected, late and ingested days."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg

from ml_assets.automation.sensors import SEQUENCE_TAG, build_landing_sensor
from ml_assets.execution import DAILY_JOB
from ml_assets.resources.landing_zone import LandingZone
from ml_assets.resources.notify import build_notifier
from ml_assets.settings import Settings
from ml_assets_tests.automation.conftest import age_files, copy_day


def tick(settings: Settings, instance: dg.DagsterInstance, cursor: str | None) -> dg.SensorResult:
    sensor = build_landing_sensor(settings)
    context = dg.build_sensor_context(
        instance=instance,
        cursor=cursor,
        resources={
            "landing": LandingZone(base_path=settings.landing_base),
            "notifier": build_notifier(settings),
        },
    )
    return sensor(context)


def days_of(result: dg.SensorResult) -> list[str]:
    return [r.partition_key for r in result.run_requests]


def test_new_complete_days_request_runs_and_incomplete_days_wait(
    auto_settings: Settings, instance, landing: Path, landing_dir: Path
) -> None:
    copy_day(landing_dir, landing, "2013-01-02")
    copy_day(landing_dir, landing, "2013-01-03")
    copy_day(landing_dir, landing, "2013-01-04", sources=("flights",))  # weather not yet here
    result = tick(auto_settings, instance, None)
    assert days_of(result) == ["2013-01-02", "2013-01-03"]
    request = result.run_requests[0]
    assert (
        request.run_key.startswith("2013-01-02:")
        and len(request.run_key) == len("2013-01-02:") + 16
    )
    assert request.tags["ml_assets/trigger"] == "landing" and request.tags[SEQUENCE_TAG] == "daily"
    assert build_landing_sensor(auto_settings).job_name == DAILY_JOB

    copy_day(landing_dir, landing, "2013-01-04", sources=("weather",))
    later = tick(auto_settings, instance, result.cursor)
    assert days_of(later) == ["2013-01-04"]


def test_same_files_twice_request_nothing_and_run_keys_are_stable(
    auto_settings: Settings, instance, landing: Path, landing_dir: Path
) -> None:
    copy_day(landing_dir, landing, "2013-01-02")
    first = tick(auto_settings, instance, None)
    again = tick(auto_settings, instance, first.cursor)
    assert again.run_requests == [] and again.skip_reason is not None
    # A restart that lost the cursor asks again with the same run key, which the daemon dedupes.
    restarted = tick(auto_settings, instance, None)
    assert [r.run_key for r in restarted.run_requests] == [r.run_key for r in first.run_requests]


def test_corrected_file_requests_a_new_run(
    auto_settings: Settings, instance, landing: Path, landing_dir: Path
) -> None:
    copy_day(landing_dir, landing, "2013-01-02")
    first = tick(auto_settings, instance, None)
    flights = landing / "flights" / "2013-01-02.csv"
    lines = flights.read_text().splitlines(keepends=True)
    flights.write_text("".join(lines[:-1]))  # the upstream system re-lands a corrected file
    corrected = tick(auto_settings, instance, first.cursor)
    assert days_of(corrected) == ["2013-01-02"]
    assert corrected.run_requests[0].run_key != first.run_requests[0].run_key
    assert json.loads(corrected.cursor)["2013-01-02"] != json.loads(first.cursor)["2013-01-02"]


def test_late_day_landed_after_later_days_is_requested(
    auto_settings: Settings, instance, landing: Path, landing_dir: Path
) -> None:
    for day in ("2013-01-02", "2013-01-04", "2013-01-05"):
        copy_day(landing_dir, landing, day)
    first = tick(auto_settings, instance, None)
    assert days_of(first) == ["2013-01-02", "2013-01-04", "2013-01-05"]
    copy_day(landing_dir, landing, "2013-01-03")  # arrives late
    late = tick(auto_settings, instance, first.cursor)
    assert days_of(late) == ["2013-01-03"]


def test_days_ingested_after_landing_are_not_requested_again(
    auto_settings: Settings, instance, landing: Path, landing_dir: Path
) -> None:
    copy_day(landing_dir, landing, "2013-01-02")
    copy_day(landing_dir, landing, "2013-01-03")
    age_files(landing, "2013-01-02", 600)
    for asset in ("raw_flights", "raw_weather"):  # e.g. `ml-assets demo` ran it in-process
        instance.report_runless_asset_event(dg.AssetMaterialization(asset, partition="2013-01-02"))
    result = tick(auto_settings, instance, None)
    assert days_of(result) == ["2013-01-03"]
    assert "2013-01-02" in json.loads(result.cursor)


def test_days_outside_the_partitions_are_ignored(
    auto_settings: Settings, instance, landing: Path, landing_dir: Path
) -> None:
    copy_day(landing_dir, landing, "2013-01-02")
    for source in ("flights", "weather"):
        (landing / source / "2014-01-01.csv").write_text("year\n2014\n")
    result = tick(auto_settings, instance, None)
    assert days_of(result) == ["2013-01-02"]
    assert "2014-01-01" in json.loads(result.cursor)
