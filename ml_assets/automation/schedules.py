"""The daily schedule: 02:00 in New York, the previous day, unless it has not landed or is done."""

import datetime as dt

import dagster as dg

from ml_assets.automation import history
from ml_assets.automation.landing_scan import complete_days, missing_sources, scan_daily_files
from ml_assets.automation.sensors import run_key, run_tags
from ml_assets.execution import DAILY_JOB
from ml_assets.partitions import TIMEZONE, daily
from ml_assets.resources.landing_zone import LandingZone
from ml_assets.settings import Settings

CRON = "0 2 * * *"


def previous_day(scheduled: dt.datetime) -> str:
    """The New York calendar day before the tick."""
    from zoneinfo import ZoneInfo

    return (scheduled.astimezone(ZoneInfo(TIMEZONE)).date() - dt.timedelta(days=1)).isoformat()


def build_daily_schedule(settings: Settings) -> dg.ScheduleDefinition:
    valid = set(daily.get_partition_keys())

    @dg.schedule(
        name="daily_at_2am",
        cron_schedule=CRON,
        execution_timezone=TIMEZONE,
        job_name=DAILY_JOB,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description="The whole graph for the previous day at 02:00 America/New_York.",
    )
    def daily_at_2am(
        context: dg.ScheduleEvaluationContext, landing: LandingZone
    ) -> dg.RunRequest | dg.SkipReason:
        day = previous_day(context.scheduled_execution_time)
        if day not in valid:
            return dg.SkipReason(f"{day} is outside the partitions {min(valid)}..{max(valid)}")
        files = scan_daily_files(landing.base_path)
        landed = next((d for d in complete_days(files) if d.day == day), None)
        if landed is None:
            missing = ", ".join(f"{s}/{day}.csv" for s in missing_sources(files, day))
            return dg.SkipReason(f"{day} has not landed: missing {missing} in {landing.base_path}")
        done = history.latest_materialization(context.instance, "deployed_model", day)
        if done is not None and done.timestamp >= landed.landed_at:
            return dg.SkipReason(
                f"{day} is up to date: deployed_model[{day}] was materialized by run "
                f"{done.run_id} after its files landed"
            )
        return dg.RunRequest(
            run_key=run_key(landed), partition_key=day, tags=run_tags("schedule", landed)
        )

    return daily_at_2am
