"""The one partitioning of the pipeline: a calendar day of 2013 in New York, and its windows."""

from __future__ import annotations

import dagster as dg

START_DATE = "2013-01-01"
END_DATE = "2014-01-01"
TIMEZONE = "America/New_York"

daily = dg.DailyPartitionsDefinition(start_date=START_DATE, end_date=END_DATE, timezone=TIMEZONE)


def trailing(days: int) -> dg.TimeWindowPartitionMapping:
    """The ``days`` partitions ending on the downstream partition (days before 2013 are skipped)."""
    return dg.TimeWindowPartitionMapping(
        start_offset=-(days - 1), end_offset=0, allow_nonexistent_upstream_partitions=True
    )
