"""The 02:00 schedule: the previous New York day, or a clear reason to skip."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import dagster as dg
import pytest

from ml_assets.automation.schedules import CRON, build_daily_schedule, previous_day
from ml_assets.definitions import build_defs
from ml_assets.resources.landing_zone import LandingZone
from ml_assets.settings import Settings
from ml_assets_tests.automation.conftest import age_files, copy_day

NY = ZoneInfo("America/New_York")


@pytest.fixture(scope="module")
def instance():
    """Schedule contexts need a persistent instance: one SQLite instance for the module."""
    with dg.instance_for_test() as persistent:
        yield persistent


def tick(settings: Settings, instance, when: dt.datetime):
    schedule = build_daily_schedule(settings)
    # As a context manager: the instance it opens is closed in order (a leaked one would stay
    # Dagster's current state storage after the module's instance is deleted).
    with dg.build_schedule_context(
        instance=instance,
        scheduled_execution_time=when,
        resources={"landing": LandingZone(base_path=settings.landing_base)},
    ) as context:
        return schedule(context)


def test_runs_at_two_in_new_york() -> None:
    assert CRON == "0 2 * * *"
    assert previous_day(dt.datetime(2013, 3, 15, 2, 0, tzinfo=NY)) == "2013-03-14"
    # 02:00 New York is 06:00 or 07:00 UTC: still the New York date that matters.
    assert previous_day(dt.datetime(2013, 3, 15, 6, 0, tzinfo=dt.UTC)) == "2013-03-14"


def test_requests_the_previous_day_when_it_has_landed(
    auto_settings: Settings, instance, landing: Path, landing_dir: Path
) -> None:
    copy_day(landing_dir, landing, "2013-01-02")
    request = tick(auto_settings, instance, dt.datetime(2013, 1, 3, 2, 0, tzinfo=NY))
    assert isinstance(request, dg.RunRequest)
    assert request.partition_key == "2013-01-02"
    assert request.tags["ml_assets/trigger"] == "schedule"
    definition = build_defs(auto_settings).resolve_schedule_def("daily_at_2am")
    assert (
        definition.execution_timezone == "America/New_York"
        and definition.job_name == "daily_pipeline"
    )
    with dg.build_schedule_context(
        instance=instance,
        scheduled_execution_time=dt.datetime(2013, 1, 3, 2, 0, tzinfo=NY),
        repository_def=build_defs(auto_settings).get_repository_def(),
        resources={"landing": LandingZone(base_path=auto_settings.landing_base)},
    ) as context:
        [resolved] = definition.evaluate_tick(context).run_requests  # resolved against the job
    assert resolved.partition_key == "2013-01-02"


def test_skips_with_a_reason_when_the_day_has_not_landed(
    auto_settings: Settings, instance, landing: Path, landing_dir: Path
) -> None:
    copy_day(landing_dir, landing, "2013-01-02", sources=("flights",))
    skip = tick(auto_settings, instance, dt.datetime(2013, 1, 3, 2, 0, tzinfo=NY))
    assert isinstance(skip, dg.SkipReason)
    assert skip.skip_message == (
        f"2013-01-02 has not landed: missing weather/2013-01-02.csv in {landing}"
    )


def test_skips_a_day_already_deployed_after_it_landed(
    auto_settings: Settings, instance, landing: Path, landing_dir: Path
) -> None:
    copy_day(landing_dir, landing, "2013-01-09")
    age_files(landing, "2013-01-09", 600)
    instance.report_runless_asset_event(
        dg.AssetMaterialization("deployed_model", partition="2013-01-09")
    )
    skip = tick(auto_settings, instance, dt.datetime(2013, 1, 10, 2, 0, tzinfo=NY))
    assert isinstance(skip, dg.SkipReason) and "2013-01-09 is up to date" in skip.skip_message


@pytest.mark.parametrize("when", [dt.datetime(2013, 1, 1, 2, 0), dt.datetime(2026, 5, 1, 2, 0)])
def test_skips_days_outside_the_partitions(auto_settings: Settings, instance, when) -> None:
    skip = tick(auto_settings, instance, when.replace(tzinfo=NY))
    assert isinstance(skip, dg.SkipReason) and "outside the partitions" in skip.skip_message
