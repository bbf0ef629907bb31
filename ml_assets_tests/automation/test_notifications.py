"""Email through a real SMTP conversation (aiosmtpd): failed runs, deployments, credentials."""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg
import pytest

from ml_assets.automation.notifications import deployment_message, failure_message
from ml_assets.automation.smtp_sink import Inbox, start_sink
from ml_assets.definitions import build_defs
from ml_assets.execution import DAILY_JOB
from ml_assets.partitions import daily
from ml_assets.resources.notify import build_notifier
from ml_assets.settings import Settings
from ml_assets_tests.automation.conftest import free_port

DAY = "2013-01-05"


def subject_of(message) -> str:
    """The subject as a reader sees it (a long header is folded in transit)."""
    return " ".join(str(message["Subject"]).split())


def run_sensor(defs: dg.Definitions, name: str, instance, result, event, settings: Settings):
    context = dg.build_run_status_sensor_context(
        sensor_name=name,
        dagster_event=event,
        dagster_instance=instance,
        dagster_run=result.dagster_run,
        resources={"notifier": build_notifier(settings)},
    )
    if name == "email_on_failure":
        context = context.for_run_failure()
    return defs.resolve_sensor_def(name)(context)


def test_failed_run_emails_asset_partition_error_and_link(
    mail_settings: Settings, instance, inbox: tuple[Inbox, int], landing: Path, landing_dir: Path
) -> None:
    """The day's files never landed: ingestion fails, and the email says where and why."""
    shutil.copytree(landing_dir / "reference", landing / "reference")
    defs = build_defs(mail_settings)
    result = defs.resolve_job_def(DAILY_JOB).execute_in_process(
        instance=instance, partition_key=DAY, raise_on_error=False
    )
    assert not result.success
    run_sensor(
        defs, "email_on_failure", instance, result, result.get_run_failure_event(), mail_settings
    )

    [message] = inbox[0].wait_for(1, timeout_s=10)
    body = message.get_content()
    assert message["To"] == "oncall@example.com"
    assert subject_of(message).startswith(f"[ml_assets] FAILED {DAILY_JOB}[{DAY}]: ")
    assert "raw_flights" in subject_of(message)
    assert f"Partition: {DAY}" in body
    assert f"  - raw_flights: raw_flights[{DAY}]" in body
    assert f"flights/{DAY}.csv does not exist" in body
    assert f"Run: http://dagster.example:3000/runs/{result.run_id}" in body


def fake_deployment_run(instance, decision: dict, board: str):
    """A run that records what ``model_leaderboard`` and ``deployed_model`` record (no training)."""

    @dg.asset(name="model_leaderboard", partitions_def=daily)
    def leaderboard() -> dg.MaterializeResult:
        return dg.MaterializeResult(metadata={"leaderboard": dg.MetadataValue.md(board)})

    @dg.asset(name="deployed_model", partitions_def=daily, deps=[leaderboard])
    def deployed() -> dg.MaterializeResult:
        return dg.MaterializeResult(metadata=decision)

    return dg.materialize([leaderboard, deployed], instance=instance, partition_key=DAY)


def test_deployment_success_emails_best_auc_and_champion_comparison(
    mail_settings: Settings, instance, inbox: tuple[Inbox, int]
) -> None:
    decision = {
        "promoted": True,
        "reason": (
            "goss AUC 0.7612 clears the gate 0.6000; AUC difference vs champion +0.0041 (p=0.210)"
        ),
        "candidate": "goss",
        "candidate_auc": 0.7612,
        "candidate_sha256": "ab" * 32,
        "champion": "goss",
        "champion_before": "gbdt",
        "auc_difference_vs_champion": 0.0041,
        "p_value_vs_champion": 0.21,
    }
    result = fake_deployment_run(
        instance, decision, "| model | auc |\n|---|---|\n| goss | 0.7612 |"
    )
    defs = build_defs(mail_settings)
    run_sensor(
        defs, "email_on_deployment", instance, result, result.get_run_success_event(), mail_settings
    )

    [message] = inbox[0].wait_for(1, timeout_s=10)
    body = message.get_content()
    assert subject_of(message) == f"[ml_assets] {DAY}: Best AUC 0.7612 (goss), promoted"
    assert "Best AUC: 0.7612 (model goss, sha256 abababababab)" in body
    assert "goss vs champion gbdt: AUC difference +0.0041 (p=0.210)" in body
    assert "| goss | 0.7612 |" in body and result.run_id in body


def test_runs_without_deployment_send_nothing(mail_settings: Settings, instance, inbox) -> None:
    @dg.asset(partitions_def=daily)
    def something() -> None:
        return None

    result = dg.materialize([something], instance=instance, partition_key=DAY)
    defs = build_defs(mail_settings)
    skipped = run_sensor(
        defs, "email_on_deployment", instance, result, result.get_run_success_event(), mail_settings
    )
    assert "did not materialize deployed_model" in skipped.skip_message
    assert inbox[0].messages == []


def test_credentials_come_from_the_smtp_password_env_var(
    auto_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    logins = []

    def authenticate(server, session, envelope, mechanism, auth_data):
        from aiosmtpd.smtp import AuthResult

        logins.append((auth_data.login, auth_data.password))
        return AuthResult(success=auth_data.password == b"s3cret")

    box, port = Inbox(), free_port()
    controller = start_sink(
        "127.0.0.1", port, box, authenticator=authenticate, auth_require_tls=False
    )
    monkeypatch.setenv("SMTP_PASSWORD", "s3cret")
    settings = auto_settings.model_copy(update={"smtp_port": port, "smtp_username": "pipeline"})
    try:
        with dg.build_resources({"notifier": build_notifier(settings)}) as resources:
            resources.notifier.send("hello", "body")
        assert subject_of(box.wait_for(1, timeout_s=10)[0]) == "hello"
    finally:
        controller.stop()
    assert logins == [(b"pipeline", b"s3cret")]


def test_unreachable_smtp_server_raises(auto_settings: Settings) -> None:
    """A lost alert is an error of the sensor tick, never silent."""
    notifier = build_notifier(auto_settings.model_copy(update={"smtp_port": free_port()}))
    with pytest.raises(OSError):
        notifier.send("subject", "body")


@pytest.mark.parametrize("promoted", [True, False])
def test_messages_name_what_happened(promoted: bool) -> None:
    subject, body = failure_message("daily_pipeline", None, "r1", "http://x/runs/r1", [], "boom")
    assert subject == "[ml_assets] FAILED daily_pipeline[-]: the run" and "Run error: boom" in body
    decision = {
        "candidate": "gbdt",
        "candidate_auc": 0.7,
        "promoted": promoted,
        "champion": "dart",
        "reason": "why",
        "champion_before": None,
    }
    subject, body = deployment_message("2013-02-01", "r2", "http://x/runs/r2", decision, None)
    assert ("promoted" if promoted else "kept champion dart") in subject
    assert "no champion before this run" in body and "Best AUC: 0.7000" in body


def test_tests_do_not_touch_the_project_landing(auto_settings: Settings, landing: Path) -> None:
    assert auto_settings.landing_base == str(landing)
