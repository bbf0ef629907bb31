"""Fixtures for automation tests: a real SMTP server (aiosmtpd),
a private landing zone, settings."""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from ml_assets.automation.smtp_sink import Inbox
from ml_assets.settings import Settings


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def landing(tmp_path: Path) -> Path:
    """An empty landing zone owned by the test (the session's landed days are read-only)."""
    path = tmp_path / "landing"
    path.mkdir()
    return path


def copy_day(source_landing: Path, landing: Path, day: str, sources=("flights", "weather")) -> None:
    """Land ``day`` by copying the session's real files (atomic enough for a test)."""
    for source in sources:
        (landing / source).mkdir(exist_ok=True)
        shutil.copy(source_landing / source / f"{day}.csv", landing / source / f"{day}.csv")
    reference = landing / "reference"
    if not reference.exists():
        shutil.copytree(source_landing / "reference", reference)


def age_files(landing: Path, day: str, seconds: float) -> None:
    """Pretend ``day``'s files landed ``seconds`` ago."""
    for source in ("flights", "weather"):
        path = landing / source / f"{day}.csv"
        stamp = path.stat().st_mtime - seconds
        os.utime(path, (stamp, stamp))


@pytest.fixture
def auto_settings(settings: Settings, landing: Path) -> Settings:
    """The shared test settings over this test's landing zone."""
    return settings.model_copy(
        update={
            "landing_base": str(landing),
            "smtp_recipients": ("oncall@example.com",),
            "webserver_url": "http://dagster.example:3000/",
            "monitor_step_min_seconds": 0.2,
        }
    )


@pytest.fixture
def mail_settings(auto_settings: Settings, inbox: tuple[Inbox, int]) -> Settings:
    """Settings that send email to this test's SMTP server."""
    return auto_settings.model_copy(update={"smtp_port": inbox[1]})


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    """A real, in-memory instance: run and event storage, no daemon."""
    inst = dg.DagsterInstance.ephemeral()
    yield inst
    inst.dispose()
