"""The landing zone as the sensor sees it: which days are complete, and each day's file version."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from ml_assets.sources.landing import DAILY_SOURCES

_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@dataclass(frozen=True)
class DailyFile:
    source: str
    day: str
    size: int
    mtime: float

    @property
    def identity(self) -> str:
        """Name, size and modification time: changes whenever the file is landed again."""
        return f"{self.source}/{self.day}.csv:{self.size}:{self.mtime:.6f}"


@dataclass(frozen=True)
class LandedDay:
    """A day with a file for every required source."""

    day: str
    files: tuple[DailyFile, ...]

    @property
    def version(self) -> str:
        """A short hash of the day's file identities: the sensor's run key and cursor entry."""
        joined = "\n".join(sorted(f.identity for f in self.files))
        return hashlib.sha256(joined.encode()).hexdigest()[:16]

    @property
    def landed_at(self) -> float:
        """When the day became complete: its newest file's modification time (epoch seconds)."""
        return max(f.mtime for f in self.files)


def scan_daily_files(base: str) -> list[DailyFile]:
    """Every ``<source>/<day>.csv`` under the landing zone, with size and mtime (one listing each)."""
    from upath import UPath

    found = []
    for source in DAILY_SOURCES:
        folder = UPath(base) / source
        if not folder.exists():
            continue
        for path in folder.iterdir():
            if path.suffix != ".csv" or not _DAY.match(path.stem):
                continue
            stat = path.stat()
            found.append(DailyFile(source, path.stem, int(stat.st_size), float(stat.st_mtime)))
    return found


def day_files(base: str, day: str) -> list[DailyFile]:
    """The files landed for one day (stat only those, no listing)."""
    from upath import UPath

    found = []
    for source in DAILY_SOURCES:
        path = UPath(base) / source / f"{day}.csv"
        if path.exists():
            stat = path.stat()
            found.append(DailyFile(source, day, int(stat.st_size), float(stat.st_mtime)))
    return found


def complete_days(
    files: list[DailyFile], sources: tuple[str, ...] = DAILY_SOURCES
) -> list[LandedDay]:
    """Days with every source present, sorted by day; incomplete days are left out."""
    by_day: dict[str, dict[str, DailyFile]] = {}
    for f in files:
        by_day.setdefault(f.day, {})[f.source] = f
    return [
        LandedDay(day, tuple(present[s] for s in sources))
        for day, present in sorted(by_day.items())
        if all(s in present for s in sources)
    ]


def missing_sources(
    files: list[DailyFile], day: str, sources: tuple[str, ...] = DAILY_SOURCES
) -> list[str]:
    present = {f.source for f in files if f.day == day}
    return [s for s in sources if s not in present]
