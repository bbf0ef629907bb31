"""Materialize partition ranges through a real Dagster instance (used by the CLI and the bench)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import dagster as dg

QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


@dataclass(frozen=True)
class RunSummary:
    job: str
    partition: str
    run_id: str
    success: bool
    seconds: float


def materialize_days(
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    job_name: str,
    days: Iterable[str | None],
    on_run: Callable[[RunSummary], None] = lambda _: None,
    tags: dict[str, str] | None = None,
) -> list[RunSummary]:
    """Run ``job_name`` once per day, in order, in-process; stop at the first failed run."""
    job = defs.resolve_job_def(job_name)
    summaries = []
    for day in days:
        started = time.perf_counter()
        result = job.execute_in_process(
            instance=instance, partition_key=day, tags=tags, raise_on_error=False
        )
        summary = RunSummary(
            job_name, day or "-", result.run_id, result.success, time.perf_counter() - started
        )
        summaries.append(summary)
        on_run(summary)
        if not result.success:
            break
    return summaries


RANGE_TAGS = ("dagster/asset_partition_range_start", "dagster/asset_partition_range_end")


def materialize_range(
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    job_name: str,
    first: str,
    last: str,
    tags: dict[str, str] | None = None,
) -> RunSummary:
    """One in-process run of ``job_name`` over the days ``first..last`` (its assets must be
    single-run: raw and features)."""
    job = defs.resolve_job_def(job_name)
    started = time.perf_counter()
    result = job.execute_in_process(
        instance=instance,
        tags={**(tags or {}), RANGE_TAGS[0]: first, RANGE_TAGS[1]: last},
        raise_on_error=False,
    )
    return RunSummary(
        job_name, f"{first}..{last}", result.run_id, result.success, time.perf_counter() - started
    )
