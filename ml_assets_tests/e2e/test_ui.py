"""Slow end-to-end: the UI as users use it, through ``ml-assets up`` (webserver + daemon).

One module fixture prepares a temporary root (landed January days, features already built, an
instance in a temporary ``DAGSTER_HOME``) and starts ``ml-assets up`` on a free port. The tests
then act as a user does, in order: read the asset graph over GraphQL, materialize one partition,
backfill a date range, land a new day and watch the landing sensor run it, read the asset checks,
look at the pages in headless Chromium (screenshots in ``.test-artifacts/ui/``), and stop ``up``.
Every wait is bounded by ``WAIT_S``.
Run: ``uv run pytest -m slow -s ml_assets_tests/e2e/test_ui.py``.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import dagster as dg
import pytest
import yaml

from ml_assets.automation.smtp_sink import Inbox, start_sink
from ml_assets.definitions import build_defs
from ml_assets.execution import DAILY_GROUPS, DAILY_JOB, FEATURES_JOB, REFERENCE_JOB
from ml_assets.operations import backfill_plan as bp
from ml_assets.operations.backfill_launch import (
    launch_backfill,
    launch_range_run,
    partitioned_assets,
    wait_run,
)
from ml_assets.operations.materialize import materialize_days, materialize_range
from ml_assets.operations.supervisor import graphql
from ml_assets.settings import PROJECT_ROOT, Settings
from ml_assets.sources.landing_files import days_between, land
from ml_assets_tests.conftest import SMALL_CATALOG, write_catalog

pytestmark = pytest.mark.slow
T = TypeVar("T")

BIN = Path(sys.executable).parent
ARTIFACTS = PROJECT_ROOT / ".test-artifacts" / "ui"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
WAIT_S = 240
HISTORY = days_between("2013-01-01", "2013-01-16")  # landed and ingested before `up` starts
ONE_DAY = HISTORY[-1]  # materialized again from the UI
BACKFILL = HISTORY[-3:]  # training -> deployment, backfilled from the UI
NEW_DAY = "2013-01-17"  # landed while `up` runs: the landing sensor's run
REPO = {"repositoryLocationName": "ml_assets", "repositoryName": "__repository__"}
MODELS = sorted(f"model__{entry['name']}" for entry in SMALL_CATALOG["models"])


@dataclass
class Deployment:
    """``ml-assets up`` running over a temporary root; ``url`` answers GraphQL."""

    root: Path
    env: dict[str, str]
    process: subprocess.Popen
    log: Path
    url: str
    pids: dict[str, int]
    launched: dict[str, str] = field(default_factory=dict)

    def query(self, query: str, **variables: object) -> dict:
        return graphql(self.url, query, variables, timeout=30)

    def log_tail(self, chars: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-chars:]

    def stop(self) -> int:
        """SIGTERM to ``up`` (handled like Ctrl-C), bounded wait; returns its exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        return self.process.returncode


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(what: str, probe: Callable[[], T | None], timeout_s: float = WAIT_S) -> T:
    """Poll ``probe`` every 2 s until it returns something truthy; fail after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"gave up after {timeout_s} s waiting for {what}")
        time.sleep(2)


def instance_yaml(home: Path) -> dict:
    """At most 5 concurrent runs (the project's queue), telemetry off, absolute storage paths."""
    project = yaml.safe_load((PROJECT_ROOT / "dagster.yaml").read_text())
    return {
        "storage": {"sqlite": {"base_dir": str(home / "storage")}},
        "compute_logs": {
            "module": "dagster._core.storage.local_compute_log_manager",
            "class": "LocalComputeLogManager",
            "config": {"base_dir": str(home / "logs")},
        },
        "run_queue": {**project["run_queue"], "max_concurrent_runs": 5},
        "telemetry": {"enabled": False},
        "nux": {"enabled": False},
    }


@pytest.fixture(scope="module")
def ui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    root = tmp_path_factory.mktemp("ui")
    home = root / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text(yaml.safe_dump(instance_yaml(home)))
    smtp_port, port = free_port(), free_port()
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "ML_ASSETS_ROOT": str(root),
        "ML_ASSETS_LANDING": str(root / ".landing"),
        "ML_ASSETS_LAKE": str(root / ".lake"),
        "ML_ASSETS_CATALOG": str(write_catalog(root / "catalog.yaml", SMALL_CATALOG)),
        "ML_ASSETS_WINDOW_DAYS": "10",
        "ML_ASSETS_HOLDOUT_DAYS": "3",
        "ML_ASSETS_MIN_TRAINING_ROWS": "2000",
        "ML_ASSETS_AUC_GATE": "0.6",
        "ML_ASSETS_EXECUTOR": "in_process",
        "ML_ASSETS_LANDING_SENSOR_INTERVAL": "5",
        "ML_ASSETS_SMTP_PORT": str(smtp_port),
        "PATH": f"{BIN}:{os.environ['PATH']}",
    }
    settings = Settings.from_env(env)
    started = time.monotonic()
    land(settings.landing_base, HISTORY[0], HISTORY[-1])
    with dg.DagsterInstance.from_config(str(home)) as instance:
        defs = build_defs(settings)
        seeded = materialize_days(defs, instance, REFERENCE_JOB, [None])
        seeded.append(materialize_range(defs, instance, FEATURES_JOB, HISTORY[0], HISTORY[-1]))
    assert all(run.success for run in seeded), seeded
    seeded_at = time.monotonic()

    sink = start_sink("127.0.0.1", smtp_port, Inbox())  # the email sensors' SMTP server
    log = root / "up.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [BIN / "ml-assets", "up", "--port", str(port), "--timeout", str(WAIT_S)],
            cwd=root,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"

    def ready() -> re.Match | None:
        assert process.poll() is None, log.read_text()[-4000:]
        return re.search(rf"Dagster UI: {url} +\((.*?); Ctrl-C", log.read_text())

    try:
        line = wait_for("ml-assets up to report a healthy UI", ready)
        pids = {m[0]: int(m[1]) for m in re.findall(r"(\w+) pid (\d+)", line[1])}
        print(
            f"\nui e2e: landed and seeded {len(seeded)} runs in {seeded_at - started:.0f} s, "
            f"`ml-assets up` healthy after {time.monotonic() - seeded_at:.0f} s"
        )
        yield Deployment(root, env, process, log, url, pids)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
        sink.stop()


RUN = """query($id: ID!) { runOrError(runId: $id) { __typename
  ... on Run { status tags { key value } }
  ... on PythonError { message } } }"""
RUN_FAILURES = """query($id: ID!) { logsForRun(runId: $id, limit: 5000) {
  ... on EventConnection { events { \
... on ExecutionStepFailureEvent { stepKey error { message } } } } } }"""


def finished_run(ui: Deployment, run_id: str) -> dict:
    """Wait for a run to finish; fail with its step errors unless it succeeded."""

    def done() -> dict | None:
        run = ui.query(RUN, id=run_id)["runOrError"]
        return run if run["status"] in ("SUCCESS", "FAILURE", "CANCELED") else None

    run = wait_for(f"run {run_id}", done)
    if run["status"] != "SUCCESS":
        events = ui.query(RUN_FAILURES, id=run_id)["logsForRun"]["events"]
        errors = [f"{e['stepKey']}: {e['error']['message']}" for e in events if e.get("error")]
        pytest.fail(f"run {run_id} ended {run['status']}: {errors}")
    return run


def test_up_reports_webserver_and_daemons_healthy(ui: Deployment) -> None:
    health = ui.query(
        "{ version instance { daemonHealth { "
        "allDaemonStatuses { daemonType required healthy } } } }"
    )
    statuses = health["instance"]["daemonHealth"]["allDaemonStatuses"]
    required = {s["daemonType"]: s["healthy"] for s in statuses if s["required"]}
    assert {"SENSOR", "SCHEDULER", "BACKFILL", "QUEUED_RUN_COORDINATOR"} <= set(required)
    assert all(required.values()), required
    assert health["version"].startswith("1.13")
    assert set(ui.pids) == {"webserver", "daemon"}


ASSET_NODES = """{ assetNodes { assetKey { path } dependencyKeys { path } groupName kinds \
description
  isPartitioned owners { ... on TeamAssetOwner { team } ... on UserAssetOwner { email } } } }"""


def test_asset_graph_has_fan_in_diamond_fan_out_and_metadata(ui: Deployment) -> None:
    nodes = {n["assetKey"]["path"][-1]: n for n in ui.query(ASSET_NODES)["assetNodes"]}
    deps = {name: {d["path"][-1] for d in n["dependencyKeys"]} for name, n in nodes.items()}
    # fan-in: three sources meet in the flight features
    assert {"raw_flights", "raw_weather", "planes"} <= deps["flight_features"]
    # diamond: raw_flights -> (flight_features | traffic_features) -> training_set
    assert {"flight_features", "traffic_features"} <= deps["training_set"]
    assert "raw_flights" in deps["traffic_features"]
    # fan-out: one model asset per catalog entry, each fed by the training set alone
    assert sorted(n for n in nodes if n.startswith("model__")) == MODELS
    assert all(deps[m] == {"training_set"} for m in MODELS)
    # fan-in again: every model meets in the leaderboard, which gates the deployment
    assert set(MODELS) <= deps["model_leaderboard"]
    assert "model_leaderboard" in deps["deployed_model"]
    for name, node in nodes.items():
        assert node["description"], f"{name} has no description"
        assert node["owners"] and node["kinds"], f"{name} lacks owners or kinds"
        assert node["groupName"] != "default", f"{name} is in no group"
    assert nodes["deployed_model"]["isPartitioned"] and not nodes["planes"]["isPartitioned"]
    assert "lightgbm" in nodes[MODELS[0]]["kinds"]


LAUNCH_RUN = """mutation($params: ExecutionParams!) { launchRun(executionParams: $params) {
  __typename ... on LaunchRunSuccess { run { runId } } ... on PythonError { message }
  ... on RunConfigValidationInvalid { errors { message } } } }"""
LATEST_MATERIALIZATION = """query($key: AssetKeyInput!, $partitions: [String!]) {
  assetNodeOrError(assetKey: $key) { ... on AssetNode {
    latestMaterializationByPartition(partitions: $partitions) { runId partition } } } }"""


def test_materialize_one_partition_of_the_features_job(ui: Deployment) -> None:
    params = {
        "selector": {**REPO, "jobName": FEATURES_JOB},
        "runConfigData": {},
        "executionMetadata": {"tags": [{"key": "dagster/partition", "value": ONE_DAY}]},
    }
    launched = ui.query(LAUNCH_RUN, params=params)["launchRun"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    run_id = launched["run"]["runId"]
    run = finished_run(ui, run_id)
    assert {"key": "dagster/partition", "value": ONE_DAY} in run["tags"]
    for asset in ("raw_flights", "flight_features", "traffic_features"):
        latest = ui.query(LATEST_MATERIALIZATION, key={"path": [asset]}, partitions=[ONE_DAY])
        [event] = latest["assetNodeOrError"]["latestMaterializationByPartition"]
        assert event == {"runId": run_id, "partition": ONE_DAY}, asset


BACKFILL_STATUS = """query($id: String!) { partitionBackfillOrError(backfillId: $id) {
  ... on PartitionBackfill { status runs { runId status }
    assetBackfillData { assetBackfillStatuses { ... on AssetPartitionsStatusCounts {
      assetKey { path } numPartitionsTargeted numPartitionsMaterialized numPartitionsFailed \
} } } } } }"""


def test_backfill_ingestion_to_deployment_over_a_date_range(ui: Deployment) -> None:
    """The whole daily graph over BACKFILL through the daemon's backfill loop and the run queue:
    one run over the range, ingestion to deployment (``model_runs="range"``)."""
    selection = partitioned_assets(ui.url, DAILY_GROUPS)  # as `ml-assets backfill` launches it
    backfill_id = launch_backfill(
        ui.url,
        BACKFILL[0],
        BACKFILL[-1],
        selection,
        "e2e: ingestion to deployment",
        tags=[{"key": "ml_assets/launched_by", "value": "e2e-ui"}],
    )
    ui.launched["backfill"] = backfill_id

    def finished() -> dict | None:
        backfill = ui.query(BACKFILL_STATUS, id=backfill_id)["partitionBackfillOrError"]
        return backfill if backfill["status"] not in ("REQUESTED", "CANCELING", "FAILING") else None

    backfill = wait_for(f"backfill {backfill_id} over {BACKFILL}", finished)
    assert backfill["status"] == "COMPLETED_SUCCESS", backfill
    counts = {
        s["assetKey"]["path"][-1]: s for s in backfill["assetBackfillData"]["assetBackfillStatuses"]
    }
    assert {"raw_flights", "online_features", "training_set", "deployed_model", *MODELS} <= set(
        counts
    )
    for asset, status in counts.items():
        assert status["numPartitionsMaterialized"] == len(BACKFILL), (asset, status)
        assert status["numPartitionsFailed"] == 0, (asset, status)
    assert {r["status"] for r in backfill["runs"]} == {"SUCCESS"}
    runs = {r["runId"] for r in backfill["runs"]}
    # one range run: raw data to deployment
    assert len(runs) == 1
    with dg.DagsterInstance.from_config(ui.env["DAGSTER_HOME"]) as instance:
        for asset in counts:
            by_day = _days_materialized(instance, asset, runs)
            assert sorted(by_day) == BACKFILL, (asset, by_day)  # each day exactly once
        tags = [instance.get_run_by_id(run_id).tags for run_id in runs]
        # the plan made from the runs before it predicted these runs and steps
        settings = Settings.from_env(ui.env)
        defs = build_defs(settings)
        steps = bp.collect_steps(defs, DAILY_JOB)
        actual = bp.actual_backfill(instance, backfill_id, steps, bp.prices_from(settings))
        plan = bp.plan_from_instance(
            defs, instance, settings, DAILY_JOB, BACKFILL, before=actual.requested_at
        )
    print("\n" + bp.format_compare(plan, actual))
    assert (actual.runs, actual.steps) == (len(plan.runs), plan.steps)
    assert actual.cpu_hours > 0 and actual.gpu_hours > 0  # model__gbdt has the gpu profile
    ranged = [t for t in tags if "dagster/asset_partition_range_start" in t]
    assert len(ranged) == 1 and {t["dagster/asset_partition_range_end"] for t in ranged} == {
        BACKFILL[-1]
    }


def _days_materialized(instance: dg.DagsterInstance, asset: str, runs: set[str]) -> list[str]:
    """The BACKFILL days of ``asset`` materialized by ``runs``, once per materialization."""
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), asset_partitions=BACKFILL),
        limit=1000,
    ).records
    return [r.partition_key for r in records if r.run_id in runs]


def test_single_run_over_a_range_as_the_launch_dialog_offers_it(ui: Deployment) -> None:
    """``ml-assets backfill --single-run``: the launch dialog's *Launch as... Single run*, one
    run of the asset job tagged with the range, through the run queue, no backfill."""
    selection = partitioned_assets(ui.url, ("raw", "features"))
    run_id = launch_range_run(ui.url, BACKFILL[0], BACKFILL[-1], selection, "e2e: single run")
    assert wait_run(ui.url, run_id, timeout_s=WAIT_S) == "SUCCESS", ui.log_tail()
    with dg.DagsterInstance.from_config(ui.env["DAGSTER_HOME"]) as instance:
        tags = instance.get_run_by_id(run_id).tags
        assert tags["dagster/asset_partition_range_start"] == BACKFILL[0]
        assert tags["dagster/asset_partition_range_end"] == BACKFILL[-1]
        assert "dagster/backfill" not in tags and "dagster/partition" not in tags
        for asset in ("raw_flights", "flight_features", "online_features"):
            by_day = _days_materialized(instance, asset, {run_id})
            assert sorted(by_day) == BACKFILL, (asset, by_day)
        evaluated = {
            (e.asset_key.to_user_string(), e.check_name)
            for e in (
                record.dagster_event.event_specific_data
                for record in instance.all_logs(
                    run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION
                )
            )
        }
    # the contracts ran as steps; freshness is the sensor's, as in the code location's jobs
    assert ("raw_flights", "contract") in evaluated and ("flight_features", "contract") in evaluated
    assert not {name for _, name in evaluated} & {"partition_freshness"}, evaluated


SENSOR_RUNS = """query($tags: [ExecutionTag!]) { runsOrError(filter: {tags: $tags}) {
  ... on Runs { results { runId jobName status tags { key value } } } } }"""
SENSOR_TICKS = """query($selector: SensorSelector!) { sensorOrError(sensorSelector: $selector) {
  ... on Sensor { sensorState { status ticks(limit: 50) { status runIds } } } } }"""


def test_landing_sensor_runs_a_newly_landed_day(ui: Deployment) -> None:
    settings = Settings.from_env(ui.env)
    land(settings.landing_base, NEW_DAY, NEW_DAY)
    by_sensor = [{"key": "dagster/sensor_name", "value": "landing_sensor"}]

    def launched() -> list[dict]:
        return ui.query(SENSOR_RUNS, tags=by_sensor)["runsOrError"]["results"]

    runs = wait_for(f"the landing sensor's run for {NEW_DAY}", launched)
    partitions = [{t["key"]: t["value"] for t in r["tags"]}["dagster/partition"] for r in runs]
    assert partitions == [NEW_DAY]  # the history was ingested before `up` started
    run = runs[0]
    assert run["jobName"] == "daily_pipeline"
    ui.launched["sensor_run"] = run["runId"]
    finished_run(ui, run["runId"])
    assert [r["runId"] for r in launched()] == [run["runId"]]
    sensor = ui.query(SENSOR_TICKS, selector={**REPO, "sensorName": "landing_sensor"})
    state = sensor["sensorOrError"]["sensorState"]
    assert state["status"] == "RUNNING"
    assert any(run["runId"] in tick["runIds"] for tick in state["ticks"])


CHECKS = """{ assetNodes { assetKey { path } assetChecksOrError { ... on AssetChecks { checks {
  name blocking executionForLatestMaterialization { runId status partition
    evaluation { success severity description } } } } } } }"""


def test_asset_checks_ran_with_the_sensor_run(ui: Deployment) -> None:
    run_id = ui.launched.get("sensor_run")
    if run_id is None:
        pytest.skip("the landing sensor's run did not happen (see the test before)")
    results = {}
    for node in ui.query(CHECKS)["assetNodes"]:
        for check in node["assetChecksOrError"].get("checks", []):
            execution = check["executionForLatestMaterialization"]
            if execution and execution["runId"] == run_id:
                results[f"{node['assetKey']['path'][-1]}:{check['name']}"] = execution
    assert {"training_set:contract", "raw_flights:contract", "flight_features:contract"} <= set(
        results
    ), sorted(results)
    failed = {
        name: e
        for name, e in results.items()
        if e["status"] != "SUCCEEDED" and (e["evaluation"] or {}).get("severity") != "WARN"
    }
    assert not failed, failed
    assert all(e["partition"] == NEW_DAY for e in results.values())
    assert results["training_set:contract"]["status"] == "SUCCEEDED"


NODE_DETAILS_LOADED = """() => { const text = document.body.innerText;
  return text.includes("365 partitions") && !text.includes("Loading"); }"""


def test_browser_shows_graph_partitions_and_backfill(ui: Deployment) -> None:
    from playwright.sync_api import expect, sync_playwright

    assert Path(CHROMIUM).exists(), "needs Debian's chromium: apt-get install -y chromium"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    backfill_id = ui.launched.get("backfill")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        expect.set_options(timeout=60_000)
        # The graph in its own context, navigation hidden: wide enough for the nodes' details
        # (latest event, checks, partitions); tall for the feast multi-asset's six outputs.
        graph = browser.new_page(viewport={"width": 2400, "height": 2400})
        graph.set_default_timeout(60_000)
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        page.set_default_timeout(60_000)
        try:
            graph.goto(f"{ui.url}/runs")
            graph.get_by_role("button", name="Hide navigation").click()
            graph.goto(
                f"{ui.url}/assets/deployed_model?view=lineage&lineageScope=upstream&lineageDepth=10"
            )
            for asset in ("raw_flights", "flight_features", "training_set", "model_leaderboard"):
                expect(graph.get_by_text(asset, exact=True).first).to_be_visible()
            for asset in MODELS:
                expect(graph.get_by_text(asset, exact=True).first).to_be_visible()
            graph.wait_for_function(NODE_DETAILS_LOADED)
            graph.screenshot(path=ARTIFACTS / "asset-graph.png")

            page.goto(f"{ui.url}/assets/deployed_model?view=partitions&partition={NEW_DAY}")
            materialized = len(BACKFILL) + ("sensor_run" in ui.launched)
            expect(page.get_by_text(f"Materialized ({materialized})")).to_be_visible()
            selection = page.get_by_placeholder(re.compile(r"^ex: "))
            selection.fill("[2013-01-01...2013-01-31]")
            selection.press("Enter")
            page.get_by_text("Missing (", exact=False).click()
            expect(page.get_by_text(f"{materialized} Partitions Selected")).to_be_visible()
            expect(page.get_by_text("promoted", exact=True).first).to_be_visible()
            page.screenshot(path=ARTIFACTS / "deployed-model-partitions.png")

            assert backfill_id, "the backfill test did not launch a backfill"
            page.goto(f"{ui.url}/runs/b/{backfill_id}")
            expect(page.get_by_text("Succeeded", exact=True).first).to_be_visible()
            expect(page.get_by_text("deployed_model", exact=True).first).to_be_visible()
            assert page.get_by_text("100% completed").count() >= len(MODELS) + 3
            page.screenshot(path=ARTIFACTS / "backfill.png")
        finally:
            graph.screenshot(path=ARTIFACTS / "last-graph.png")
            page.screenshot(path=ARTIFACTS / "last-page.png")
            browser.close()


def test_up_stops_webserver_and_daemon_on_sigterm(ui: Deployment) -> None:
    assert ui.stop() == 0, ui.log_tail()
    assert "stopping the webserver and daemon" in ui.log.read_text()

    def gone() -> bool:
        return not any(Path(f"/proc/{pid}").exists() for pid in ui.pids.values())

    wait_for("the webserver and the daemon to exit", gone, timeout_s=30)
