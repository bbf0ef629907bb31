"""Slow end-to-end: a run worker killed part way through training is detected and its run is
retried from the failed step, which resumes from the training checkpoint.

The real ``dagster-daemon`` with the project's ``dagster.yaml`` (run monitoring, run retries)
launches ``models_pipeline[DAY]`` through its code server. While ``model__slow`` trains (after
``model__fast`` succeeded), ``step_watchdog`` emails a slow-step alert (hard warning lowered to
1 s), then the test SIGKILLs the run worker. The code server marks the run failed
(``email_on_failure`` says so), run retries launch a FROM_FAILURE retry that runs only
``model__slow``, and that step continues from its last checkpoint.
``uv run pytest -m slow -s`` prints the figures.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest
import yaml

from ml_assets.automation.smtp_sink import Inbox
from ml_assets.execution import MODELS_JOB
from ml_assets.resources.checkpoint_store import CheckpointStore
from ml_assets.settings import Settings
from ml_assets_tests import _samples
from ml_assets_tests.conftest import write_catalog
from ml_assets_tests.e2e.test_daemon import instance_yaml, stop_daemon, write_workspace

pytestmark = pytest.mark.slow
BIN = Path(sys.executable).parent
FIRST, DAY = "2013-02-05", "2013-02-14"
ROUNDS, EVERY, KILL_AFTER = 2500, 25, 100
SLOW_ALERT = "step model__slow: still running"
PARAMS = {"boosting": "gbdt", "learning_rate": 0.02, "num_leaves": 15, "feature_fraction": 0.8}
CATALOG = {
    "models": [
        {"name": "fast", "params": PARAMS, "num_boost_round": 5},
        {"name": "slow", "params": PARAMS, "num_boost_round": ROUNDS},
    ]
}
DEADLINE_S = 240


def wait_for(what: str, probe, log: Path, timeout_s: float = DEADLINE_S):
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        found = probe()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}:\n{log.read_text()[-3000:]}")


def steps_started(instance: dg.DagsterInstance, run_id: str) -> set[str]:
    events = instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_START)
    return {e.step_key for e in events}


def subjects(inbox: Inbox) -> list[str]:
    return [" ".join(str(m["Subject"]).split()) for m in inbox.messages]


def test_killed_run_worker_is_retried_from_the_failed_step(tmp_path: Path, inbox) -> None:
    inbox, port = inbox
    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text(yaml.safe_dump(instance_yaml(home)))
    workspace = write_workspace(tmp_path / "workspace.yaml")
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "ML_ASSETS_ROOT": str(tmp_path),
        "ML_ASSETS_EXECUTOR": "in_process",
        "ML_ASSETS_CATALOG": str(write_catalog(tmp_path / "catalog.yaml", CATALOG)),
        "ML_ASSETS_CHECKPOINT_EVERY": str(EVERY),
        "ML_ASSETS_SMTP_PORT": str(port),
        "ML_ASSETS_SLOW_STEP_WARNING_S": "1",
        "ML_ASSETS_WATCHDOG_INTERVAL": "1",
        "PATH": f"{BIN}:{os.environ['PATH']}",
    }
    settings = Settings.from_env(env)
    lake = Path(settings.lake_base) / "training_set"
    lake.mkdir(parents=True)
    _samples.training_set(FIRST, DAY).to_parquet(lake / f"{DAY}.parquet")
    checkpoint = CheckpointStore(settings.lake_base, "model__slow", DAY).path
    log_path = tmp_path / "daemon.log"
    log = log_path.open("w")
    dg.DagsterInstance.from_config(str(home)).dispose()  # storage created before two processes race
    daemon = subprocess.Popen(
        [BIN / "dagster-daemon", "run", "-w", str(workspace)],
        cwd=tmp_path,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        launched = subprocess.run(
            [
                BIN / "dagster",
                "job",
                "launch",
                "-w",
                str(workspace),
                "-j",
                MODELS_JOB,
                "--tags",
                json.dumps({"dagster/partition": DAY}),
            ],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert launched.returncode == 0, launched.stderr[-3000:]
        with dg.DagsterInstance.from_config(str(home)) as instance:
            [first] = instance.get_runs(filters=dg.RunsFilter(job_name=MODELS_JOB))

            def slow_step_alerted() -> bool:
                # model__fast may be alerted too on a busy machine (it is past the 1 s as well)
                return any(SLOW_ALERT in m.get_content() for m in inbox.messages)

            wait_for("the slow-step alert while model__slow trains", slow_step_alerted, log_path)
            assert instance.get_run_by_id(first.run_id).status == dg.DagsterRunStatus.STARTED

            def worker_pid() -> int | None:
                if not checkpoint.exists():
                    return None
                if json.loads(checkpoint.read_bytes())["iteration"] < KILL_AFTER:
                    return None
                for event in instance.all_logs(
                    first.run_id, of_type=dg.DagsterEventType.ENGINE_EVENT
                ):
                    found = re.match(r"Executing steps in process \(pid: (\d+)\)", event.message)
                    if found:
                        return int(found.group(1))
                return None

            pid = wait_for("model__slow's checkpoint", worker_pid, log_path)
            killed_at = json.loads(checkpoint.read_bytes())["iteration"]
            os.kill(pid, signal.SIGKILL)
            killed = time.monotonic()

            def failed() -> dg.DagsterRun | None:
                run = instance.get_run_by_id(first.run_id)
                return run if run.status == dg.DagsterRunStatus.FAILURE else None

            wait_for("the killed run to be marked failed", failed, log_path, 60)
            detected = time.monotonic()

            def retried() -> dg.DagsterRun | None:
                runs = instance.get_runs(
                    filters=dg.RunsFilter(tags={"dagster/parent_run_id": first.run_id})
                )
                return runs[0] if runs and runs[0].is_finished else None

            retry = wait_for("the retry to finish", retried, log_path)
            finished = time.monotonic()
            crash = [
                e.message
                for e in instance.all_logs(first.run_id, of_type=dg.DagsterEventType.ENGINE_EVENT)
                if "SIGKILL" in e.message
            ]
            started_first = steps_started(instance, first.run_id)
            started_retry = steps_started(instance, retry.run_id)
            [record] = instance.fetch_materializations(
                dg.AssetRecordsFilter(asset_key=dg.AssetKey("model__slow")), limit=1
            ).records
            facts = {k: v.value for k, v in record.asset_materialization.metadata.items()}
            failure = wait_for(
                "the failure email",
                lambda: [m for m in inbox.messages if "FAILED" in str(m["Subject"])],
                log_path,
                60,
            )[0].get_content()
    finally:
        stop_daemon(daemon, log)

    assert crash, "no engine event explains the failure"
    alert = next(m.get_content() for m in inbox.messages if SLOW_ALERT in m.get_content())
    assert f"[slow_step] {MODELS_JOB}[{DAY}] run {first.run_id[:8]} step model__slow: " in alert
    assert "past the 1 s warning" in alert
    assert f"Run {first.run_id} of job {MODELS_JOB} failed." in failure
    assert "last engine event: [DagsterApiServer] Run execution process" in failure
    assert "terminated by signal 9 (SIGKILL)" in failure
    assert started_first == {"model__fast", "model__slow"}
    assert retry.status == dg.DagsterRunStatus.SUCCESS, log_path.read_text()[-3000:]
    assert retry.tags["dagster/retry_number"] == "1"
    assert retry.tags["dagster/is_resume_retry"] == "true"  # FROM_FAILURE: resumes the run
    assert started_retry == {"model__slow"}  # only the failed step, not model__fast
    assert record.run_id == retry.run_id
    assert facts["resumed_from_iteration"] >= killed_at >= KILL_AFTER
    assert facts["iterations_trained"] == ROUNDS - facts["resumed_from_iteration"]
    assert not checkpoint.exists()
    print(
        f"\nslow-step alert while running:\n{alert}\nfailure email:\n{failure}\n"
        f"killed run worker: {crash[0]}\n"
        f"  killed at checkpoint {killed_at}/{ROUNDS}; marked failed after "
        f"{detected - killed:.1f} s; retry {retry.run_id[:8]} "
        f"ran {sorted(started_retry)}, resumed from {facts['resumed_from_iteration']} and trained "
        f"{facts['iterations_trained']} rounds; kill -> retry finished {finished - killed:.1f} s"
    )
