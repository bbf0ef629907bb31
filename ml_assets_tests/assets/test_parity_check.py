"""check_parity_online_offline tells the truth on range runs and daily runs: good data passes
(older days superseded or swept are not held against it), a corrupted online value fails."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import dagster as dg
import pytest

from ml_assets.definitions import build_defs
from ml_assets.execution import FEATURES_JOB, REFERENCE_JOB
from ml_assets.feature_repo.config import store_config
from ml_assets.operations.materialize import RANGE_TAGS, materialize_days
from ml_assets_tests.conftest import small_settings

CHECK = dg.AssetCheckKey(dg.AssetKey("online_features"), "check_parity_online_offline")


@pytest.fixture(scope="module")
def features(tmp_path_factory: pytest.TempPathFactory, landing_dir: Path):
    settings = small_settings(tmp_path_factory.mktemp("parity"), landing_dir)
    defs = build_defs(settings)
    instance = dg.DagsterInstance.ephemeral()
    assert all(r.success for r in materialize_days(defs, instance, REFERENCE_JOB, [None]))
    yield settings, defs, instance
    instance.dispose()


def _parity(result: dg.ExecuteInProcessResult) -> list[dg.AssetCheckEvaluation]:
    return [e for e in result.get_asset_check_evaluations() if e.asset_check_key == CHECK]


def _range(defs, instance, first: str, last: str) -> dg.ExecuteInProcessResult:
    return defs.resolve_job_def(FEATURES_JOB).execute_in_process(
        instance=instance, tags={RANGE_TAGS[0]: first, RANGE_TAGS[1]: last}
    )


def test_parity_holds_on_a_range_run_then_a_daily_run_then_an_older_range(features) -> None:
    _, defs, instance = features
    ranged = _parity(_range(defs, instance, "2013-01-01", "2013-01-06"))
    assert ranged and all(e.passed for e in ranged), [e.description for e in ranged]
    # Every day of the range has its own evaluation (none stays "planned": the UI's "Skipped"),
    # and the run's joined verdict.
    days = [f"2013-01-0{d}" for d in range(1, 7)]
    assert sorted(e.partition for e in ranged if e.partition) == days
    (joined,) = [e for e in ranged if e.partition is None]
    assert joined.metadata["values_compared"].value > 0
    history = instance.event_log_storage.get_asset_check_execution_history(CHECK, limit=100)
    assert [r.partition for r in history if r.status.value == "PLANNED"] == []

    daily = defs.resolve_job_def(FEATURES_JOB).execute_in_process(
        instance=instance, partition_key="2013-01-07"
    )
    [evaluation] = _parity(daily)
    assert evaluation.passed and evaluation.metadata["flights_compared"].value == 50
    assert evaluation.metadata["flights_with_superseded_views"].value == 0

    # Re-running days older than the newest one online: nothing served is held against them.
    older = _parity(_range(defs, instance, "2013-01-01", "2013-01-03"))
    assert older and all(e.passed for e in older), [e.description for e in older]
    assert all("served online any more" in e.description for e in older)


def test_a_corrupted_online_value_fails_the_check(features) -> None:
    from feast.protos.feast.types.Value_pb2 import Value

    settings, defs, instance = features
    day = "2013-01-08"
    assert _parity(
        defs.resolve_job_def(FEATURES_JOB).execute_in_process(instance=instance, partition_key=day)
    )[0].passed
    wrong = Value(double_val=999.0).SerializeToString()
    with sqlite3.connect(store_config(settings)["online_store"]["path"]) as online:
        changed = online.execute(
            f'UPDATE "{settings.feast_project}_flight_features" SET value = ? '
            "WHERE feature_name = 'wx_temp'",
            (wrong,),
        ).rowcount
    assert changed > 0
    job = defs.resolve_implicit_global_asset_job_def().get_subset(
        asset_selection=set(), asset_check_selection={CHECK}
    )
    result = job.execute_in_process(instance=instance, partition_key=day, raise_on_error=False)
    [evaluation] = _parity(result)
    assert not evaluation.passed
    assert evaluation.severity == dg.AssetCheckSeverity.ERROR
    assert evaluation.metadata["mismatched_flights"].value == 50
    assert "wx_temp" in evaluation.metadata["examples"].value
