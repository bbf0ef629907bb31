"""Monitors: thresholds on recorded history raise alerts that say what, where, how much, vs what."""

import json
import time

import dagster as dg
import pytest

from ml_assets.automation import monitors
from ml_assets.automation.monitor_checks import build_monitor_checks
from ml_assets.automation.sensors import build_monitor_sensor
from ml_assets.automation.smtp_sink import Inbox
from ml_assets.partitions import daily
from ml_assets.resources.notify import build_notifier
from ml_assets.settings import Settings


def test_slow_step_is_judged_against_its_trailing_median() -> None:
    history = [
        {"train": 1.0, "load": 2.0},
        {"train": 1.2, "load": 2.1},
        {"train": 0.9, "load": 1.9},
    ]
    [alert] = monitors.slow_steps(
        {"train": 2.5, "load": 2.1},
        history,
        where="daily_pipeline[2013-03-14] run abc",
        factor=2.0,
        min_history=3,
        min_seconds=0.5,
        link="http://ui/runs/abc",
    )
    assert alert.monitor == "step_duration"
    assert alert.text() == (
        "[step_duration] daily_pipeline[2013-03-14] run abc step train: took 2.5 s, 2.5x its "
        "trailing median (threshold 2x), +1.5 s; baseline: median 1.0 s over the previous 3 runs"
        "\n    http://ui/runs/abc"
    )


@pytest.mark.parametrize(
    ("current", "history", "min_seconds"),
    [
        ({"train": 2.5}, [{"train": 1.0}] * 2, 0.5),  # too little history to judge
        ({"train": 0.3}, [{"train": 0.1}] * 5, 0.5),  # 3x, but under the floor
        ({"train": 1.9}, [{"train": 1.0}] * 5, 0.5),  # under 2x
        ({"new_step": 9.0}, [{"train": 1.0}] * 5, 0.5),  # no baseline for this step
    ],
)
def test_no_slow_step_alert(current, history, min_seconds) -> None:
    kwargs = {"where": "j", "factor": 2.0, "min_history": 3, "min_seconds": min_seconds}
    assert monitors.slow_steps(current, history, **kwargs) == []


def test_failure_rate_alerts_only_above_five_percent() -> None:
    rate, alert = monitors.failure_rate(
        [True] * 19 + [False], where="job daily_pipeline", threshold=0.05, min_runs=4
    )
    assert rate == 0.05 and alert is None
    rate, alert = monitors.failure_rate(
        [False] + [True] * 18 + [False], where="job daily_pipeline", threshold=0.05, min_runs=4
    )
    assert rate == pytest.approx(0.10)
    assert alert.text() == (
        "[failure_rate] job daily_pipeline: 2 of the last 20 runs failed (10%), 5.0 points above "
        "the 5% threshold; baseline: trailing window of 20 finished runs"
    )


def test_day_volume_drop_below_half_of_the_previous_day() -> None:
    assert (
        monitors.volume_drop("2013-03-14", 500, "2013-03-13", 900, asset="raw_flights", ratio=0.5)
        is None
    )
    alert = monitors.volume_drop(
        "2013-03-14", 400, "2013-03-13", 900, asset="raw_flights", ratio=0.5
    )
    assert alert.text() == (
        "[day_volume] raw_flights[2013-03-14]: 400 rows, 44% of the previous day (-500 rows; "
        "threshold 50%); baseline: raw_flights[2013-03-13] with 900 rows"
    )
    assert (
        monitors.volume_drop("2013-01-01", 400, "2012-12-31", None, asset="raw_flights", ratio=0.5)
        is None
    )


def test_model_quality_below_gate_and_dropped_from_champion() -> None:
    alerts = monitors.model_quality(
        "2013-03-14",
        "goss",
        0.7100,
        gate=0.75,
        champion="gbdt",
        auc_difference=-0.031,
        max_drop=0.02,
    )
    assert [a.text() for a in alerts] == [
        "[model_auc] best model goss on deployed_model[2013-03-14]: holdout AUC 0.7100, 0.0400 "
        "below the gate; baseline: absolute AUC gate 0.7500",
        "[model_auc] best model goss on deployed_model[2013-03-14]: AUC 0.7100, -0.0310 vs the "
        "champion, a drop of 0.0310, more than the 0.0200 margin; baseline: champion gbdt at AUC "
        "0.7410 on the same holdout",
    ]
    within_margin = monitors.model_quality(
        "d", "goss", 0.76, gate=0.75, champion="gbdt", auc_difference=-0.01, max_drop=0.02
    )
    assert within_margin == []


@dg.op(config_schema={"sleep": float, "fail": bool})
def work(context: dg.OpExecutionContext) -> None:
    time.sleep(context.op_config["sleep"])
    if context.op_config["fail"]:
        raise RuntimeError("upstream system unavailable")


@dg.job
def tiny() -> None:
    work()


def launch(instance, sleep: float = 0.0, fail: bool = False) -> None:
    config = {"ops": {"work": {"config": {"sleep": sleep, "fail": fail}}}}
    tiny.execute_in_process(run_config=config, instance=instance, raise_on_error=False)


def test_monitor_sensor_alerts_on_recorded_history(
    mail_settings: Settings, instance, inbox: tuple[Inbox, int]
) -> None:
    sensor = build_monitor_sensor(mail_settings)

    def tick(cursor):
        context = dg.build_sensor_context(
            instance=instance, cursor=cursor, resources={"notifier": build_notifier(mail_settings)}
        )
        result = sensor(context)
        return result, (result.cursor if isinstance(result, dg.SensorResult) else context.cursor)

    for _ in range(3):
        launch(instance)
    first, cursor = tick(None)  # starts after the history it found: never alerts on the past
    assert isinstance(first, dg.SkipReason)

    launch(instance, sleep=1.0)  # 1 s against a median of a few milliseconds
    _, cursor = tick(cursor)
    [slow] = inbox[0].wait_for(1, timeout_s=10)
    assert "[step_duration] tiny[-] run" in slow.get_content()
    assert "step work: took 1.0 s" in slow.get_content()
    assert "median 0.0 s over the previous 3 runs" in slow.get_content()

    launch(instance, fail=True)  # 1 failure in 5 runs: 20% > 5%
    _, cursor = tick(cursor)
    messages = inbox[0].wait_for(2, timeout_s=10)
    assert "[failure_rate] job tiny: 1 of the last 5 runs failed (20%)" in messages[1].get_content()
    assert json.loads(cursor)["breaches"] == {"tiny": 0.2}

    launch(instance)  # still above 5%: no second alert for the same breach
    result, cursor = tick(cursor)
    again, _ = tick(cursor)
    assert again.skip_reason is not None
    time.sleep(0.5)
    assert len(inbox[0].messages) == 2


def test_day_volume_check_warns_and_reaches_the_monitor(
    mail_settings: Settings, instance, inbox
) -> None:
    """A day with 40 % of the previous day's rows: its check warns and the monitor emails it."""
    rows = {"2013-01-02": 943, "2013-01-03": 377}

    @dg.asset(name="raw_flights", partitions_def=daily)
    def raw_flights(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        # The row count the lake IO manager records for every frame.
        return dg.MaterializeResult(metadata={"dagster/row_count": rows[context.partition_key]})

    volume = next(
        c for c in build_monitor_checks(mail_settings) if "day_volume" in str(c.check_keys)
    )
    resources = {"notifier": build_notifier(mail_settings)}
    sensor = build_monitor_sensor(mail_settings)
    context = dg.build_sensor_context(instance=instance, resources=resources)
    sensor(context)
    for day in rows:
        result = dg.materialize([raw_flights, volume], instance=instance, partition_key=day)
        assert result.success  # a warning, not a failure
    [evaluation] = result.get_asset_check_evaluations()
    assert not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.WARN
    assert evaluation.metadata["ratio"].value == pytest.approx(0.4, abs=0.001)

    sensor(dg.build_sensor_context(instance=instance, cursor=context.cursor, resources=resources))
    [message] = inbox[0].wait_for(1, timeout_s=10)
    assert (
        "[day_volume] raw_flights[2013-01-03]: 377 rows, 40% of the previous day (-566 rows; "
        "threshold 50%); baseline: raw_flights[2013-01-02] with 943 rows" in message.get_content()
    )


def test_model_quality_check_reads_the_deployment_decision(
    mail_settings: Settings, instance
) -> None:
    """The check runs after deployed_model in the same run and judges what it recorded."""

    @dg.asset(name="deployed_model", partitions_def=daily)
    def decision() -> dg.MaterializeResult:  # records what the real gate records
        return dg.MaterializeResult(
            metadata={
                "candidate": "goss",
                "candidate_auc": 0.59,
                "champion_before": "gbdt",
                "auc_difference_vs_champion": -0.05,
            }
        )

    quality = next(
        c for c in build_monitor_checks(mail_settings) if "model_quality" in str(c.check_keys)
    )
    result = dg.materialize([decision, quality], instance=instance, partition_key="2013-01-16")
    [evaluation] = result.get_asset_check_evaluations()
    assert not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.WARN
    assert "holdout AUC 0.5900, 0.0100 below the gate" in evaluation.description
    assert "a drop of 0.0500, more than the 0.0200 margin" in evaluation.description
    assert "champion gbdt at AUC 0.6400 on the same holdout" in evaluation.description
