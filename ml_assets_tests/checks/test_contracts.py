"""Contracts in Dagster: blocking partitioned checks, quarantine, the share limit, no bad writes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from ml_assets.assets.raw import build_raw_assets
from ml_assets.checks.contracts import (
    CHECK_NAME,
    CHECKED_ASSETS,
    build_contract_check,
    build_contract_checks,
    column_schema,
    evaluate_stored,
    quarantine_limit,
)
from ml_assets.checks.schemas import CONTRACTS
from ml_assets.partitions import daily
from ml_assets.resources.lake import LakeIOManagerFactory
from ml_assets.resources.landing_zone import LandingZone
from ml_assets.settings import Settings
from ml_assets.sources.landing_files import land

GLITCH_DAY = "2013-02-12"  # EWR reports a 1048 mph wind at 03:00: one bad row in 72


@pytest.fixture(scope="module")
def glitch_landing(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("glitch_landing")
    land(str(base), GLITCH_DAY, GLITCH_DAY)
    return base


@pytest.fixture
def landing(glitch_landing: Path, tmp_path: Path) -> Path:
    """A writable copy of the glitch day's landing zone (a failing run moves files aside)."""
    import shutil

    return Path(shutil.copytree(glitch_landing, tmp_path / "landing"))


def _materialize_weather(settings: Settings, landing: Path) -> dg.ExecuteInProcessResult:
    _, raw_weather, _ = build_raw_assets(settings)
    return dg.materialize(
        [raw_weather, build_contract_check("raw_weather", settings)],
        partition_key=GLITCH_DAY,
        resources={
            "lake": LakeIOManagerFactory(base_path=settings.lake_base),
            "landing": LandingZone(base_path=str(landing)),
        },
        raise_on_error=False,
    )


def _failure(result: dg.ExecuteInProcessResult) -> dg.DagsterEvent:
    (event,) = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
    return event


def test_every_checked_asset_has_a_blocking_partitioned_contract_check(settings) -> None:
    checks = build_contract_checks(settings)
    specs = {spec.asset_key.to_user_string(): spec for c in checks for spec in c.check_specs}
    unchecked = {"airlines", "airports", "landed_flights", "landed_weather"}
    assert set(specs) == set(CHECKED_ASSETS) == set(CONTRACTS) - unchecked
    for asset, spec in specs.items():
        assert spec.name == CHECK_NAME and spec.blocking
        assert spec.partitions_def == (None if asset == "planes" else daily)


def test_loading_the_code_location_does_not_import_pandera(tmp_path: Path) -> None:
    code = (
        "import sys; from ml_assets.definitions import build_defs; "
        "from ml_assets.settings import Settings; build_defs(Settings.from_env()); "
        "print(sorted(m for m in ('pandera', 'pandas', 'lightgbm') if m in sys.modules))"
    )
    env = {**os.environ, "ML_ASSETS_ROOT": str(tmp_path)}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    assert out.stdout.strip() == "[]"


def test_one_bad_row_is_quarantined_and_the_check_warns(settings, landing: Path) -> None:
    result = _materialize_weather(settings, landing)
    assert result.success
    lake = Path(settings.lake_base)
    stored = pd.read_parquet(lake / "raw_weather" / f"{GLITCH_DAY}.parquet")
    assert len(stored) == 71 and stored["wind_speed"].max() < 100
    quarantine = lake / "quarantine" / "raw_weather" / f"{GLITCH_DAY}.parquet"
    rows = pd.read_parquet(quarantine)
    assert rows["wind_speed"].tolist() == [pytest.approx(1048.36058)]
    assert rows["failure_reasons"].tolist() == ["wind_speed: less_than_or_equal_to(250.0)"]
    assert rows["contract"].tolist() == ["landed_weather"]

    (materialization,) = result.asset_materializations_for_node("raw_weather")
    meta = {k: v.value for k, v in materialization.metadata.items()}
    assert meta["quarantined_rows"] == 1 and meta["contract_rows_checked"] == 72
    assert meta["quarantine_file"] == str(quarantine)
    assert meta["contract"] == "landed_weather -> raw_weather"
    schema = meta["dagster/column_schema"]
    assert isinstance(schema, dg.TableSchema) and "obs_ts" in {c.name for c in schema.columns}

    (evaluation,) = result.get_asset_check_evaluations()
    assert not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.WARN
    check_meta = {k: v.value for k, v in evaluation.metadata.items()}
    assert check_meta["quarantine_file"] == str(quarantine) and check_meta["severity"] == "WARN"
    assert "1048.36" in check_meta["quarantine_examples"]
    assert (landing / "weather" / f"{GLITCH_DAY}.csv").exists()


def test_quarantine_over_the_limit_fails_the_partition_and_writes_nothing(
    settings, landing: Path
) -> None:
    strict = settings.model_copy(update={"quarantine_tolerated_rows": 0})
    landed = (landing / "weather" / f"{GLITCH_DAY}.csv").read_bytes()
    result = _materialize_weather(strict, landing)
    assert not result.success
    lake = Path(strict.lake_base)
    assert not (lake / "raw_weather").exists()
    quarantine = lake / "quarantine" / "raw_weather" / f"{GLITCH_DAY}.parquet"
    assert len(pd.read_parquet(quarantine)) == 1

    failure = _failure(result).step_failure_data
    assert failure.user_failure_data is not None
    text = failure.user_failure_data.description
    assert f"raw_weather[{GLITCH_DAY}]" in text and "quarantine_share: 1 of 72 rows" in text
    assert str(landing / "weather" / f"{GLITCH_DAY}.csv") in text and str(quarantine) in text
    (rejected,) = (landing / "rejected" / "weather").iterdir()
    assert (
        rejected.read_bytes() == landed and not (landing / "weather" / f"{GLITCH_DAY}.csv").exists()
    )
    assert str(rejected) in text
    meta = {k: v.value for k, v in failure.user_failure_data.metadata.items()}
    assert meta["severity"] == "ERROR" and meta["quarantined_rows"] == 1
    assert "wind_speed" in meta["failed_rules"] and "1048.36" in meta["examples"]
    assert not [
        e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_UP_FOR_RETRY
    ]
    assert result.get_asset_check_evaluations() == []


def test_check_on_a_stored_partition_that_breaks_the_contract_is_an_error(
    settings, clean_frames
) -> None:
    frame, params = clean_frames["raw_flights"]
    broken = frame.copy()
    broken.loc[3, "flight_id"] = broken.loc[0, "flight_id"]
    result = evaluate_stored("raw_flights", broken, params, settings, stored={})
    assert not result.passed and result.severity == dg.AssetCheckSeverity.ERROR
    meta = {k: v.value for k, v in result.metadata.items()}
    assert meta["failing_rows"] == 2 and meta["severity"] == "ERROR"
    assert (
        "field_uniqueness" in meta["failed_rules"]
        and broken.loc[0, "flight_id"] in meta["examples"]
    )

    ok = evaluate_stored("raw_flights", frame.copy(), params, settings, stored={})
    assert ok.passed and {k: v.value for k, v in ok.metadata.items()}["severity"] == "OK"


def test_column_schema_comes_from_the_contract() -> None:
    schema = column_schema("raw_flights")
    columns = {c.name: c for c in schema.columns}
    assert list(columns) == list(CONTRACTS["raw_flights"].model.to_schema().columns)
    assert columns["flight_id"].constraints.unique and not columns["flight_id"].constraints.nullable
    assert columns["dep_delay"].constraints.nullable
    assert columns["dep_delay"].constraints.other == [
        "greater_than_or_equal_to(-120.0)",
        "less_than_or_equal_to(2880.0)",
    ]
    assert columns["sched_dep_ts"].type == "datetime64[ns, UTC]"


def test_quarantine_limit_is_a_share_with_a_floor_of_tolerated_rows(settings) -> None:
    assert settings.quarantine_max_share == 0.01 and settings.quarantine_tolerated_rows == 1
    assert quarantine_limit(settings, 72) == 1
    assert quarantine_limit(settings, 900) == 9
    strict = settings.model_copy(update={"quarantine_tolerated_rows": 0})
    assert quarantine_limit(strict, 72) == pytest.approx(0.72)


def test_settings_read_the_quarantine_limits_from_the_environment() -> None:
    env = {"ML_ASSETS_QUARANTINE_MAX_SHARE": "0.05", "ML_ASSETS_QUARANTINE_TOLERATED_ROWS": "3"}
    settings = Settings.from_env(env)
    assert (settings.quarantine_max_share, settings.quarantine_tolerated_rows) == (0.05, 3)
