"""Volume guard: a landed flights day far smaller than its reference is refused (rule volume_drop).

The reference is the partition the day would replace when the lake has it, else the median row
count of up to ``TRAILING_DAYS`` earlier days within ``LOOKBACK_DAYS`` (in the lake, or earlier in
the same range run). Without either (the first days of the data) the day is accepted.
"""

from __future__ import annotations

import datetime as dt
import re
import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

RULE = "volume_drop"
TRAILING_DAYS = 7
LOOKBACK_DAYS = 14
_PARTITION = re.compile(r"^(\d{4}-\d{2}-\d{2})\.parquet$")


@dataclass(frozen=True)
class VolumeVerdict:
    """One day's rows against its reference; ``dropped`` when below ``share`` of it."""

    rows: int
    reference: float | None
    basis: str
    share: float

    @property
    def dropped(self) -> bool:
        return self.reference is not None and self.rows < self.share * self.reference

    def describe(self) -> str:
        if self.reference is None:
            return f"{self.rows} rows; {self.basis}: nothing to compare with"
        ratio = self.rows / self.reference if self.reference else float("inf")
        return (
            f"{self.rows} rows, {ratio:.1%} of the reference {self.reference:g} rows "
            f"({self.basis}); the guard's share is {self.share:g}"
        )

    def metadata(self) -> dict[str, Any]:
        meta: dict[str, Any] = {
            "volume_rows": self.rows,
            "volume_reference": self.basis,
            "volume_guard_share": self.share,
        }
        if self.reference is not None:
            meta["volume_reference_rows"] = float(self.reference)
        return meta


def earlier_days(
    day: str, available: Iterable[str], trailing: int = TRAILING_DAYS, lookback: int = LOOKBACK_DAYS
) -> list[str]:
    """The latest ``trailing`` of ``available`` days in the ``lookback`` days before ``day``."""
    first = (dt.date.fromisoformat(day) - dt.timedelta(days=lookback)).isoformat()
    return sorted(d for d in set(available) if first <= d < day)[-trailing:]


def judge_volume(
    rows: int, share: float, replaced: int | None, earlier: Mapping[str, int]
) -> VolumeVerdict:
    """The verdict against the replaced partition's rows, else the median of ``earlier`` days."""
    if replaced is not None:
        return VolumeVerdict(rows, float(replaced), "the partition it would replace", share)
    if not earlier:
        return VolumeVerdict(rows, None, "no earlier day", share)
    days = sorted(earlier)
    span = days[0] if len(days) == 1 else f"{days[0]}..{days[-1]}"
    basis = f"median of {len(days)} earlier day{'s' * (len(days) > 1)} {span}"
    return VolumeVerdict(rows, float(statistics.median(earlier.values())), basis, share)


def lake_days(lake_base: str, asset: str) -> set[str]:
    """Days with a stored Parquet partition of ``asset`` (one listing)."""
    from upath import UPath

    folder = UPath(lake_base) / asset
    if not folder.exists():
        return set()
    return {m.group(1) for p in folder.iterdir() if (m := _PARTITION.match(p.name))}


def lake_rows(lake_base: str, asset: str, days: Iterable[str]) -> dict[str, int]:
    """Row counts of stored partitions from their Parquet footers; unreadable ones are skipped."""
    import pyarrow.parquet as pq
    from upath import UPath

    counts: dict[str, int] = {}
    for day in days:
        path = UPath(lake_base) / asset / f"{day}.parquet"
        try:
            with path.open("rb") as handle:
                counts[day] = int(pq.ParquetFile(handle).metadata.num_rows)
        except (OSError, ValueError):  # missing or corrupt: its own reader reports that
            continue
    return counts
