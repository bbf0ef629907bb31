"""``step_watchdog``: judges the steps still running, not only finished runs.

A step past 2x its trailing median or past the hard warning (default 2 h) is emailed once while it
runs; a step past its time limit plus the grace period (model steps stop themselves at the limit)
gets an engine event in its run, an email, and its run terminated.
"""

import json
import time

import dagster as dg

from ml_assets.automation import history, monitors
from ml_assets.automation.notifications import run_link
from ml_assets.models.catalog import CatalogEntry
from ml_assets.resources.notify import Notifier
from ml_assets.settings import Settings
from ml_assets.timeouts import group_timeout_s, step_timeouts

KEEP = 500  # step keys remembered in the cursor


def build_step_watchdog(settings: Settings, catalog: list[CatalogEntry]) -> dg.SensorDefinition:
    @dg.sensor(
        name="step_watchdog",
        default_status=dg.DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=settings.watchdog_interval_s,
        description="Running steps: email slow ones (2x median, hard warning); end runs whose "
        "step passed its time limit.",
    )
    def step_watchdog(context: dg.SensorEvaluationContext, notifier: Notifier) -> dg.SensorResult:
        from ml_assets.automation.sensors import alert_message

        state = json.loads(context.cursor) if context.cursor else {"alerted": [], "stopped": []}
        assets = (
            context.repository_def.assets_defs_by_key.values() if context.repository_def else []
        )
        limits = step_timeouts(settings, set(assets), catalog)
        now, medians, alerts = time.time(), {}, []
        running = history.running_steps(context.instance)
        for step in running:
            key, elapsed = f"{step.run_id}:{step.step_key}", now - step.started
            where = (
                f"{step.job}[{step.partition or '-'}] run {step.run_id[:8]} step {step.step_key}"
            )
            link = run_link(settings, step.run_id)
            limit = limits.get(step.step_key, group_timeout_s(settings, None))
            if elapsed > limit + settings.preemption_grace_s and key not in state["stopped"]:
                alert = monitors.step_timeout(elapsed, limit, where=where, link=link)
                run = context.instance.get_run_by_id(step.run_id)
                if run is not None:
                    context.instance.report_engine_event(
                        f"step {step.step_key} timed out after {elapsed:.0f} s "
                        f"(limit {limit:g} s): terminating the run",
                        run,
                    )
                    context.instance.run_coordinator.cancel_run(step.run_id)
                state["stopped"].append(key)
                alerts.append(alert)
            elif key not in state["alerted"] and key not in state["stopped"]:
                if step.job not in medians:
                    earlier = history.recent_finished(
                        context.instance, step.job, settings.monitor_window_runs
                    )
                    medians[step.job] = [
                        history.step_durations(context.instance, r.run_id) for r in earlier
                    ]
                alert = monitors.running_step(
                    elapsed,
                    [d[step.step_key] for d in medians[step.job] if step.step_key in d],
                    where=where,
                    factor=settings.monitor_step_duration_factor,
                    min_history=settings.monitor_min_history,
                    warning_s=settings.slow_step_warning_s,
                    min_seconds=settings.monitor_step_min_seconds,
                    link=link,
                )
                if alert is not None:
                    state["alerted"].append(key)
                    alerts.append(alert)
        if alerts:
            notifier.send(*alert_message(alerts))
        state = {k: v[-KEEP:] for k, v in state.items()}
        skip = None if alerts else f"{len(running)} running steps, none slow or past its limit"
        return dg.SensorResult(cursor=json.dumps(state), skip_reason=skip)

    return step_watchdog
