"""A broken landed day in a real in-process pipeline: that day stops, good data and the deployed
model stay exactly as they were, the bad file is kept aside, nothing retries."""

from __future__ import annotations

import hashlib
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from ml_assets.definitions import build_defs
from ml_assets.execution import DAILY_JOB, FEATURES_JOB, REFERENCE_JOB
from ml_assets.operations.materialize import RunSummary, materialize_days
from ml_assets.sources.landing_files import days_between, land
from ml_assets_tests.conftest import small_settings

GOOD_DAY, DIRTY_DAY = "2013-01-06", "2013-01-07"  # GOOD_DAY is later re-landed truncated
DIRTY_ROWS = 20
CATALOG = {
    "models": [
        {
            "name": "gbdt",
            "params": {"learning_rate": 0.1, "num_leaves": 7},
            "num_boost_round": 15,
        }
    ]
}
DAY_FILES = (
    "raw_flights/{d}.parquet",
    "raw_weather/{d}.parquet",
    "flight_features/{d}.parquet",
    "traffic_features/{d}.parquet",
    "training_set/{d}.parquet",
    "model__gbdt/{d}.model.txt",
    "model_leaderboard/{d}.parquet",
    "deployed_model/{d}.json",
)
DOWNSTREAM = (
    "flight_features",
    "traffic_features",
    "training_set",
    "model__gbdt",
    "model_leaderboard",
    "deployed_model",
)


def _digests(root: Path, day: str) -> dict[str, str]:
    return {
        name: hashlib.sha256((root / name).read_bytes()).hexdigest()
        for name in (f.format(d=day) for f in DAY_FILES)
        if (root / name).exists()
    }


def _materialized(instance: dg.DagsterInstance, run: RunSummary) -> set[str]:
    events = instance.all_logs(run.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION)
    return {e.dagster_event.asset_key.to_user_string() for e in events if e.dagster_event}


def _failures(instance: dg.DagsterInstance, run: RunSummary) -> dict[str, str]:
    events = instance.all_logs(run.run_id, of_type=dg.DagsterEventType.STEP_FAILURE)
    return {
        e.step_key: (e.dagster_event.step_failure_data.user_failure_data.description or "")
        for e in events
        if e.dagster_event and e.step_key and e.dagster_event.step_failure_data.user_failure_data
    }


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory):
    """A good day, then a truncated re-landing of it, then a day with too many bad rows."""
    root = tmp_path_factory.mktemp("contracts_pipeline")
    landing = root / "landing"
    land(str(landing), "2013-01-01", DIRTY_DAY)
    settings = small_settings(
        root,
        landing,
        CATALOG,
        window_days=5,
        holdout_days=1,
        history_days=2,
        min_training_rows=2_000,
        auc_gate=0.55,
        bootstrap_samples=20,
    )
    defs = build_defs(settings)
    instance = dg.DagsterInstance.ephemeral()
    lake, current = Path(settings.lake_base), Path(settings.registry_base) / "current.json"

    materialize_days(defs, instance, REFERENCE_JOB, [None])
    materialize_days(defs, instance, FEATURES_JOB, days_between("2013-01-01", "2013-01-05"))
    (good,) = materialize_days(defs, instance, DAILY_JOB, [GOOD_DAY])
    before = {"files": _digests(lake, GOOD_DAY), "current": current.read_bytes()}

    flights = landing / "flights" / f"{GOOD_DAY}.csv"
    data = flights.read_bytes()
    truncated = data[: data.rindex(b"\n", 0, len(data) // 2) + 30]
    flights.write_bytes(truncated)
    (broken,) = materialize_days(defs, instance, DAILY_JOB, [GOOD_DAY])

    dirty_file = landing / "flights" / f"{DIRTY_DAY}.csv"
    dirty = pd.read_csv(dirty_file)
    dirty.loc[range(DIRTY_ROWS), "dep_delay"] = 99_999.0
    dirty.to_csv(dirty_file, index=False)
    (over,) = materialize_days(defs, instance, DAILY_JOB, [DIRTY_DAY])

    after = {"files": _digests(lake, GOOD_DAY), "current": current.read_bytes()}
    yield {
        "settings": settings,
        "defs": defs,
        "instance": instance,
        "landing": landing,
        "lake": lake,
        "good": good,
        "broken": broken,
        "over": over,
        "before": before,
        "after": after,
        "truncated": truncated,
    }
    instance.dispose()


def test_the_good_day_runs_through_to_deployment(scenario) -> None:
    assert scenario["good"].success
    assert len(scenario["before"]["files"]) == len(DAY_FILES)
    assert scenario["before"]["current"]


def test_a_truncated_day_fails_at_ingestion_naming_file_partition_and_rule(scenario) -> None:
    run, instance, landing = scenario["broken"], scenario["instance"], scenario["landing"]
    assert not run.success
    failures = _failures(instance, run)
    assert list(failures) == ["raw_flights"]
    text = failures["raw_flights"]
    assert str(landing / "flights" / f"{GOOD_DAY}.csv") in text
    assert f"partition: {GOOD_DAY}" in text and "complete_last_line" in text
    assert _materialized(instance, run) <= {"raw_weather"}
    retries = instance.all_logs(run.run_id, of_type=dg.DagsterEventType.STEP_UP_FOR_RETRY)
    assert retries == []


def test_good_bytes_and_the_deployed_model_survive_the_failed_runs(scenario) -> None:
    before, after = scenario["before"], scenario["after"]
    assert after["files"] == before["files"]
    assert after["current"] == before["current"]


def test_the_bad_landing_file_is_kept_aside_unchanged(scenario) -> None:
    landing = scenario["landing"]
    (rejected,) = (landing / "rejected" / "flights").glob(f"{GOOD_DAY}.*.csv")
    assert rejected.read_bytes() == scenario["truncated"]
    assert not (landing / "flights" / f"{GOOD_DAY}.csv").exists()
    assert str(rejected) in _failures(scenario["instance"], scenario["broken"])["raw_flights"]


def test_too_many_bad_rows_quarantine_them_and_stop_the_day(scenario) -> None:
    run, instance, lake = scenario["over"], scenario["instance"], scenario["lake"]
    assert not run.success
    text = _failures(instance, run)["raw_flights"]
    assert f"quarantine_share: {DIRTY_ROWS} of" in text
    quarantine = lake / "quarantine" / "raw_flights" / f"{DIRTY_DAY}.parquet"
    assert str(quarantine) in text
    rows = pd.read_parquet(quarantine)
    assert len(rows) == DIRTY_ROWS and rows["dep_delay"].eq(99_999.0).all()
    assert rows["failure_reasons"].str.contains("dep_delay: less_than_or_equal_to").all()
    assert _materialized(instance, run) <= {"raw_weather"}
    (observed,) = instance.all_logs(run.run_id, of_type=dg.DagsterEventType.ASSET_OBSERVATION)
    observation = observed.dagster_event.event_specific_data.asset_observation
    assert (
        observation.asset_key == dg.AssetKey("raw_flights") and observation.partition == DIRTY_DAY
    )
    assert observation.metadata["quarantine_file"].value == str(quarantine)
    assert observation.metadata["quarantined_rows"].value == DIRTY_ROWS
    for asset in ("raw_flights", *DOWNSTREAM):
        assert not list((lake / asset).glob(f"{DIRTY_DAY}.*")), asset


def test_contract_checks_passed_on_the_good_day(scenario) -> None:
    instance, run = scenario["instance"], scenario["good"]
    evaluations = instance.all_logs(run.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION)
    results = [e.dagster_event.event_specific_data for e in evaluations if e.dagster_event]
    contract = {r.asset_key.to_user_string(): r for r in results if r.check_name == "contract"}
    assert set(contract) == {
        "raw_flights",
        "raw_weather",
        "flight_features",
        "traffic_features",
        "training_set",
        "model_leaderboard",
    }
    assert all(evaluation.passed for evaluation in contract.values())


def test_a_corrupt_lake_file_fails_the_reading_step_without_retries(scenario) -> None:
    lake, defs, instance = scenario["lake"], scenario["defs"], scenario["instance"]
    stored = lake / "training_set" / f"{GOOD_DAY}.parquet"
    good = stored.read_bytes()
    stored.write_bytes(good[: len(good) // 3])
    try:
        result = defs.resolve_implicit_global_asset_job_def().execute_in_process(
            partition_key=GOOD_DAY,
            instance=instance,
            raise_on_error=False,
            asset_selection=[dg.AssetKey("model__gbdt")],
        )
    finally:
        stored.write_bytes(good)
    assert not result.success
    (failure,) = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
    text = failure.step_failure_data.user_failure_data.description
    assert str(stored) in text and f"training_set[{GOOD_DAY}]" in text
    assert "readable_parquet" in text
    assert not [
        e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_UP_FOR_RETRY
    ]
