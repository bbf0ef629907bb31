"""Cheap daily assets over partition ranges: one run computes many days, day by day.

Raw and feature assets declare ``BACKFILL_POLICY`` so a backfill runs them once for the whole
range (models, leaderboard and deployment too, by default: :func:`model_backfill_policy`). Their
bodies stay per day (``compute(day)``); :func:`per_day` calls it for each day of the run and
returns one value (daily run) or a ``PartitionFrames`` (range run) that the range-aware lake
writes day by day; a lazy one is computed day by day as it is written, in day order, so memory
stays bounded and each day sees what the previous days wrote (the registry's champion). Inputs
arrive the same way, cut per day with ``lake_ranges.window``.
"""

from collections.abc import Callable, Mapping
from typing import Any

import dagster as dg

from ml_assets.resources.lake_ranges import PartitionFrames
from ml_assets.settings import Settings

BACKFILL_POLICY = dg.BackfillPolicy.single_run()


def model_backfill_policy(settings: Settings) -> dg.BackfillPolicy | None:
    """Models, leaderboard and deployment: with the range assets in one run over the range
    (``model_runs="range"``: one run per backfill, its steps in parallel on the executor), or
    one run per day (``"daily"``: production, where a step's Kubernetes deadline is per day)."""
    return BACKFILL_POLICY if settings.model_runs == "range" else None


def in_range_run(context: dg.AssetExecutionContext) -> bool:
    """A run over a partition range (as ``lake_ranges.is_range_run`` decides from its tags)."""
    return not context.has_partition_key and context.has_partition_key_range


def partition_days(context: dg.AssetExecutionContext) -> list[str]:
    """The days this step materializes (one, or the backfill's range)."""
    return list(context.partition_keys) if in_range_run(context) else [context.partition_key]


def per_day(
    context: dg.AssetExecutionContext,
    compute: Callable[[str], Any],
    version: bool = False,
    lazy: bool = False,
) -> Any:
    """``compute(day)`` for every day of the step; a range run returns them keyed by day.

    ``version``: a daily run records the content hash as the data version (``versions.py``);
    a range run has one data version per asset, so its days keep Dagster's derived ones.
    ``lazy``: a range run's days are computed when the lake writes them, one at a time, each
    day's errors classified as in the step's body (``errors.fail_fast``).
    """
    if not in_range_run(context):
        out = compute(context.partition_key)
        if version:
            from ml_assets.assets.versions import versioned

            return versioned(context, out)
        return out
    if not lazy:
        return PartitionFrames({day: compute(day) for day in context.partition_keys})
    from ml_assets.errors import fail_fast

    name = context.op_def.name

    def produce(day: str) -> Any:
        with fail_fast(f"{name}[{day}]"):
            return compute(day)

    return PartitionFrames(produce=produce, keys=context.partition_keys)


def add_day_metadata(
    context: dg.AssetExecutionContext, day: str, metadata: Mapping[str, Any]
) -> None:
    """``metadata`` on ``day``'s materialization: the step's output in a daily run, that
    partition's in a range run."""
    if in_range_run(context):
        context.add_asset_metadata(dict(metadata), partition_key=day)
    else:
        context.add_output_metadata(dict(metadata))


def label(context: dg.AssetExecutionContext, asset: str) -> str:
    """``asset[day]`` or ``asset[first..last]`` for messages."""
    days = partition_days(context)
    return f"{asset}[{days[0]}]" if len(days) == 1 else f"{asset}[{days[0]}..{days[-1]}]"
