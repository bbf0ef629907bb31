"""Slow end-to-end: `dg launch --partition-range` runs the single-run assets over a range.

Every daily asset shares ``BackfillPolicy.single_run()`` locally, so the stock CLI (`dg launch`,
the same path as `dagster asset materialize`) accepts a range for them and runs it as one run;
the range-aware lake writes every day on its own. In production (``ML_ASSETS_MODEL_RUNS=daily``)
the models and what follows them run one run per day and need the daemon (`ml-assets backfill`).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from ml_assets.settings import PROJECT_ROOT
from ml_assets_tests.conftest import SMALL_CATALOG, write_catalog

pytestmark = pytest.mark.slow
DG = Path(sys.executable).parent / "dg"
FIRST, LAST = "2013-01-13", "2013-01-16"
SELECTION = "+key:training_set and not key:planes"


def _dg(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(DG), "launch", *args],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_dg_launch_runs_a_partition_range_as_one_run(tmp_path: Path, landing_dir: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "ML_ASSETS_ROOT": str(tmp_path),
        "ML_ASSETS_LANDING": str(landing_dir),
        "ML_ASSETS_LAKE": str(tmp_path / "lake"),
        "ML_ASSETS_CATALOG": str(write_catalog(tmp_path / "catalog.yaml", SMALL_CATALOG)),
        "ML_ASSETS_WINDOW_DAYS": "10",
        "ML_ASSETS_HOLDOUT_DAYS": "3",
        "ML_ASSETS_MIN_TRAINING_ROWS": "2000",
    }
    planes = _dg(env, "--assets", "key:planes")
    assert planes.returncode == 0, planes.stderr[-3000:]
    # the training windows reach back to 2013-01-03: their features first, as a range too
    for selection, first, last in (
        (f"{SELECTION} and not key:training_set", "2013-01-01", "2013-01-12"),
        (SELECTION, FIRST, LAST),
    ):
        ran = _dg(env, "--assets", selection, "--partition-range", f"{first}...{last}")
        assert ran.returncode == 0, ran.stderr[-3000:]

    days = [f"2013-01-{d}" for d in range(13, 17)]
    for asset in ("raw_flights", "flight_features", "feast_features", "training_set"):
        assert sorted(p.stem for p in (tmp_path / "lake" / asset).glob("*.parquet"))[-4:] == days
    with dg.DagsterInstance.from_config(str(home)) as instance:
        runs = instance.get_runs(dg.RunsFilter(tags={"dagster/asset_partition_range_end": LAST}))
        assert len(runs) == 1 and runs[0].status == dg.DagsterRunStatus.SUCCESS
        for asset in ("raw_flights", "training_set", "online_features"):
            records = instance.fetch_materializations(
                dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), asset_partitions=days),
                limit=100,
            ).records
            assert sorted(r.partition_key for r in records) == days, asset
            assert {r.run_id for r in records} == {runs[0].run_id}

    # production's shape: a model has no single-run policy, the CLI refuses a range for it
    daily = {**env, "ML_ASSETS_MODEL_RUNS": "daily"}
    refused = _dg(daily, "--assets", "key:model__gbdt", "--partition-range", f"{FIRST}...{LAST}")
    assert refused.returncode != 0 and "BackfillPolicy.single_run()" in refused.stderr
    # locally the models join the range: one run trains every day of it
    trained = _dg(env, "--assets", "key:model__gbdt", "--partition-range", f"{FIRST}...{LAST}")
    assert trained.returncode == 0, trained.stderr[-3000:]
    models = sorted(p.name.split(".")[0] for p in (tmp_path / "lake" / "model__gbdt").iterdir())
    assert sorted(set(models)) == days
