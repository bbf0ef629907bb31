"""Asset checks over a range run: one verdict per day, each recorded under its partition, and
one joined result.

Dagster plans a partitioned check of a range run for every day of the range but records the
step's result without a partition, which would leave every day "planned" (the UI shows the check
as skipped). So each day's verdict is logged as that partition's evaluation, and the step's result
joins them: it fails if any day fails (ERROR if any day's failure is an ERROR), and its metadata
lists each day's outcome.
"""

from collections.abc import Callable, Mapping
from typing import Any

import dagster as dg

from ml_assets.resources.lake_ranges import PartitionFrames


def over_days(
    value: Any,
    evaluate: Callable[[str | None, Any], dg.AssetCheckResult],
    day: str | None,
    context: dg.AssetCheckExecutionContext | None = None,
) -> dg.AssetCheckResult:
    """``evaluate(day, frame)`` once (daily run) or for each day of a range run, joined."""
    if not isinstance(value, PartitionFrames):
        return evaluate(day, value)
    return join_results({key: evaluate(key, frame) for key, frame in value.items()}, context)


def record_days(
    context: dg.AssetCheckExecutionContext, results: Mapping[str, dg.AssetCheckResult]
) -> None:
    """Log each day's verdict as the evaluation of that partition of the check."""
    (spec,) = context.check_specs
    for day, result in sorted(results.items()):
        context.op_execution_context.log_event(
            dg.AssetCheckEvaluation(
                asset_key=spec.asset_key,
                check_name=spec.name,
                passed=result.passed,
                metadata=result.metadata,
                severity=result.severity,
                description=result.description,
                blocking=spec.blocking,
                partition=day,
            )
        )


def join_results(
    results: Mapping[str, dg.AssetCheckResult],
    context: dg.AssetCheckExecutionContext | None = None,
) -> dg.AssetCheckResult:
    """One result for many days: passed only if every day passed, at the worst severity; with
    ``context``, each day's verdict is first recorded under its partition."""
    if context is not None:
        record_days(context, results)
    failed = {day: r for day, r in results.items() if not r.passed}
    errors = [r for r in failed.values() if r.severity == dg.AssetCheckSeverity.ERROR]
    severity = dg.AssetCheckSeverity.ERROR if errors or not failed else dg.AssetCheckSeverity.WARN
    lines = "\n".join(
        f"| {day} | {'pass' if r.passed else r.severity.value} | {r.description or ''} |"
        for day, r in sorted(results.items())
    )
    first = min(results, default="-")
    last = max(results, default="-")
    return dg.AssetCheckResult(
        passed=not failed,
        severity=severity,
        description=f"{len(results) - len(failed)} of {len(results)} days pass ({first}..{last})"
        + (f"; failing: {', '.join(sorted(failed))}" if failed else ""),
        metadata={
            "days": len(results),
            "failed_days": len(failed),
            "by_day": dg.MetadataValue.md(f"| day | verdict | detail |\n|---|---|---|\n{lines}"),
        },
    )
