"""Lake faults through the real raw assets: transient ones are retried,
persistent ones alert once."""

from __future__ import annotations

import errno
from pathlib import Path

import dagster as dg
import pytest

from ml_assets.automation.smtp_sink import Inbox, start_sink
from ml_assets.definitions import build_defs
from ml_assets.resources.notify import build_notifier
from ml_assets.settings import Settings
from ml_assets_tests.automation.conftest import free_port
from ml_assets_tests.faults.flaky import FlakyFileSystem, register

DAY = "2013-01-05"
RAW = [dg.AssetKey("raw_flights"), dg.AssetKey("raw_weather")]
pytestmark = pytest.mark.filterwarnings("ignore:UPath 'flaky' filesystem")


def reset(path: str) -> BaseException:
    return ConnectionResetError(errno.ECONNRESET, f"Connection reset by peer while opening {path}")


def denied(path: str) -> BaseException:
    return PermissionError(errno.EACCES, "Permission denied", path)


def _run(settings: Settings, instance: dg.DagsterInstance) -> dg.ExecuteInProcessResult:
    job = build_defs(settings).resolve_implicit_global_asset_job_def()
    return job.execute_in_process(
        instance=instance, partition_key=DAY, asset_selection=RAW, raise_on_error=False
    )


def _events(result: dg.ExecuteInProcessResult, kind: dg.DagsterEventType) -> list[str]:
    return [e.step_key for e in result.all_events if e.event_type == kind]


@pytest.fixture
def flaky_settings(settings: Settings, tmp_path: Path) -> Settings:
    register()
    return settings.model_copy(update={"lake_base": f"flaky://{tmp_path / 'flaky-lake'}"})


def test_transient_lake_faults_are_retried_and_succeed(
    flaky_settings: Settings, settings: Settings, tmp_path: Path
) -> None:
    """Two connection resets on the first writes: two step retries, then identical files."""
    FlakyFileSystem.arm(2, reset)
    with dg.DagsterInstance.ephemeral() as instance:
        result = _run(flaky_settings, instance)
    assert result.success
    assert FlakyFileSystem.injected == 2
    retried = _events(result, dg.DagsterEventType.STEP_UP_FOR_RETRY)
    assert len(retried) == 2 and set(retried) <= {"raw_flights", "raw_weather"}
    with dg.DagsterInstance.ephemeral() as instance:
        assert _run(settings, instance).success  # the same day without faults, in a plain lake
    for asset in ("raw_flights", "raw_weather"):
        faulted = tmp_path / "flaky-lake" / asset / f"{DAY}.parquet"
        clean = Path(settings.lake_base) / asset / f"{DAY}.parquet"
        assert faulted.read_bytes() == clean.read_bytes()


@pytest.mark.parametrize(
    ("fault", "count", "attempts", "failed_steps", "message"),
    [
        (denied, 1, 1, ["raw_flights"], "lake write: [Errno 13] Permission denied"),
        (reset, 99, 4, ["raw_flights", "raw_weather"], "Connection reset by peer"),
    ],
    ids=["persistent-fails-once", "transient-exhausts-retries"],
)
def test_unrecoverable_lake_faults_fail_and_alert(
    flaky_settings: Settings, fault, count: int, attempts: int, failed_steps: list, message: str
) -> None:
    """A persistent fault fails at the first attempt; a lasting transient one after 3 retries.
    Either way the run fails and the failure sensor emails the asset, partition and error."""
    FlakyFileSystem.arm(count, fault)
    box, port = Inbox(), free_port()
    controller = start_sink("127.0.0.1", port, box)
    mail = flaky_settings.model_copy(update={"smtp_port": port})
    try:
        with dg.DagsterInstance.ephemeral() as instance:
            result = _run(mail, instance)
            assert not result.success
            assert sorted(_events(result, dg.DagsterEventType.STEP_FAILURE)) == failed_steps
            retries = _events(result, dg.DagsterEventType.STEP_UP_FOR_RETRY)
            assert [retries.count(s) for s in failed_steps] == [attempts - 1] * len(failed_steps)
            assert FlakyFileSystem.injected == attempts * len(failed_steps)
            context = dg.build_run_status_sensor_context(
                sensor_name="email_on_failure",
                dagster_event=result.get_run_failure_event(),
                dagster_instance=instance,
                dagster_run=result.dagster_run,
                resources={"notifier": build_notifier(mail)},
            ).for_run_failure()
            build_defs(mail).resolve_sensor_def("email_on_failure")(context)
        [email] = box.wait_for(1, timeout_s=10)
    finally:
        controller.stop()
    body = email.get_content()
    assert all(f"  - {step}: " in body for step in failed_steps)
    assert message in body and f"Partition: {DAY}" in body
    if attempts == 1:
        assert f"raw_flights[{DAY}]: lake write" in body
