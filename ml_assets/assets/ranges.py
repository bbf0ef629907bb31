"""Cheap daily assets over partition ranges: one run computes many days, day by day.

Raw and feature assets declare ``BACKFILL_POLICY`` so a backfill runs them once for the whole
range. Their bodies stay per day (``compute(day)``); :func:`per_day` calls it for each day of the
run and returns one value (daily run) or a ``PartitionFrames`` (range run) that the range-aware
lake writes day by day. Inputs arrive the same way, cut per day with ``lake_ranges.window``.
"""

from collections.abc import Callable
from typing import Any

import dagster as dg

from ml_assets.resources.lake_ranges import PartitionFrames

BACKFILL_POLICY = dg.BackfillPolicy.single_run()


def in_range_run(context: dg.AssetExecutionContext) -> bool:
    """A run over a partition range (as ``lake_ranges.is_range_run`` decides from its tags)."""
    return not context.has_partition_key and context.has_partition_key_range


def partition_days(context: dg.AssetExecutionContext) -> list[str]:
    """The days this step materializes (one, or the backfill's range)."""
    return list(context.partition_keys) if in_range_run(context) else [context.partition_key]


def per_day(
    context: dg.AssetExecutionContext, compute: Callable[[str], Any], version: bool = False
) -> Any:
    """``compute(day)`` for every day of the step; a range run returns them keyed by day.

    ``version``: a daily run records the content hash as the data version (``versions.py``);
    a range run has one data version per asset, so its days keep Dagster's derived ones.
    """
    if not in_range_run(context):
        out = compute(context.partition_key)
        if version:
            from ml_assets.assets.versions import versioned

            return versioned(context, out)
        return out
    return PartitionFrames({day: compute(day) for day in context.partition_keys})


def label(context: dg.AssetExecutionContext, asset: str) -> str:
    """``asset[day]`` or ``asset[first..last]`` for messages."""
    days = partition_days(context)
    return f"{asset}[{days[0]}]" if len(days) == 1 else f"{asset}[{days[0]}..{days[-1]}]"
