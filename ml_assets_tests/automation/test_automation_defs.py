"""Automation is wired into the code location and runs by default when the daemon starts."""

from __future__ import annotations

import dagster as dg

from ml_assets.definitions import build_defs
from ml_assets.resources.notify import SmtpNotifier, build_notifier
from ml_assets.settings import Settings

SENSORS = {
    "landing_sensor",
    "pipeline_monitor",
    "freshness_monitor",
    "email_on_failure",
    "email_on_deployment",
    "step_watchdog",
}


def test_sensors_and_schedule_are_registered_and_running_by_default(
    auto_settings: Settings,
) -> None:
    defs = build_defs(auto_settings)
    dg.Definitions.validate_loadable(defs)
    sensors = {s.name: s for s in defs.sensors}
    assert set(sensors) == SENSORS
    assert all(s.default_status == dg.DefaultSensorStatus.RUNNING for s in sensors.values())
    schedule = defs.resolve_schedule_def("daily_at_2am")
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    assert schedule.cron_schedule == "0 2 * * *"
    assert (
        sensors["landing_sensor"].minimum_interval_seconds
        == auto_settings.landing_sensor_interval_s
    )


def test_notifier_settings_come_from_the_environment() -> None:
    settings = Settings.from_env(
        {
            "ML_ASSETS_ROOT": "/tmp/unused",
            "ML_ASSETS_SMTP_HOST": "smtp.example.com",
            "ML_ASSETS_SMTP_PORT": "587",
            "ML_ASSETS_SMTP_SECURITY": "starttls",
            "ML_ASSETS_SMTP_RECIPIENTS": "a@example.com, b@example.com",
            "ML_ASSETS_SMTP_USER": "pipeline",
            "ML_ASSETS_WEBSERVER_URL": "https://dagster.example.com",
            "ML_ASSETS_MONITOR_FAILURE_RATE": "0.1",
        }
    )
    notifier = build_notifier(settings)
    assert isinstance(notifier, SmtpNotifier)
    assert (notifier.host, notifier.port, notifier.security) == (
        "smtp.example.com",
        587,
        "starttls",
    )
    assert notifier.recipients == ["a@example.com", "b@example.com"]
    assert notifier.username == "pipeline"
    assert (
        isinstance(notifier.password, dg.EnvVar)
        and notifier.password.env_var_name == "SMTP_PASSWORD"
    )
    assert settings.webserver_url == "https://dagster.example.com"
    assert settings.monitor_failure_rate == 0.1
    defaults = Settings.from_env({"ML_ASSETS_ROOT": "/tmp/unused"})
    assert (defaults.smtp_host, defaults.smtp_port, defaults.pushgateway_url) == (
        "127.0.0.1",
        1025,
        None,
    )
    assert build_notifier(defaults).password is None
