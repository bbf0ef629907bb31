"""Materialize partition ranges through a real Dagster instance (used by the CLI and the bench)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import dagster as dg

from ml_assets.operations.backfill_launch import RANGE_TAGS

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


def materialize_range(
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    job_name: str,
    first: str,
    last: str,
    tags: dict[str, str] | None = None,
    launched: bool = False,
) -> RunSummary:
    """One run of ``job_name`` over the days ``first..last`` (its assets must be single-run).

    In-process by default; ``launched``: through the code location's executor, each step in a
    process of its own and side by side as in a launched run (its steps' durations then are what
    a backfill's plan should fit), with the code location that the environment configures.
    """
    started = time.perf_counter()
    run_tags = {**(tags or {}), RANGE_TAGS[0]: first, RANGE_TAGS[1]: last}
    if launched:
        from dagster._core.definitions.reconstruct import ReconstructableRepository

        from ml_assets.settings import PROJECT_ROOT

        repository = ReconstructableRepository.for_module(
            "ml_assets.definitions", "defs", working_directory=str(PROJECT_ROOT)
        )
        with dg.execute_job(
            repository.get_reconstructable_job(job_name),
            instance,
            run_config=QUIET,
            tags=run_tags,
            raise_on_error=False,
        ) as launched_result:
            run_id, success = launched_result.run_id, launched_result.success
    else:
        result = defs.resolve_job_def(job_name).execute_in_process(
            instance=instance, tags=run_tags, raise_on_error=False
        )
        run_id, success = result.run_id, result.success
    return RunSummary(job_name, f"{first}..{last}", run_id, success, time.perf_counter() - started)
