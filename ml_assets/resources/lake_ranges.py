"""The lake over partition ranges: one run materializes many days, each day still its own file.

A backfill of a ``BackfillPolicy.single_run()`` asset runs once for a range of days. Dagster's
``UPathIOManager`` refuses to store such an output; this manager writes each day of a
:class:`PartitionFrames` to ``<base>/<asset>/<day>.parquet`` (the same file and bytes a daily run
writes) and, in a range run, hands every partitioned input to the step as a
:class:`PartitionFrames` too, so the step can compute day by day on exactly the frames a daily
run would see. Runs of one partition behave as before.
"""

from __future__ import annotations

from typing import Any

import dagster as dg

from ml_assets.resources.lake import LakeIOManager, concat_partitions, dump_object

RANGE_START_TAG = "dagster/asset_partition_range_start"
PARTITION_TAG = "dagster/partition"


class PartitionFrames(dict):
    """``{partition key: value}`` of a range run, in partition order."""


def is_range_run(tags: dict[str, str]) -> bool:
    """A run over a partition range (a single-run backfill), not a run of one partition."""
    return RANGE_START_TAG in tags and PARTITION_TAG not in tags


def _run_tags(context: dg.InputContext | dg.OutputContext) -> dict[str, str]:
    try:
        return dict(context.step_context.dagster_run.tags)
    except dg.DagsterInvariantViolationError:  # built by hand (tests): no run
        return {}


class RangeLakeIOManager(LakeIOManager):
    """The lake, storing and loading partition ranges day by day."""

    def handle_output(self, context: dg.OutputContext, obj: Any) -> None:
        if not isinstance(obj, PartitionFrames):
            super().handle_output(context, obj)
            return
        paths = self._get_paths_for_partitions(context)
        missing = sorted(set(paths) - set(obj))
        if missing or set(obj) - set(paths):
            raise dg.Failure(
                f"{context.asset_key.to_user_string()}: the step returned partitions "
                f"{sorted(obj)} for the range {sorted(paths)} (missing {missing})",
                allow_retries=False,
            )
        asset_key = context.asset_key
        for key in sorted(paths):
            self.make_directory(paths[key].parent)
            facts = dump_object(obj[key], paths[key])
            context.step_context.add_asset_metadata(facts, asset_key=asset_key, partition_key=key)

    def load_partitions(self, context: dg.InputContext) -> Any:
        if not is_range_run(_run_tags(context)):
            return super().load_partitions(context)
        paths = self._get_paths_for_partitions(context)
        return PartitionFrames(
            {key: self.load_from_path(context, paths[key]) for key in sorted(paths)}
        )


class RangeLakeIOManagerFactory(dg.ConfigurableIOManagerFactory):
    """The lake (local folder or ``gs://bucket/prefix``), range-aware."""

    base_path: str

    def create_io_manager(self, context: dg.InitResourceContext) -> RangeLakeIOManager:
        from upath import UPath

        return RangeLakeIOManager(base_path=UPath(self.base_path))


def window(value: Any, day: str, days: int) -> Any:
    """The ``days`` partitions ending on ``day`` as a daily run loads them (one frame).

    ``value`` is what the step received: one frame in a daily run (passed through), or the
    :class:`PartitionFrames` of a range run, cut to the window and joined like the lake joins it.
    """
    import datetime as dt

    if not isinstance(value, PartitionFrames):
        return value
    first = (dt.date.fromisoformat(day) - dt.timedelta(days=days - 1)).isoformat()
    parts = {key: frame for key, frame in value.items() if first <= key <= day}
    if not parts:
        raise KeyError(f"no loaded partition in {first}..{day}")
    return next(iter(parts.values())) if len(parts) == 1 else concat_partitions(parts)
