"""Sensors: landed days -> partition runs; finished runs -> monitor alerts; freshness -> alerts.

Each keeps its state in its cursor (JSON) and does its judging in pure functions.
"""

import json
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import dagster as dg

from ml_assets import freshness_policy
from ml_assets.automation import freshness, history, monitor_checks, monitors
from ml_assets.automation.landing_scan import (
    LandedDay,
    complete_days,
    scan_daily_files,
    scan_strays,
    stray_message,
)
from ml_assets.automation.notifications import PREFIX, run_link
from ml_assets.execution import DAILY_JOB
from ml_assets.partitions import daily
from ml_assets.resources.landing_zone import LandingZone
from ml_assets.resources.notify import Notifier
from ml_assets.settings import Settings

RAW_ASSETS = ("raw_flights", "raw_weather")
TRIGGER_TAG = "ml_assets/trigger"
VERSION_TAG = "ml_assets/landing_version"
# dagster.yaml limits runs carrying this tag to one at a time, so landed days run in day order
# (a day's features read the previous days' raw data).
SEQUENCE_TAG = "ml_assets/sequence"


def run_tags(trigger: str, landed: LandedDay) -> dict[str, str]:
    return {TRIGGER_TAG: trigger, VERSION_TAG: landed.version, SEQUENCE_TAG: "daily"}


def run_key(landed: LandedDay) -> str:
    """One key per version of a day's files: a re-scan never duplicates, a re-landing re-runs."""
    return f"{landed.day}:{landed.version}"


@dataclass(frozen=True)
class LandingPlan:
    changed: list[LandedDay]
    outside: list[LandedDay]


def plan_landing(
    days: Sequence[LandedDay], seen: Mapping[str, str], valid: set[str]
) -> LandingPlan:
    """Complete days whose file version the cursor has not seen (in day order, late days too)."""
    changed = [d for d in days if d.day in valid and seen.get(d.day) != d.version]
    outside = [d for d in days if d.day not in valid and seen.get(d.day) != d.version]
    return LandingPlan(changed, outside)


def ingested_since_landing(instance: dg.DagsterInstance, landed: LandedDay) -> bool:
    """The day's raw assets were all materialized after its files landed
    (e.g. by ``ml-assets demo``)."""
    for asset in RAW_ASSETS:
        record = history.latest_materialization(instance, asset, landed.day)
        if record is None or record.timestamp < landed.landed_at:
            return False
    return True


def reject_strays(
    context: dg.SensorEvaluationContext, landing: LandingZone, notifier: Notifier
) -> list[str]:
    """Alert on and move aside each file that is no landing file; return what was moved.

    The alert goes first: a file whose alert could not be sent stays and is retried next tick,
    so every stray is reported once and none silently.
    """
    moved = []
    for stray in scan_strays(landing.base_path):
        try:
            target, size = landing.stray_target(stray.folder, stray.name)
            notifier.send(*stray_message(stray, landing.base_path, target, size))
        except FileNotFoundError:
            continue  # gone since the listing (renamed by its writer)
        except Exception as exc:
            context.log.error(
                f"stray landing file {stray.relative!r} ({stray.reason}): alert failed, "
                f"retrying next tick: {type(exc).__name__}: {exc}"
            )
            continue
        landing.reject_stray(stray.folder, stray.name, target, stray.reason, stray.detail)
        context.log.warning(
            f"rejected landing file {stray.relative!r} ({stray.reason}: {stray.detail}) -> {target}"
        )
        moved.append(target)
    return moved


def build_landing_sensor(settings: Settings) -> dg.SensorDefinition:
    valid = set(daily.get_partition_keys())

    @dg.sensor(
        name="landing_sensor",
        job_name=DAILY_JOB,
        default_status=dg.DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=settings.landing_sensor_interval_s,
        description="Requests daily_pipeline for each day whose files are all landed (new or "
        "re-landed); moves any other file to rejected/ and alerts once per file.",
    )
    def landing_sensor(
        context: dg.SensorEvaluationContext, landing: LandingZone, notifier: Notifier
    ) -> dg.SensorResult:
        rejected = reject_strays(context, landing, notifier)
        seen: dict[str, str] = json.loads(context.cursor) if context.cursor else {}
        plan = plan_landing(complete_days(scan_daily_files(landing.base_path)), seen, valid)
        requests = []
        for landed in plan.changed:
            seen[landed.day] = landed.version
            if ingested_since_landing(context.instance, landed):
                context.log.info(f"{landed.day}: already ingested after its files landed; no run")
                continue
            requests.append(
                dg.RunRequest(
                    run_key=run_key(landed),
                    partition_key=landed.day,
                    tags=run_tags("landing", landed),
                )
            )
        for landed in plan.outside:
            seen[landed.day] = landed.version
            context.log.warning(f"{landed.day} is landed but outside the partitions; ignored")
        skip = None if requests else "no new or re-landed complete day"
        if skip and rejected:
            skip += f"; {len(rejected)} stray file(s) moved to rejected/"
        return dg.SensorResult(
            run_requests=requests, cursor=json.dumps(seen, sort_keys=True), skip_reason=skip
        )

    return landing_sensor


def run_alerts(
    instance: dg.DagsterInstance,
    run: history.RunFacts,
    settings: Settings,
    breaches: dict[str, float],
) -> list[monitors.Alert]:
    """Every monitor's alerts for one finished run;
    ``breaches`` keeps failure-rate state per job."""
    where = f"{run.job}[{run.partition or '-'}] run {run.run_id[:8]}"
    link = run_link(settings, run.run_id)
    earlier = history.recent_finished(
        instance, run.job, settings.monitor_window_runs, before=run.updated
    )
    alerts = monitors.slow_steps(
        history.step_durations(instance, run.run_id),
        [history.step_durations(instance, r.run_id) for r in earlier],
        where=where,
        factor=settings.monitor_step_duration_factor,
        min_history=settings.monitor_min_history,
        min_seconds=settings.monitor_step_min_seconds,
        link=link,
    )
    window = [run.success] + [r.success for r in earlier[: settings.monitor_window_runs - 1]]
    rate, breach = monitors.failure_rate(
        window,
        where=f"job {run.job}",
        threshold=settings.monitor_failure_rate,
        min_runs=settings.monitor_min_history + 1,
    )
    if breach is not None and run.job not in breaches:
        alerts.append(breach)
    if breach is None:
        breaches.pop(run.job, None)
    else:
        breaches[run.job] = rate
    for evaluation in history.failed_checks(instance, run.run_id, monitor_checks.MONITOR_CHECKS):
        asset = evaluation.asset_key.to_user_string()
        alerts.append(
            monitors.Alert(
                monitor=evaluation.check_name,
                where=f"{asset}[{evaluation.partition or run.partition}]",
                observed=evaluation.description or "check failed",
                excess="see above",
                baseline=f"check {evaluation.check_name} in {where}",
                link=link,
            )
        )
    return alerts


def alert_message(alerts: Iterable[monitors.Alert]) -> tuple[str, str]:
    alerts = list(alerts)
    kinds = sorted({a.monitor for a in alerts})
    subject = f"{PREFIX} {len(alerts)} alert{'s' * (len(alerts) > 1)}: {', '.join(kinds)}"
    return subject, "\n\n".join(a.text() for a in alerts)


def build_monitor_sensor(settings: Settings) -> dg.SensorDefinition:
    @dg.sensor(
        name="pipeline_monitor",
        default_status=dg.DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=30,
        description=(
            "After each finished run: slow steps, failure rate, failed monitor checks -> email."
        ),
    )
    def pipeline_monitor(
        context: dg.SensorEvaluationContext, notifier: Notifier
    ) -> dg.SensorResult | dg.SkipReason:
        if not context.cursor:
            start = history.latest_finish(context.instance)
            context.update_cursor(json.dumps({"after": start, "breaches": {}, "seen": []}))
            return dg.SkipReason(f"first tick: judging runs that finish after {start:.0f}")
        state = json.loads(context.cursor)
        seen = set(state["seen"])
        runs = [
            r
            for r in history.finished_since(context.instance, state["after"])
            if r.run_id not in seen
        ]
        alerts: list[monitors.Alert] = []
        for run in runs:
            alerts += run_alerts(context.instance, run, settings, state["breaches"])
        if runs:
            state["after"] = max(state["after"], runs[-1].updated)
            state["seen"] = (state["seen"] + [r.run_id for r in runs])[-200:]
        if alerts:
            notifier.send(*alert_message(alerts))
        if runs and settings.pushgateway_url:
            from ml_assets.automation.metrics import push

            push(context.instance, settings)
        skip = None if runs else "no newly finished run"
        return dg.SensorResult(cursor=json.dumps(state), skip_reason=skip)

    return pipeline_monitor


def build_freshness_sensor(settings: Settings) -> dg.SensorDefinition:
    @dg.sensor(
        name="freshness_monitor",
        default_status=dg.DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=300,
        description="Evaluates deployed_model's FreshnessPolicy and the partition_freshness "
        "checks; emails when something goes stale.",
    )
    def freshness_monitor(
        context: dg.SensorEvaluationContext, landing: LandingZone, notifier: Notifier
    ) -> dg.SensorResult:
        now = time.time()
        state = json.loads(context.cursor) if context.cursor else {"policy": None, "partitions": {}}
        evaluations, alerts = [], []
        days = complete_days(scan_daily_files(landing.base_path))[
            -settings.freshness_lookback_days :
        ]
        judged: dict[str, str] = {}
        for landed in days:
            for asset in freshness_policy.FRESHNESS_ASSETS:
                verdict = monitor_checks.evaluate_partition(
                    context.instance, asset, landed.day, landed.landed_at, now, settings
                )
                key = f"{asset}/{landed.day}"
                if verdict.state not in ("fresh", "overdue"):
                    continue
                judged[key] = verdict.state
                if state["partitions"].get(key) == verdict.state:
                    continue
                evaluations.append(
                    dg.AssetCheckEvaluation(
                        asset_key=dg.AssetKey(asset),
                        check_name=freshness_policy.CHECK_NAME,
                        partition=landed.day,
                        **monitor_checks.freshness_result(verdict),
                    )
                )
                if verdict.state == "overdue":
                    alerts.append(f"[partition_freshness] {verdict.description}")
        last = history.latest_materialization(context.instance, "deployed_model")
        policy, text = freshness.policy_state(
            last.timestamp if last else None,
            now,
            settings.freshness_warn_hours,
            settings.freshness_fail_hours,
        )
        if policy in ("WARN", "FAIL") and policy != state["policy"]:
            alerts.append(f"[freshness_policy] {policy}: {text}")
        if alerts:
            notifier.send(f"{PREFIX} stale: {len(alerts)} freshness alert(s)", "\n\n".join(alerts))
        cursor = {"policy": policy, "partitions": judged}
        return dg.SensorResult(asset_events=evaluations, cursor=json.dumps(cursor, sort_keys=True))

    return freshness_monitor
