"""step_watchdog: a step is judged while it runs (slow: email once; past its limit: run ended)."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import dagster as dg
import pytest

from ml_assets.automation import history, monitors
from ml_assets.automation.smtp_sink import Inbox
from ml_assets.automation.watchdog import build_step_watchdog
from ml_assets.resources.notify import build_notifier
from ml_assets.settings import Settings


def test_running_step_is_slow_past_twice_its_median_or_the_hard_warning() -> None:
    kwargs = {
        "where": "daily_pipeline[2013-03-14] run abc step model__gbdt",
        "factor": 2.0,
        "min_history": 3,
        "warning_s": 7200.0,
    }
    alert = monitors.running_step(650.0, [300.0, 310.0, 290.0], **kwargs)
    assert alert.text() == (
        "[slow_step] daily_pipeline[2013-03-14] run abc step model__gbdt: still running after "
        "650 s, 2.2x its trailing median (threshold 2x); baseline: median 300.0 s over the "
        "previous 3 runs"
    )
    assert monitors.running_step(590.0, [300.0, 310.0, 290.0], **kwargs) is None
    assert monitors.running_step(5000.0, [100.0], **kwargs) is None  # no median yet, under 2 h
    assert monitors.running_step(0.5, [0.1] * 3, **kwargs, min_seconds=1.0) is None  # too short
    hard = monitors.running_step(7300.0, [100.0], **kwargs)
    assert hard.excess == "past the 7200 s warning by 100 s"
    assert hard.baseline == "1 earlier runs (fewer than 3: no median)"


release = threading.Event()


@dg.asset(group_name="raw")
def waits_for_release() -> None:
    release.wait(60)


WATCHED = dg.define_asset_job("watched", selection=[waits_for_release])
DEFS = dg.Definitions(assets=[waits_for_release], jobs=[WATCHED])


@pytest.fixture
def disk_instance(tmp_path: Path):
    """An instance on disk: the run's thread and the sensor read the same storage."""
    with dg.DagsterInstance.local_temp(str(tmp_path)) as instance:
        yield instance


def tick(settings: Settings, instance, cursor):
    context = dg.build_sensor_context(
        instance=instance,
        cursor=cursor,
        repository_def=DEFS.get_repository_def(),
        resources={"notifier": build_notifier(settings)},
    )
    result = build_step_watchdog(settings, [])(context)
    return result, result.cursor


def test_watchdog_alerts_while_running_then_ends_the_run_past_its_limit(
    mail_settings: Settings, disk_instance, inbox: tuple[Inbox, int]
) -> None:
    job = DEFS.resolve_job_def("watched")
    release.set()
    for _ in range(3):  # history: the step takes milliseconds
        assert job.execute_in_process(instance=disk_instance).success
    release.clear()
    worker = threading.Thread(
        target=lambda: job.execute_in_process(instance=disk_instance, raise_on_error=False)
    )
    worker.start()
    try:
        for _ in range(600):
            running = history.running_steps(disk_instance)
            if running:
                break
            time.sleep(0.05)
        [step] = running
        while time.time() - step.started <= 1.0:  # well past 2x the history's ~0.1 s
            time.sleep(0.05)
        result, cursor = tick(mail_settings, disk_instance, None)
        [slow] = inbox[0].wait_for(1, timeout_s=10)
        body = slow.get_content()
        assert (
            "[slow_step] watched[-] run" in body and "step waits_for_release: still running" in body
        )
        assert "its trailing median (threshold 2x)" in body and "previous 3 runs" in body
        again, cursor = tick(mail_settings, disk_instance, cursor)
        assert again.skip_reason is not None  # alerted once per running step

        strict = mail_settings.model_copy(
            update={"step_timeouts_s": {"raw": 0.0}, "preemption_grace_s": 1}
        )
        stopped, cursor = tick(strict, disk_instance, cursor)
        messages = inbox[0].wait_for(2, timeout_s=10)
    finally:
        release.set()
        worker.join(60)
    body = messages[1].get_content()
    assert (
        "[step_timeout] watched[-] run" in body
        and "step waits_for_release: timed out after" in body
    )
    assert "step time limit 0 s (settings)" in body
    assert json.loads(cursor)["stopped"] == [f"{step.run_id}:waits_for_release"]
    events = [e.message for e in disk_instance.all_logs(step.run_id)]
    assert any(m.startswith("step waits_for_release timed out after") for m in events), events
    canceling = disk_instance.all_logs(step.run_id, of_type=dg.DagsterEventType.RUN_CANCELING)
    assert len(canceling) == 1  # the termination request (this in-process run has no worker
    # process to signal; a run launched by the daemon is interrupted through its code server)
    print(f"\nwatchdog alerts:\n{messages[0].get_content()}\n{body}")
