"""Automation and monitoring: sensors, schedule, freshness, monitor checks, email, metrics."""

import dagster as dg

from ml_assets.settings import Settings


def build_automation_defs(settings: Settings) -> dg.Definitions:
    """Sensors, the schedule, the monitor and freshness checks, and the notifier resource."""
    from ml_assets.automation.monitor_checks import build_freshness_checks, build_monitor_checks
    from ml_assets.automation.notifications import build_notification_sensors
    from ml_assets.automation.schedules import build_daily_schedule
    from ml_assets.automation.sensors import (
        build_freshness_sensor,
        build_landing_sensor,
        build_monitor_sensor,
    )
    from ml_assets.automation.watchdog import build_step_watchdog
    from ml_assets.models.catalog import load_catalog
    from ml_assets.resources.notify import build_notifier

    return dg.Definitions(
        asset_checks=[*build_monitor_checks(settings), *build_freshness_checks(settings)],
        sensors=[
            build_landing_sensor(settings),
            build_monitor_sensor(settings),
            build_freshness_sensor(settings),
            *build_notification_sensors(settings),
            build_step_watchdog(settings, load_catalog(settings.catalog_path)),
        ],
        schedules=[build_daily_schedule(settings)],
        resources={"notifier": build_notifier(settings)},
    )
