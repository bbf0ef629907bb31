"""Fixtures of the fault tests: the feature tests' week of real rows, a redis-server of our own."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ml_assets_tests.automation.conftest import free_port
from ml_assets_tests.feature_repo.conftest import lake  # noqa: F401  (the fixture, re-exported)


def start_redis(folder: Path) -> tuple[subprocess.Popen, int]:
    """A redis-server on a free port of 127.0.0.1, without persistence, answering PING."""
    import redis

    port = free_port()
    server = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(folder),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    client = redis.Redis(port=port)
    for _ in range(200):
        try:
            client.ping()
            return server, port
        except redis.ConnectionError:
            time.sleep(0.05)
    server.kill()
    raise RuntimeError(f"redis-server on port {port} did not answer")


@pytest.fixture(scope="module")
def scratch_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """A redis-server of the module's own (tests may reconfigure it; the shared one at 6379 is
    never touched), stopped at the end."""
    server, port = start_redis(tmp_path_factory.mktemp("redis"))
    try:
        yield port
    finally:
        server.terminate()
        server.wait(timeout=10)
