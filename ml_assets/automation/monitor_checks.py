"""Monitor checks (day volume, model quality) and per-partition freshness checks.

The monitor checks run inside the daily job after their asset and read figures the run just
recorded; they warn (never block). The freshness checks are evaluated by ``freshness_monitor``
and can also be run by hand from the UI.
"""

import datetime as dt
import time

import dagster as dg

from ml_assets import freshness_policy
from ml_assets.automation import freshness, history, monitors
from ml_assets.automation.landing_scan import complete_days, day_files
from ml_assets.checks.range_checks import join_results
from ml_assets.partitions import daily
from ml_assets.resources.landing_zone import LandingZone
from ml_assets.settings import Settings

VOLUME_ASSET = "raw_flights"
MONITOR_CHECKS = {"day_volume", "model_quality"}


def previous_day(day: str) -> str:
    return (dt.date.fromisoformat(day) - dt.timedelta(days=1)).isoformat()


def _row_count(instance: dg.DagsterInstance, asset: str, day: str) -> int | None:
    values = history.metadata_values(history.latest_materialization(instance, asset, day))
    rows = values.get("dagster/row_count")
    return None if rows is None else int(rows)


def build_monitor_checks(settings: Settings) -> list[dg.AssetChecksDefinition]:
    @dg.asset_check(
        asset=VOLUME_ASSET,
        name="day_volume",
        partitions_def=daily,
        description=(
            f"Rows of the day >= {settings.monitor_volume_ratio:.0%} of the previous day's."
        ),
    )
    def day_volume(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
        if context.has_partition_key:
            return one_day(context, context.partition_key)
        return join_results({day: one_day(context, day) for day in context.partition_keys}, context)

    def one_day(context: dg.AssetCheckExecutionContext, day: str) -> dg.AssetCheckResult:
        before = previous_day(day)
        rows = _row_count(context.instance, VOLUME_ASSET, day)
        previous = _row_count(context.instance, VOLUME_ASSET, before)
        if rows is None:
            raise dg.Failure(
                f"{VOLUME_ASSET}[{day}] has no recorded row count", allow_retries=False
            )
        alert = monitors.volume_drop(
            day, rows, before, previous, asset=VOLUME_ASSET, ratio=settings.monitor_volume_ratio
        )
        baseline = f"{previous} rows on {before}" if previous else f"no recorded rows on {before}"
        return dg.AssetCheckResult(
            passed=alert is None,
            severity=dg.AssetCheckSeverity.WARN,
            description=alert.text() if alert else f"{rows} rows; baseline {baseline}",
            metadata={
                "rows": rows,
                "previous_day_rows": previous or 0,
                "ratio": rows / previous if previous else 1.0,
                "threshold_ratio": settings.monitor_volume_ratio,
            },
        )

    @dg.asset_check(
        asset="deployed_model",
        name="model_quality",
        partitions_def=daily,
        description=f"Best AUC >= gate {settings.auc_gate} and no drop > "
        f"{settings.monitor_auc_drop} vs the champion on the same holdout.",
    )
    def model_quality(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
        if context.has_partition_key:
            return quality_of(context, context.partition_key)
        return join_results(
            {day: quality_of(context, day) for day in context.partition_keys}, context
        )

    def quality_of(context: dg.AssetCheckExecutionContext, day: str) -> dg.AssetCheckResult:
        facts = history.metadata_values(
            history.latest_materialization(context.instance, "deployed_model", day)
        )
        if "candidate_auc" not in facts:
            raise dg.Failure(
                f"deployed_model[{day}] recorded no candidate AUC", allow_retries=False
            )
        difference = facts.get("auc_difference_vs_champion")
        alerts = monitors.model_quality(
            day,
            str(facts["candidate"]),
            float(facts["candidate_auc"]),
            gate=settings.auc_gate,
            champion=facts.get("champion_before"),
            auc_difference=None if difference is None else float(difference),
            max_drop=settings.monitor_auc_drop,
        )
        summary = f"best model {facts['candidate']} AUC {float(facts['candidate_auc']):.4f}"
        return dg.AssetCheckResult(
            passed=not alerts,
            severity=dg.AssetCheckSeverity.WARN,
            description="\n".join(a.text() for a in alerts) or f"{summary}: within the limits",
            metadata={
                "auc": float(facts["candidate_auc"]),
                "auc_gate": settings.auc_gate,
                "auc_difference_vs_champion": difference,
                "max_drop": settings.monitor_auc_drop,
            },
        )

    return [day_volume, model_quality]


def landed_at(landing: LandingZone, day: str) -> float | None:
    """When ``day``'s files were complete in the landing zone (None: not complete)."""
    days = complete_days(day_files(landing.base_path, day))
    return days[0].landed_at if days else None


def evaluate_partition(
    instance: dg.DagsterInstance,
    asset: str,
    day: str,
    landed: float | None,
    now: float,
    settings: Settings,
) -> freshness.Verdict:
    record = history.latest_materialization(instance, asset, day)
    return freshness.partition_freshness(
        asset,
        day,
        landed,
        record.timestamp if record else None,
        now,
        settings.partition_deadline_hours,
    )


def freshness_result(verdict: freshness.Verdict) -> dict:
    """Keyword arguments shared by the check's result and the sensor's reported evaluation."""
    return {
        "passed": verdict.state != "overdue",
        "severity": dg.AssetCheckSeverity.WARN,
        "description": verdict.description,
        "metadata": {"state": verdict.state, "overdue_seconds": round(verdict.overdue_seconds, 1)},
    }


def build_freshness_checks(settings: Settings) -> list[dg.AssetChecksDefinition]:
    def build(asset: str) -> dg.AssetChecksDefinition:
        @dg.asset_check(
            asset=asset,
            name=freshness_policy.CHECK_NAME,
            partitions_def=daily,
            description=f"Materialized within {settings.partition_deadline_hours:g} h of the day's "
            "files landing (evaluated by the freshness_monitor sensor).",
        )
        def _check(
            context: dg.AssetCheckExecutionContext, landing: LandingZone
        ) -> dg.AssetCheckResult:
            def one_day(day: str) -> dg.AssetCheckResult:
                verdict = evaluate_partition(
                    context.instance, asset, day, landed_at(landing, day), time.time(), settings
                )
                return dg.AssetCheckResult(**freshness_result(verdict))

            if context.has_partition_key:
                return one_day(context.partition_key)
            return join_results({day: one_day(day) for day in context.partition_keys}, context)

        return _check

    return [build(asset) for asset in freshness_policy.FRESHNESS_ASSETS]
