"""How the sensor sees the landing zone: complete days, file identities, versions."""

from __future__ import annotations

import os
from pathlib import Path

from ml_assets.automation.landing_scan import (
    DailyFile,
    LandedDay,
    complete_days,
    day_files,
    missing_sources,
    scan_daily_files,
)


def write(landing: Path, source: str, day: str, text: str, mtime: float = 1_700_000_000.0) -> None:
    path = landing / source / f"{day}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    os.utime(path, (mtime, mtime))


def test_complete_days_need_every_source(landing: Path) -> None:
    write(landing, "flights", "2013-01-02", "a\n1\n")
    write(landing, "weather", "2013-01-02", "b\n2\n")
    write(landing, "flights", "2013-01-03", "a\n1\n")
    (landing / "flights" / "notes.txt").write_text("ignored")
    (landing / "flights" / "2013-1-4.csv").write_text("ignored: not a day")
    files = scan_daily_files(str(landing))
    assert sorted((f.source, f.day) for f in files) == [
        ("flights", "2013-01-02"),
        ("flights", "2013-01-03"),
        ("weather", "2013-01-02"),
    ]
    [day] = complete_days(files)
    assert day.day == "2013-01-02" and day.landed_at == 1_700_000_000.0
    assert missing_sources(files, "2013-01-03") == ["weather"]
    assert complete_days(day_files(str(landing), "2013-01-02")) == [day]
    assert day_files(str(landing), "2013-01-05") == []


def test_version_changes_with_size_or_mtime_only() -> None:
    base = (DailyFile("flights", "d", 10, 1.0), DailyFile("weather", "d", 20, 1.0))
    same = LandedDay("d", base).version
    assert LandedDay("d", base[::-1]).version == same  # order does not matter
    assert LandedDay("d", (DailyFile("flights", "d", 11, 1.0), base[1])).version != same
    assert LandedDay("d", (DailyFile("flights", "d", 10, 2.0), base[1])).version != same
    assert len(same) == 16


def test_empty_landing_zone(tmp_path: Path) -> None:
    assert scan_daily_files(str(tmp_path / "missing")) == []
