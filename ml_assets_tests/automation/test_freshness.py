"""Freshness: the policy on deployed_model, per-partition checks,
and the sensor that evaluates them."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import dagster as dg
import pytest

from ml_assets.automation.freshness import partition_freshness, policy_state
from ml_assets.automation.sensors import build_freshness_sensor
from ml_assets.automation.smtp_sink import Inbox
from ml_assets.definitions import build_defs
from ml_assets.execution import DAILY_JOB, FEATURES_JOB
from ml_assets.freshness_policy import CHECK_NAME, FRESHNESS_ASSETS
from ml_assets.resources.landing_zone import LandingZone
from ml_assets.resources.notify import build_notifier
from ml_assets.settings import Settings
from ml_assets_tests.automation.conftest import age_files, copy_day

LANDED = dt.datetime(2013, 3, 15, 1, 0, tzinfo=dt.UTC).timestamp()
HOUR = 3600.0


@pytest.mark.parametrize(
    ("landed", "materialized", "now", "state", "text"),
    [
        (None, None, LANDED, "not_landed", "has not landed"),
        (
            LANDED,
            LANDED + 0.5 * HOUR,
            LANDED + 9 * HOUR,
            "fresh",
            "materialized 0.5 h after its files landed",
        ),
        (
            LANDED,
            None,
            LANDED + 1 * HOUR,
            "pending",
            "files landed 1.0 h ago; deadline 2 h (never materialized)",
        ),
        (
            LANDED,
            None,
            LANDED + 3.5 * HOUR,
            "overdue",
            "overdue by 1.5 h against the 2 h deadline (never materialized)",
        ),
        (
            LANDED,
            LANDED - 24 * HOUR,
            LANDED + 3 * HOUR,
            "overdue",
            "last materialized 2013-03-14 01:00:00 UTC",
        ),
    ],
)
def test_partition_freshness(landed, materialized, now, state, text) -> None:
    verdict = partition_freshness("training_set", "2013-03-14", landed, materialized, now, 2.0)
    assert verdict.state == state
    assert (
        verdict.description.startswith("training_set[2013-03-14]: ") and text in verdict.description
    )


def test_policy_states() -> None:
    assert policy_state(None, LANDED, 24, 26)[0] == "UNKNOWN"
    assert policy_state(LANDED, LANDED + 23 * HOUR, 24, 26)[0] == "PASS"
    assert policy_state(LANDED, LANDED + 25 * HOUR, 24, 26)[0] == "WARN"
    state, text = policy_state(LANDED, LANDED + 30 * HOUR, 24, 26)
    assert state == "FAIL" and "last materialized 30.0 h ago" in text and "stale by 4.0 h" in text


def test_deployed_model_has_the_policy_and_jobs_leave_freshness_to_the_sensor(
    auto_settings: Settings,
) -> None:
    defs = build_defs(auto_settings)
    [spec] = defs.resolve_assets_def("deployed_model").specs
    assert spec.freshness_policy == dg.FreshnessPolicy.time_window(
        fail_window=dt.timedelta(hours=26), warn_window=dt.timedelta(hours=24)
    )
    graph = defs.resolve_asset_graph()
    declared = {k for k in graph.asset_check_keys if k.name == CHECK_NAME}
    assert {k.asset_key.to_user_string() for k in declared} == set(FRESHNESS_ASSETS)
    for job in (DAILY_JOB, FEATURES_JOB):
        in_job = defs.resolve_job_def(job).asset_layer.asset_graph.asset_check_keys
        assert not {k for k in in_job if k.name == CHECK_NAME}
    assert any(
        k.name == "day_volume"
        for k in defs.resolve_job_def(DAILY_JOB).asset_layer.asset_graph.asset_check_keys
    )


def test_sensor_reports_overdue_partitions_once_and_their_recovery(
    mail_settings: Settings, instance, inbox: tuple[Inbox, int], landing: Path, landing_dir: Path
) -> None:
    for day in ("2013-01-02", "2013-01-03"):
        copy_day(landing_dir, landing, day)
        age_files(landing, day, 3 * HOUR)  # landed 3 h ago; the deadline is 2 h
    sensor = build_freshness_sensor(mail_settings)

    def tick(cursor):
        context = dg.build_sensor_context(
            instance=instance,
            cursor=cursor,
            resources={
                "landing": LandingZone(base_path=str(landing)),
                "notifier": build_notifier(mail_settings),
            },
        )
        return sensor(context)

    first = tick(None)
    assert len(first.asset_events) == 2 * len(FRESHNESS_ASSETS)
    assert all(not e.passed and e.check_name == CHECK_NAME for e in first.asset_events)
    assert {e.partition for e in first.asset_events} == {"2013-01-02", "2013-01-03"}
    [alert] = inbox[0].wait_for(1, timeout_s=10)
    body = alert.get_content()
    assert (
        "[partition_freshness] deployed_model[2013-01-03]: "
        "not materialized 3.0 h after its files landed" in body
    )
    assert "overdue by 1.0 h against the 2 h deadline" in body

    assert tick(first.cursor).asset_events == []  # unchanged: nothing reported, no second email

    for asset in FRESHNESS_ASSETS:  # the pipeline catches up on 2013-01-03
        instance.report_runless_asset_event(dg.AssetMaterialization(asset, partition="2013-01-03"))
    recovered = tick(first.cursor)
    assert {(e.partition, e.passed) for e in recovered.asset_events} == {("2013-01-03", True)}
    assert json.loads(recovered.cursor)["policy"] == "PASS"
    assert len(inbox[0].wait_for(2, timeout_s=1)) == 1


def test_stale_deployed_model_raises_an_alert(
    mail_settings: Settings, instance, inbox: tuple[Inbox, int], landing: Path
) -> None:
    instance.report_runless_asset_event(
        dg.AssetMaterialization("deployed_model", partition="2013-01-03")
    )
    settings = mail_settings.model_copy(
        update={"freshness_warn_hours": 0.0, "freshness_fail_hours": 0.0}
    )
    context = dg.build_sensor_context(
        instance=instance,
        resources={
            "landing": LandingZone(base_path=str(landing)),
            "notifier": build_notifier(settings),
        },
    )
    result = build_freshness_sensor(settings)(context)
    assert json.loads(result.cursor)["policy"] == "FAIL"
    [alert] = inbox[0].wait_for(1, timeout_s=10)
    assert "[freshness_policy] FAIL: deployed_model last materialized" in alert.get_content()


def test_the_check_can_run_by_hand_for_one_partition(
    auto_settings: Settings, instance, landing: Path, landing_dir: Path
) -> None:
    copy_day(landing_dir, landing, "2013-01-02")
    age_files(landing, "2013-01-02", 3 * HOUR)
    defs = build_defs(auto_settings)
    key = dg.AssetCheckKey(dg.AssetKey("raw_flights"), CHECK_NAME)
    job = defs.resolve_implicit_global_asset_job_def().get_subset(
        asset_selection=set(), asset_check_selection={key}
    )
    result = job.execute_in_process(instance=instance, partition_key="2013-01-02")
    [evaluation] = result.get_asset_check_evaluations()
    assert (
        not evaluation.passed
        and "raw_flights[2013-01-02]: not materialized" in evaluation.description
    )
