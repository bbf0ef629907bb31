"""The lake over partition ranges: one run materializes many days, each day still its own file.

A backfill of a ``BackfillPolicy.single_run()`` asset runs once for a range of days. Dagster's
``UPathIOManager`` refuses to store such an output; this manager writes each day of a
:class:`PartitionFrames` to ``<base>/<asset>/<day>.parquet`` (the same file and bytes a daily run
writes) and, in a range run, hands every partitioned input to the step as a
:class:`PartitionFrames` too, so the step can compute day by day on exactly the frames a daily
run would see. Runs of one partition behave as before.

Memory stays bounded however long the range: inputs are read when a day is asked for (recently
read days kept up to ``KEEP_BYTES``, and none from before the window last cut), and a lazy
output is computed day by day as it is written, so a day's frame is dropped once it is in the
lake.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import dagster as dg

from ml_assets.resources.lake import LakeIOManager, concat_partitions, dump_object

RANGE_START_TAG = "dagster/asset_partition_range_start"
PARTITION_TAG = "dagster/partition"


KEEP_BYTES = 256 * 2**20  # input days kept in memory for windows read again by the next day


class PartitionFrames(Mapping[str, Any]):
    """``{partition key: value}`` of a range run, in partition order.

    Either holds its values, or ``produce(day)`` makes each on access (read from the lake, or
    computed by the step): without ``keep_bytes`` nothing is kept; with it, the newest values
    up to that many bytes are, the oldest days dropped first.
    """

    def __init__(
        self,
        values: Mapping[str, Any] | None = None,
        *,
        produce: Callable[[str], Any] | None = None,
        keys: Iterable[str] = (),
        keep_bytes: int = 0,
    ) -> None:
        self._values = dict(values or {})
        self._produce = produce
        self._keys = sorted(self._values if produce is None else set(keys))
        self._known = set(self._keys)
        self._keep = keep_bytes

    @property
    def lazy(self) -> bool:
        return self._produce is not None

    def __getitem__(self, key: str) -> Any:
        if self._produce is None or key in self._values:
            return self._values[key]
        if key not in self._known:
            raise KeyError(key)
        value = self._produce(key)
        if self._keep:
            self._values[key] = value
            self._evict()
        return value

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)

    def __contains__(self, key: object) -> bool:
        return key in self._known

    def __repr__(self) -> str:
        return f"PartitionFrames({self._keys[:1]}..{self._keys[-1:]}, lazy={self.lazy})"

    def release_before(self, key: str) -> None:
        """Drop the kept values of days before ``key`` (a window moved past them); a later
        access reads such a day again."""
        if self._produce is not None:
            for old in [k for k in self._values if k < key]:
                del self._values[old]

    def _evict(self) -> None:
        kept = sorted(self._values)
        while len(kept) > 1 and sum(_nbytes(self._values[k]) for k in kept) > self._keep:
            del self._values[kept.pop(0)]


def _nbytes(value: Any) -> int:
    import pandas as pd

    if isinstance(value, pd.DataFrame):
        return int(value.memory_usage(index=False).sum())
    return 1 << 20  # a model or a document: small, counted as 1 MiB


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
        missing = sorted(set(paths) - set(obj))  # keys only: a lazy value is not computed here
        if missing or set(obj) - set(paths):
            raise dg.Failure(
                f"{context.asset_key.to_user_string()}: the step returned partitions "
                f"{sorted(obj)} for the range {sorted(paths)} (missing {missing})",
                allow_retries=False,
            )
        asset_key = context.asset_key
        for key in sorted(paths):  # in day order: a lazy output computes each day here
            value = obj[key]
            self.make_directory(paths[key].parent)
            facts = dump_object(value, paths[key])
            del value
            context.step_context.add_asset_metadata(facts, asset_key=asset_key, partition_key=key)

    def load_partitions(self, context: dg.InputContext) -> Any:
        if not is_range_run(_run_tags(context)):
            return super().load_partitions(context)
        paths = self._get_paths_for_partitions(context)
        return PartitionFrames(
            produce=lambda key: self.load_from_path(context, paths[key]),
            keys=paths,
            keep_bytes=KEEP_BYTES,
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
    parts = {key: value[key] for key in value if first <= key <= day}
    value.release_before(first)  # days come in order: the next windows start later
    if not parts:
        raise KeyError(f"no loaded partition in {first}..{day}")
    return next(iter(parts.values())) if len(parts) == 1 else concat_partitions(parts)
