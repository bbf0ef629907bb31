"""Every file in the landing zone is accounted for: the landing sensor moves each file that is no
landing file to rejected/ with its reason, logs it and emails one alert per file, once."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from ml_assets.automation.landing_scan import STRAY_REASONS, judge_name, scan_strays
from ml_assets.automation.smtp_sink import Inbox
from ml_assets.settings import Settings
from ml_assets.sources.landing_files import volume_override_path
from ml_assets_tests.automation.conftest import copy_day, free_port
from ml_assets_tests.automation.test_notifications import subject_of
from ml_assets_tests.automation.test_sensors import days_of, tick

# (folder, name, content, reason); folder "" is the landing root
STRAYS = [
    ("flights", "2013-03-01.parquet", b"PAR1 not really\n", "unknown_format"),
    ("weather", "2013-13-45.csv", b"year,month\n2013,13\n", "impossible_date"),
    ("flights", "..%2F..%2Fetc%2Fpasswd.csv", b"root:x:0:0\n", "unsafe_name"),
    ("flights", "corrupt.parquet", b"\x00\x01\x02", "unknown_format"),
    ("flights", "latest.csv", b"year\n2013\n", "not_a_day"),
    ("", "2013-01-04.csv", b"year\n2013\n", "unknown_location"),
    ("reference", "carriers.csv", b"code\nAA\n", "unknown_table"),
]


def _drop(landing: Path) -> dict[str, bytes]:
    dropped = {}
    for folder, name, data, _ in STRAYS:
        path = landing / folder / name if folder else landing / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        dropped[f"{folder}/{name}" if folder else name] = data
    return dropped


@pytest.mark.parametrize(
    ("folder", "name", "reason"),
    [
        ("flights", "2013-01-05.csv", None),
        ("weather", "2014-01-01.csv", None),  # a valid name outside the partitions: the sensor's
        ("flights", "2013-01-05.accept-volume-drop", None),  # the volume guard's override
        ("flights", ".2013-01-05.csv.0123456789abcdef0123456789abcdef.tmp", None),  # a writer's
        ("reference", "planes.csv", None),
        ("weather", "2013-01-05.accept-volume-drop", "unknown_format"),
        ("flights", "2013-01-05.csv.part", "unknown_format"),
        ("flights", "2013-02-30.csv", "impossible_date"),
        ("flights", "2013-1-5.csv", "not_a_day"),
        ("flights", "2013-01-05 (1).csv", "unsafe_name"),
        ("flights", ".hidden.csv", "unsafe_name"),
        ("flights", "a..b.csv", "unsafe_name"),
        ("", "planes.csv", "unknown_location"),
    ],
)
def test_judge_name(folder: str, name: str, reason: str | None) -> None:
    assert judge_name(folder, name) == reason
    assert reason is None or reason in STRAY_REASONS


def test_strays_are_moved_reported_once_and_valid_days_still_run(
    mail_settings: Settings,
    instance,
    landing: Path,
    landing_dir: Path,
    inbox: tuple[Inbox, int],
    capsys: pytest.CaptureFixture,
) -> None:
    copy_day(landing_dir, landing, "2013-01-02")
    copy_day(landing_dir, landing, "2013-01-03")
    marker = volume_override_path(str(landing), "flights", "2013-01-03")
    marker.write_text("{}")  # an operator's override stays where it is
    (landing / "rejected" / "flights").mkdir(parents=True)
    earlier = landing / "rejected" / "flights" / "2013-01-01.0123456789ab.csv"
    earlier.write_text("kept\n")  # rejected/ itself is never scanned
    dropped = _drop(landing)
    assert {s.relative for s in scan_strays(str(landing))} == set(dropped)

    result = tick(mail_settings, instance, None)
    logged = capsys.readouterr().err  # the tick's log (Dagster's console logger)

    assert days_of(result) == ["2013-01-02", "2013-01-03"]
    messages = inbox[0].wait_for(len(STRAYS), timeout_s=10)
    assert len(messages) == len(STRAYS)
    by_file = {}
    for message in messages:
        body = message.get_content()
        (line,) = [x for x in body.splitlines() if x.startswith("File: ")]
        by_file[line.removeprefix("File: ").rsplit(" (", 1)[0].strip("'")] = (message, body)
    assert set(by_file) == set(dropped)
    for folder, name, data, reason in STRAYS:
        relative = f"{folder}/{name}" if folder else name
        message, body = by_file[relative]
        assert subject_of(message).endswith(f"({reason})") and message["To"] == "oncall@example.com"
        assert f"Reason: {reason}: {STRAY_REASONS[reason]}" in body
        moved = body.split("Moved to: ", 1)[1].split(" (", 1)[0]
        assert Path(moved).parent == landing / "rejected" / (folder or "root")
        assert Path(moved).read_bytes() == data  # moved aside byte for byte, never deleted
        assert not (landing / relative).exists()
        note = json.loads(Path(moved + ".reason.json").read_text())
        assert (note["file"], note["reason"], note["size"]) == (relative, reason, len(data))
        assert f"rejected landing file {relative!r} ({reason}: " in logged
    moved = {p.name for p in (landing / "rejected" / "flights").iterdir()}
    digest = hashlib.sha256(dropped["flights/2013-03-01.parquet"]).hexdigest()[:12]
    assert f"2013-03-01.{digest}.parquet" in moved  # the layout of rejected day files
    assert all(".." not in n and "%" not in n for n in moved)
    assert earlier.read_text() == "kept\n" and marker.exists()
    assert scan_strays(str(landing)) == []

    again = tick(mail_settings, instance, result.cursor)  # the next tick: nothing new to report
    assert (
        again.run_requests == []
        and "no new or re-landed complete day" in again.skip_reason.skip_message
    )
    assert len(inbox[0].wait_for(len(STRAYS) + 1, timeout_s=1)) == len(STRAYS)

    (landing / "flights" / "2013-03-01.parquet").write_bytes(b"another delivery")
    later = tick(mail_settings, instance, again.cursor)  # a new stray later: one more alert
    assert "1 stray file(s) moved to rejected/" in later.skip_reason.skip_message
    assert len(inbox[0].wait_for(len(STRAYS) + 1, timeout_s=10)) == len(STRAYS) + 1


def test_a_stray_whose_alert_cannot_be_sent_stays_and_is_reported_next_tick(
    mail_settings: Settings, instance, landing: Path, landing_dir: Path, inbox: tuple[Inbox, int]
) -> None:
    copy_day(landing_dir, landing, "2013-01-02")
    stray = landing / "flights" / "2013-03-01.parquet"
    stray.write_bytes(b"PAR1")
    no_server = mail_settings.model_copy(update={"smtp_port": free_port(), "smtp_attempts": 1})

    down = tick(no_server, instance, None)
    assert days_of(down) == ["2013-01-02"]  # runs are not held up by the mail server
    assert stray.exists() and not (landing / "rejected").exists()

    up = tick(mail_settings, instance, down.cursor)
    (message,) = inbox[0].wait_for(1, timeout_s=10)
    assert "flights/2013-03-01.parquet" in subject_of(message) and not stray.exists()
    assert up.run_requests == []


def test_an_empty_or_missing_landing_zone_has_no_strays(tmp_path: Path) -> None:
    assert scan_strays(str(tmp_path / "missing")) == []
    assert scan_strays(str(tmp_path)) == []


def test_a_real_landing_has_no_strays(landing_dir: Path) -> None:
    assert scan_strays(str(landing_dir)) == []


def test_the_sensor_needs_the_notifier(mail_settings: Settings) -> None:
    from ml_assets.automation.sensors import build_landing_sensor

    assert "notifier" in build_landing_sensor(mail_settings).required_resource_keys
