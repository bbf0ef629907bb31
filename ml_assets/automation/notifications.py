"""Run status sensors that send email: any failed run, and each deployment decision."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import dagster as dg

from ml_assets.automation import history
from ml_assets.resources.notify import Notifier
from ml_assets.settings import Settings

PREFIX = "[ml_assets]"


def run_link(settings: Settings, run_id: str) -> str:
    return f"{settings.webserver_url.rstrip('/')}/runs/{run_id}"


@dataclass(frozen=True)
class StepError:
    step: str
    error: str


def error_summary(data: Any) -> str:
    """A step failure in a few lines: the ``Failure`` description, or the error and its cause."""
    if getattr(data, "user_failure_data", None) is not None and data.user_failure_data.description:
        return "\n      ".join(data.user_failure_data.description.strip().splitlines())
    error = getattr(data, "error", None)
    lines = []
    while error is not None and len(lines) < 3:
        first = error.message.strip().splitlines()
        lines.append(first[0] if first else (error.cls_name or "error"))
        error = error.cause
    return "\n      caused by: ".join(lines) or "unknown error"


def failure_message(
    job: str,
    partition: str | None,
    run_id: str,
    link: str,
    steps: Sequence[StepError],
    run_error: str,
) -> tuple[str, str]:
    """Subject and body of the failure email: which assets, which partition, what error, where."""
    failed = ", ".join(s.step for s in steps) or "the run"
    subject = f"{PREFIX} FAILED {job}[{partition or '-'}]: {failed}"
    lines = [
        f"Run {run_id} of job {job} failed.",
        f"Partition: {partition or '(unpartitioned)'}",
        "",
        "Failed assets (steps):" if steps else "No step failed; the run itself did:",
    ]
    lines += [f"  - {s.step}: {s.error}" for s in steps]
    lines += ["", f"Run error: {run_error}", f"Run: {link}"]
    return subject, "\n".join(lines)


def deployment_message(
    partition: str, run_id: str, link: str, decision: Mapping[str, Any], leaderboard: str | None
) -> tuple[str, str]:
    """Subject and body of the success email: the seed's "Best AUC" line
    plus the gate's decision."""
    auc = float(decision["candidate_auc"])
    model = decision["candidate"]
    promoted = bool(decision["promoted"])
    outcome = "promoted" if promoted else f"kept champion {decision.get('champion')}"
    difference = decision.get("auc_difference_vs_champion")
    before = decision.get("champion_before")
    if before and difference is not None:
        versus = (
            f"{model} vs champion {before}: AUC difference {float(difference):+.4f} "
            f"(p={float(decision.get('p_value_vs_champion') or 0):.3f}) on the same holdout"
        )
    elif before:
        versus = f"champion {before} was not compared on this holdout"
    else:
        versus = "no champion before this run"
    subject = f"{PREFIX} {partition}: Best AUC {auc:.4f} ({model}), {outcome}"
    candidate_sha256 = str(decision.get("candidate_sha256", ""))[:12]
    lines = [
        f"Pipeline succeeded for {partition} (run {run_id}).",
        f"Best AUC: {auc:.4f} (model {model}, sha256 {candidate_sha256})",
        f"Decision: {'promoted' if promoted else 'not promoted'}: {decision.get('reason')}",
        f"Champion comparison: {versus}",
        f"Champion now: {decision.get('champion')}",
        f"Run: {link}",
    ]
    if leaderboard:
        lines += ["", "Leaderboard:", leaderboard]
    return subject, "\n".join(lines)


def last_engine_event(instance: dg.DagsterInstance, run_id: str) -> str | None:
    """The last engine event before the run failed (e.g. why its worker process died)."""
    found = None
    for entry in instance.all_logs(run_id):
        event = entry.dagster_event
        if event is not None and event.event_type == dg.DagsterEventType.RUN_FAILURE:
            break
        if event is not None and event.event_type == dg.DagsterEventType.ENGINE_EVENT:
            found = entry.message
    return found


def build_notification_sensors(settings: Settings) -> list[dg.SensorDefinition]:
    @dg.run_failure_sensor(
        name="email_on_failure",
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Email every failed run of this code location: assets, partition, error, link.",
    )
    def email_on_failure(context: dg.RunFailureSensorContext, notifier: Notifier) -> None:
        run = context.dagster_run
        steps = [
            StepError(e.step_key or "?", error_summary(e.event_specific_data))
            for e in context.get_step_failure_events()
        ]
        run_error = context.failure_event.message or ""
        if not steps:  # the worker died or the run failed outside a step: say what was seen
            seen = last_engine_event(context.instance, run.run_id)
            run_error += f"\n  last engine event: {seen}" if seen else ""
        subject, body = failure_message(
            run.job_name,
            run.tags.get("dagster/partition"),
            run.run_id,
            run_link(settings, run.run_id),
            steps,
            run_error,
        )
        notifier.send(subject, body)

    @dg.run_status_sensor(
        run_status=dg.DagsterRunStatus.SUCCESS,
        name="email_on_deployment",
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Email the Best AUC and the gate's decision after each run that deploys.",
    )
    def email_on_deployment(
        context: dg.RunStatusSensorContext, notifier: Notifier
    ) -> dg.SkipReason | None:
        run = context.dagster_run
        record = history.run_materialization(context.instance, run.run_id, "deployed_model")
        if record is None:
            return dg.SkipReason(f"run {run.run_id} did not materialize deployed_model")
        decision = history.metadata_values(record)
        board = history.metadata_values(
            history.run_materialization(context.instance, run.run_id, "model_leaderboard")
        )
        subject, body = deployment_message(
            record.partition_key or "-",
            run.run_id,
            run_link(settings, run.run_id),
            decision,
            board.get("leaderboard"),
        )
        notifier.send(subject, body)
        return None

    return [email_on_failure, email_on_deployment]
