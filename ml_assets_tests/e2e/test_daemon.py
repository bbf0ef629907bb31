"""Slow end-to-end: the real ``dagster-daemon`` sees a newly landed day and runs it, then emails.

The user's flow from the README: the daemon is up, `ml-assets land` drops a new day, the landing
sensor launches that day's ``daily_pipeline`` run, the models train, the gate decides, and the
deployment email reaches the (local) SMTP server. Bounded: the test gives up after 4 minutes.
Run with ``uv run pytest -m slow -s ml_assets_tests/e2e/test_daemon.py`` to see the figures.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest
import yaml

from ml_assets.automation.smtp_sink import Inbox, start_sink
from ml_assets.definitions import build_defs
from ml_assets.execution import FEATURES_JOB, REFERENCE_JOB
from ml_assets.operations.materialize import materialize_days, materialize_range
from ml_assets.settings import PROJECT_ROOT, Settings
from ml_assets.sources.landing_files import days_between, land
from ml_assets_tests.automation.conftest import free_port
from ml_assets_tests.conftest import SMALL_CATALOG, write_catalog

pytestmark = pytest.mark.slow
BIN = Path(sys.executable).parent
HISTORY = days_between("2013-01-01", "2013-01-07")  # enough for a 6-day training window
NEW_DAY = "2013-01-08"
DEADLINE_S = 240


def instance_yaml(home: Path) -> dict:
    """The project's instance settings with absolute paths (daemon, code server and runs agree)."""
    config = yaml.safe_load((PROJECT_ROOT / "dagster.yaml").read_text())
    config["storage"] = {"sqlite": {"base_dir": str(home / "storage")}}
    config["local_artifact_storage"]["config"]["base_dir"] = str(home)
    config["compute_logs"]["config"]["base_dir"] = str(home / "logs")
    return config


def write_workspace(path: Path) -> Path:
    """A workspace with the one code location, ml_assets.definitions."""
    location = {
        "module_name": "ml_assets.definitions",
        "location_name": "ml_assets",
        "working_directory": str(PROJECT_ROOT),
    }
    path.write_text(yaml.safe_dump({"load_from": [{"python_module": location}]}))
    return path


@pytest.fixture
def deployment(tmp_path: Path):
    """A DAGSTER_HOME, a workspace on ml_assets.definitions, an SMTP sink and the landed history."""
    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text(yaml.safe_dump(instance_yaml(home)))
    write_workspace(tmp_path / "workspace.yaml")
    inbox, port = Inbox(), free_port()
    sink = start_sink("127.0.0.1", port, inbox)
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "ML_ASSETS_ROOT": str(tmp_path),
        "ML_ASSETS_EXECUTOR": "in_process",
        "ML_ASSETS_CATALOG": str(write_catalog(tmp_path / "catalog.yaml", SMALL_CATALOG)),
        "ML_ASSETS_WINDOW_DAYS": "6",
        "ML_ASSETS_HOLDOUT_DAYS": "2",
        "ML_ASSETS_MIN_TRAINING_ROWS": "2000",
        "ML_ASSETS_AUC_GATE": "0.6",
        "ML_ASSETS_SMTP_PORT": str(port),
        "ML_ASSETS_SMTP_RECIPIENTS": "oncall@example.com",
        "ML_ASSETS_LANDING_SENSOR_INTERVAL": "5",
        "PATH": f"{BIN}:{os.environ['PATH']}",
    }
    settings = Settings.from_env(env)
    land(settings.landing_base, HISTORY[0], HISTORY[-1])
    with dg.DagsterInstance.from_config(str(home)) as instance:
        defs = build_defs(settings)
        runs = materialize_days(defs, instance, REFERENCE_JOB, [None])
        runs.append(materialize_range(defs, instance, FEATURES_JOB, HISTORY[0], HISTORY[-1]))
        assert all(r.success for r in runs)
        yield env, tmp_path, home, settings, inbox, instance
    sink.stop()


def stop_daemon(daemon: subprocess.Popen, log) -> None:
    """SIGTERM the daemon's process group (SIGKILL after 30 s), then close its log."""
    os.killpg(daemon.pid, signal.SIGTERM)
    try:
        daemon.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(daemon.pid, signal.SIGKILL)
    log.close()


def landing_runs(instance: dg.DagsterInstance) -> list[dg.RunRecord]:
    return list(
        instance.get_run_records(filters=dg.RunsFilter(tags={"ml_assets/trigger": "landing"}))
    )


def test_daemon_runs_a_newly_landed_day_and_emails_the_deployment(deployment) -> None:
    env, root, home, settings, inbox, instance = deployment
    log = (root / "daemon.log").open("w")
    started = time.monotonic()
    daemon = subprocess.Popen(
        [BIN / "dagster-daemon", "run", "-w", str(root / "workspace.yaml")],
        cwd=root,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        landed = subprocess.run(
            [BIN / "ml-assets", "land", "--start", NEW_DAY, "--end", NEW_DAY],
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert landed.returncode == 0, landed.stderr
        landed_at = time.monotonic()
        run = None
        while time.monotonic() - started < DEADLINE_S:
            records = landing_runs(instance)
            if records and records[0].dagster_run.is_finished:
                run = records[0]
                break
            assert daemon.poll() is None, (root / "daemon.log").read_text()[-3000:]
            time.sleep(2)
        finished_at = time.monotonic()
        assert run is not None, (
            "no landing run finished in time:\n" + (root / "daemon.log").read_text()[-3000:]
        )
        mails = inbox.wait_for(1, timeout_s=max(1.0, DEADLINE_S - (time.monotonic() - started)))
        mailed_at = time.monotonic()
    finally:
        stop_daemon(daemon, log)

    # Only the new day ran: the history was already ingested after it landed.
    assert [r.dagster_run.tags["dagster/partition"] for r in landing_runs(instance)] == [NEW_DAY]
    assert run.dagster_run.job_name == "daily_pipeline"
    assert run.dagster_run.status == dg.DagsterRunStatus.SUCCESS, (root / "daemon.log").read_text()[
        -3000:
    ]
    assert run.dagster_run.tags["dagster/run_key"].startswith(f"{NEW_DAY}:")
    decision = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey("deployed_model"), asset_partitions=[NEW_DAY]),
        limit=1,
    ).records
    assert decision and decision[0].run_id == run.dagster_run.run_id

    subjects = [" ".join(str(m["Subject"]).split()) for m in mails]
    assert any(s.startswith(f"[ml_assets] {NEW_DAY}: Best AUC ") for s in subjects), subjects
    body = next(m for m in mails if "Best AUC" in str(m["Subject"])).get_content()
    assert f"runs/{run.dagster_run.run_id}" in body and "Champion" in body
    print(
        f"\ndaemon e2e: land -> run finished {finished_at - landed_at:.0f} s "
        f"(run itself {run.end_time - run.start_time:.0f} s), "
        f"land -> email {mailed_at - landed_at:.0f} s, "
        f"daemon start -> land {landed_at - started:.0f} s"
    )
