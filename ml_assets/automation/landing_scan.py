"""The landing zone as the sensor sees it: which days are complete, each day's file version, and
the files that are no landing file at all (strays, moved to ``rejected/`` with a reason)."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import dataclass

from ml_assets.sources.landing_files import (
    ACCEPT_VOLUME_DROP,
    DAILY_SOURCES,
    REASON_SUFFIX,
    REFERENCE_TABLES,
)

_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")
_WRITER_TEMP = re.compile(r"^\.[A-Za-z0-9._-]+\.[0-9a-f]{32}\.tmp$")  # atomic.write_atomic
STRAY_REASONS = {
    "unsafe_name": "the name is not one plain file name (characters outside [A-Za-z0-9._-], "
    "'..', or a leading dot)",
    "unknown_location": "files belong in <source>/ or reference/, not the landing root",
    "unknown_format": "not a CSV: day files are <source>/<YYYY-MM-DD>.csv",
    "impossible_date": "the name looks like a day but is no calendar date",
    "not_a_day": "the name is not <YYYY-MM-DD>.csv",
    "unknown_table": f"reference/ holds only {', '.join(t + '.csv' for t in REFERENCE_TABLES)}",
}


@dataclass(frozen=True)
class Stray:
    """A file in the landing zone that is no landing file, and why."""

    folder: str  # "" for the landing root
    name: str
    reason: str

    @property
    def relative(self) -> str:
        return f"{self.folder}/{self.name}" if self.folder else self.name

    @property
    def detail(self) -> str:
        return STRAY_REASONS[self.reason]


def judge_name(folder: str, name: str) -> str | None:
    """The reason ``<folder>/<name>`` is no landing file
    (a ``STRAY_REASONS`` key), else ``None``."""
    if _WRITER_TEMP.match(name):
        return None  # a writer's temp file: renamed or swept by the writer
    if not _SAFE_NAME.match(name) or ".." in name:
        return "unsafe_name"
    if folder not in (*DAILY_SOURCES, "reference"):
        return "unknown_location"
    if folder == "reference":
        return None if name in {f"{t}.csv" for t in REFERENCE_TABLES} else "unknown_table"
    stem, _, ext = name.partition(".")
    if ext != "csv" and not (folder == "flights" and ext == ACCEPT_VOLUME_DROP):
        return "unknown_format"
    if not _DAY.match(stem):
        return "not_a_day"
    try:
        dt.date.fromisoformat(stem)
    except ValueError:
        return "impossible_date"
    return None


def scan_strays(base: str) -> list[Stray]:
    """Files at the landing root, in the source folders and in ``reference/`` that are no
    landing file; other folders (``rejected/`` included) are left alone."""
    from upath import UPath

    root = UPath(base)
    if not root.exists():
        return []
    found = []
    for entry in sorted(root.iterdir(), key=lambda p: p.name):
        if entry.is_file():
            found.append(("", entry.name))
        elif entry.name in (*DAILY_SOURCES, "reference"):
            found += [(entry.name, p.name) for p in entry.iterdir() if p.is_file()]
    strays = [
        Stray(folder, name, reason)
        for folder, name in found
        if (reason := judge_name(folder, name)) is not None
    ]
    return sorted(strays, key=lambda s: s.relative)


def stray_message(stray: Stray, base: str, target: str, size: int) -> tuple[str, str]:
    """Subject and body of the alert for one stray file moved to ``rejected/``."""
    from ml_assets.automation.notifications import PREFIX

    subject = f"{PREFIX} landing file rejected: {stray.relative!r} ({stray.reason})"
    lines = [
        f"A file in the landing zone {base} is no landing file; it was moved aside, not deleted.",
        f"File: {stray.relative!r} ({size} bytes)",
        f"Reason: {stray.reason}: {stray.detail}",
        f"Moved to: {target} (the reason is beside it, in {target}{REASON_SUFFIX})",
        "No run reads it. Land the data as <source>/<YYYY-MM-DD>.csv (flights, weather) to use it.",
    ]
    return subject, "\n".join(lines)


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
    """Every ``<source>/<day>.csv`` under the landing zone, with size and mtime
    (one listing each)."""
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
