"""Launch and watch an asset backfill through the webserver's GraphQL API (``ml-assets backfill``).

An asset backfill honours each asset's ``BackfillPolicy``: the single-run assets (raw, features)
run once over the range, the others once per day; the daemon's backfill loop submits the runs
through the run queue (5 at a time). A backfill of the *job* (``dagster job backfill``, the job's
page) runs the whole job once per day instead.

When every asset is single-run, the UI's launch dialog also offers *Launch as… Single run*: one
run of the asset job tagged with the range (:func:`launch_range_run`), queued at once instead of
at the backfill daemon's next tick (every 30 s), but not listed among the backfills.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Mapping, Sequence

from ml_assets.operations.supervisor import graphql

LAUNCH = """mutation($params: LaunchBackfillParams!) { \
launchPartitionBackfill(backfillParams: $params) {
  __typename ... on LaunchBackfillSuccess { backfillId } ... on PythonError { message }
  ... on InvalidSubsetError { message } ... on UnauthorizedError { message } } }"""
STATUS = """query($id: String!) { partitionBackfillOrError(backfillId: $id) {
  ... on PartitionBackfill { status numPartitions runs { status }
    assetBackfillData { assetBackfillStatuses { ... on AssetPartitionsStatusCounts {
      assetKey { path } numPartitionsTargeted numPartitionsMaterialized numPartitionsFailed \
} } } } } }"""
LAUNCH_RUN = """mutation($params: ExecutionParams!) { launchRun(executionParams: $params) {
  __typename ... on LaunchRunSuccess { run { runId } } ... on PythonError { message }
  ... on InvalidSubsetError { message } ... on UnauthorizedError { message }
  ... on RunConfigValidationInvalid { errors { message } } } }"""
RUN_STATUS = """query($id: ID!) { runOrError(runId: $id) { __typename ... on Run { status } } }"""
REPOSITORIES = (
    "{ repositoriesOrError { ... on RepositoryConnection { nodes { name location { name } \
} } } }"
)
ASSET_JOB = "__ASSET_JOB"  # the code location's implicit job of all its assets
RANGE_TAGS = ("dagster/asset_partition_range_start", "dagster/asset_partition_range_end")
RUN_DONE = ("SUCCESS", "FAILURE", "CANCELED")
NODES = "{ assetNodes { assetKey { path } groupName isPartitioned } }"
CHECKS = """{ assetNodes { assetKey { path }
  assetChecksOrError { ... on AssetChecks { checks { name } } } } }"""
# ``freshness_policy.CHECK_NAME``: evaluated by the freshness sensor, never as a step of a run
SENSOR_EVALUATED_CHECK = "partition_freshness"
RUNNING = ("REQUESTED", "CANCELING", "FAILING")
ONE_DAY = dt.timedelta(days=1)


def partitioned_assets(url: str, groups: Sequence[str]) -> list[dict]:
    """Asset keys (GraphQL ``AssetKeyInput``) of the partitioned assets in ``groups``."""
    nodes = graphql(url, NODES, timeout=60)["assetNodes"]
    return [n["assetKey"] for n in nodes if n["groupName"] in groups and n["isPartitioned"]]


def launch_backfill(
    url: str, first: str, last: str, assets: list[dict], title: str, tags: Sequence[dict] = ()
) -> str:
    """Request an asset backfill of exactly ``first..last`` for every one of ``assets``; return
    its id. (Given root partitions instead, Dagster also targets every downstream day whose
    trailing window reaches into the range: up to a training window past its end.)"""
    selectors = [
        {"assetKey": key, "partitions": {"range": {"start": first, "end": last}}} for key in assets
    ]
    return _launch(url, selectors, title, tags)


def launch_range_run(
    url: str, first: str, last: str, assets: list[dict], title: str, tags: Sequence[dict] = ()
) -> str:
    """Launch one run of ``assets`` over ``first..last`` (every one single-run) with their checks
    (:func:`run_checks`), as the UI's *Launch as… Single run* does; return its run id."""
    repository = graphql(url, REPOSITORIES, timeout=60)["repositoriesOrError"]["nodes"][0]
    params = {
        "selector": {
            "repositoryLocationName": repository["location"]["name"],
            "repositoryName": repository["name"],
            "pipelineName": ASSET_JOB,
            "assetSelection": assets,
            "assetCheckSelection": run_checks(url, assets),
        },
        "executionMetadata": {
            "tags": [
                {"key": RANGE_TAGS[0], "value": first},
                {"key": RANGE_TAGS[1], "value": last},
                {"key": "ml_assets/title", "value": title},
                *tags,
            ]
        },
        "runConfigData": {},
    }
    launched = graphql(url, LAUNCH_RUN, {"params": params}, timeout=60)["launchRun"]
    if launched["__typename"] != "LaunchRunSuccess":
        raise RuntimeError(f"run not launched: {launched}")
    return launched["run"]["runId"]


def run_checks(url: str, assets: list[dict]) -> list[dict]:
    """The checks a run of ``assets`` executes (GraphQL ``AssetCheckHandleInput``): all of theirs
    but the sensor-evaluated freshness checks, as in the code location's jobs."""
    selected = {tuple(key["path"]) for key in assets}
    return [
        {"assetKey": node["assetKey"], "name": check["name"]}
        for node in graphql(url, CHECKS, timeout=60)["assetNodes"]
        if tuple(node["assetKey"]["path"]) in selected
        for check in node["assetChecksOrError"].get("checks", [])
        if check["name"] != SENSOR_EVALUATED_CHECK
    ]


def wait_run(url: str, run_id: str, timeout_s: float, poll_s: float = 2.0) -> str:
    """Poll until the run has ended; its status (``TimeoutError`` after ``timeout_s``)."""
    deadline = time.monotonic() + timeout_s
    while True:
        status = graphql(url, RUN_STATUS, {"id": run_id}, timeout=60)["runOrError"]["status"]
        if status in RUN_DONE:
            return status
        if time.monotonic() > deadline:
            raise TimeoutError(f"run {run_id} still {status} after {timeout_s} s")
        time.sleep(poll_s)


def launch_partitions(url: str, days_by_asset: Mapping[str, Sequence[str]], title: str) -> str:
    """Request an asset backfill of these days of each asset (``--only-stale``); return its id."""
    selectors = [
        {
            "assetKey": {"path": asset.split("/")},
            "partitions": {"ranges": [{"start": a, "end": b} for a, b in day_ranges(days)]},
        }
        for asset, days in sorted(days_by_asset.items())
        if days
    ]
    return _launch(url, selectors, title, ())


def day_ranges(days: Sequence[str]) -> list[tuple[str, str]]:
    """Consecutive days as ``(first, last)`` ranges."""
    ranges: list[tuple[str, str]] = []
    for day in sorted(days):
        if ranges and dt.date.fromisoformat(day) - dt.date.fromisoformat(ranges[-1][1]) == ONE_DAY:
            ranges[-1] = (ranges[-1][0], day)
        else:
            ranges.append((day, day))
    return ranges


def _launch(url: str, selectors: list[dict], title: str, tags: Sequence[dict]) -> str:
    params = {"partitionsByAssets": selectors, "title": title, "tags": list(tags)}
    launched = graphql(url, LAUNCH, {"params": params}, timeout=60)["launchPartitionBackfill"]
    if launched["__typename"] != "LaunchBackfillSuccess":
        raise RuntimeError(f"backfill not launched: {launched}")
    return launched["backfillId"]


def backfill_status(url: str, backfill_id: str) -> dict:
    return graphql(url, STATUS, {"id": backfill_id}, timeout=60)["partitionBackfillOrError"]


def progress_line(status: dict) -> str:
    counts = status["assetBackfillData"]["assetBackfillStatuses"]
    done = sum(c["numPartitionsMaterialized"] for c in counts)
    failed = sum(c["numPartitionsFailed"] for c in counts)
    targeted = sum(c["numPartitionsTargeted"] for c in counts)
    runs = status["runs"]
    finished = sum(r["status"] in ("SUCCESS", "FAILURE", "CANCELED") for r in runs)
    return (
        f"{status['status']}: {done}/{targeted} asset partitions materialized, {failed} failed; "
        f"runs {finished}/{len(runs)} finished"
    )


def wait_backfill(
    url: str,
    backfill_id: str,
    timeout_s: float,
    poll_s: float = 2.0,
    report: Callable[[dict], None] = lambda _: None,
) -> dict:
    """Poll until the backfill is no longer running; its final status (``TimeoutError`` after
    ``timeout_s``)."""
    deadline = time.monotonic() + timeout_s
    while True:
        status = backfill_status(url, backfill_id)
        report(status)
        if status["status"] not in RUNNING:
            return status
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"backfill {backfill_id} still {status['status']} after {timeout_s} s"
            )
        time.sleep(poll_s)
