"""Facts read back from the Dagster instance: finished runs, step durations, recorded metadata.

Thin readers only; the judging happens in ``monitors.py`` on the plain values returned here.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import dagster as dg

FINISHED = [dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE]


@dataclass(frozen=True)
class RunFacts:
    run_id: str
    job: str
    partition: str | None
    success: bool
    start_time: float | None
    end_time: float | None
    updated: float


def _facts(record: dg.RunRecord) -> RunFacts:
    run = record.dagster_run
    return RunFacts(
        run_id=run.run_id,
        job=run.job_name,
        partition=run.tags.get("dagster/partition"),
        success=run.status == dg.DagsterRunStatus.SUCCESS,
        start_time=record.start_time,
        end_time=record.end_time,
        updated=record.update_timestamp.timestamp(),
    )


def finished_since(instance: dg.DagsterInstance, after: float, limit: int = 50) -> list[RunFacts]:
    """Runs that finished (success or failure) after ``after`` (epoch seconds), oldest first."""
    filters = dg.RunsFilter(
        statuses=FINISHED, updated_after=dt.datetime.fromtimestamp(after, tz=dt.UTC)
    )
    records = instance.get_run_records(
        filters=filters, limit=limit, order_by="update_timestamp", ascending=True
    )
    return [_facts(r) for r in records]


def latest_finish(instance: dg.DagsterInstance) -> float:
    """Update time of the most recently finished run (0 when none has finished)."""
    records = instance.get_run_records(
        filters=dg.RunsFilter(statuses=FINISHED), limit=1, order_by="update_timestamp"
    )
    return records[0].update_timestamp.timestamp() if records else 0.0


def recent_finished(
    instance: dg.DagsterInstance, job: str, limit: int, before: float | None = None
) -> list[RunFacts]:
    """The job's last ``limit`` finished runs (updated before ``before`` if given), newest first."""
    filters = dg.RunsFilter(
        job_name=job,
        statuses=FINISHED,
        updated_before=dt.datetime.fromtimestamp(before, tz=dt.UTC) if before else None,
    )
    records = instance.get_run_records(filters=filters, limit=limit, order_by="update_timestamp")
    return [_facts(r) for r in records]


@dataclass(frozen=True)
class RunningStep:
    run_id: str
    job: str
    partition: str | None
    step_key: str
    started: float


def running_steps(instance: dg.DagsterInstance, limit: int = 100) -> list[RunningStep]:
    """Steps started and not finished in the runs now in progress."""
    records = instance.get_run_records(
        filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED]), limit=limit
    )
    steps = []
    for record in records:
        run = record.dagster_run
        for stats in instance.get_run_step_stats(run.run_id):
            if (
                stats.status is not None
                and stats.status.value == "IN_PROGRESS"
                and stats.start_time
            ):
                steps.append(
                    RunningStep(
                        run.run_id,
                        run.job_name,
                        run.tags.get("dagster/partition"),
                        stats.step_key,
                        stats.start_time,
                    )
                )
    return steps


def step_durations(instance: dg.DagsterInstance, run_id: str) -> dict[str, float]:
    """Seconds each successful step of a run took (retries included)."""
    return {
        s.step_key: s.end_time - s.start_time
        for s in instance.get_run_step_stats(run_id)
        if s.status is not None
        and s.status.value == "SUCCESS"
        and s.start_time is not None
        and s.end_time is not None
    }


def latest_materialization(
    instance: dg.DagsterInstance, asset: str, partition: str | None = None
) -> dg.EventLogRecord | None:
    records_filter = dg.AssetRecordsFilter(
        asset_key=dg.AssetKey(asset), asset_partitions=[partition] if partition else None
    )
    records = instance.fetch_materializations(records_filter, limit=1).records
    return records[0] if records else None


def metadata_values(record: dg.EventLogRecord | None) -> dict[str, Any]:
    """A materialization's metadata as plain values ({} when there is none)."""
    if record is None or record.asset_materialization is None:
        return {}
    return {k: v.value for k, v in record.asset_materialization.metadata.items()}


def run_materialization(
    instance: dg.DagsterInstance, run_id: str, asset: str
) -> dg.EventLogRecord | None:
    """The materialization of ``asset`` that run ``run_id`` produced, if any."""
    records = instance.get_records_for_run(
        run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION
    ).records
    for record in records:
        event = record.asset_materialization
        if event is not None and event.asset_key == dg.AssetKey(asset):
            return record
    return None


def failed_checks(instance: dg.DagsterInstance, run_id: str, names: set[str]) -> list[Any]:
    """Failed evaluations of the named asset checks in one run (``AssetCheckEvaluation``s)."""
    records = instance.get_records_for_run(
        run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION
    ).records
    evaluations = [r.event_log_entry.dagster_event.event_specific_data for r in records]
    return [e for e in evaluations if e.check_name in names and not e.passed]
