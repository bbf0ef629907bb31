"""Slow end-to-end: the README's demo and a multiprocess run through a real SQLite instance."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ml_assets.settings import PROJECT_ROOT

pytestmark = pytest.mark.slow
BIN = Path(sys.executable).parent


def _env(root: Path) -> dict[str, str]:
    return {
        **os.environ,
        "ML_ASSETS_ROOT": str(root),
        "DAGSTER_HOME": str(root),
        "PATH": f"{BIN}:{os.environ['PATH']}",
    }


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess]:
    root = tmp_path_factory.mktemp("demo")
    shutil.copy(PROJECT_ROOT / "dagster.yaml", root / "dagster.yaml")
    days = ["--start", "2013-01-01", "--end", "2013-01-31", "--train-days", "2"]
    done = subprocess.run(
        [BIN / "ml-assets", "demo", *days],
        cwd=root,
        env=_env(root),
        capture_output=True,
        text=True,
        timeout=900,
    )
    return root, done


def test_demo_materializes_the_whole_graph(demo) -> None:
    root, done = demo
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "runs succeeded" in done.stdout and "Open the UI" in done.stdout
    lake = root / ".lake"
    assert len(list((lake / "raw_flights").glob("*.parquet"))) == 31
    assert (lake / "model_leaderboard" / "2013-01-31.parquet").exists()
    decision = json.loads((lake / "deployed_model" / "2013-01-31.json").read_text())
    assert decision["reason"]
    if decision["promoted"] or (lake / "registry" / "current.json").exists():
        assert json.loads((lake / "registry" / "current.json").read_text())["sha256"]
    assert (root / ".dagster_home" / "storage").is_dir()


def test_predict_scores_a_flight_of_the_last_day(demo) -> None:
    """Online features (SQLite) + the deployed model, from the command line."""
    root, _ = demo
    if not (root / ".lake" / "registry" / "current.json").exists():
        pytest.skip("the gate refused every candidate in this demo run")
    flight = ["--carrier", "DL", "--flight", "2347", "--origin", "LGA", "--dest", "ATL"]
    done = subprocess.run(
        [BIN / "ml-assets", "predict", *flight, "--scheduled", "2013-01-31 15:00"],
        cwd=root,
        env=_env(root),
        capture_output=True,
        text=True,
        timeout=300,
    )
    if done.returncode != 0 and "no features for" in done.stderr:
        pytest.fail(f"DL2347 is not in the 2013-01-31 schedule: {done.stderr}")
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)
    assert 0.0 < result["probability"] < 1.0 and len(result["model_sha256"]) == 64
    unknown = ["--carrier", "ZZ", "--flight", "1", "--origin", "JFK", "--dest", "LAX"]
    missing = subprocess.run(
        [BIN / "ml-assets", "predict", *unknown, "--scheduled", "2013-01-31 09:00"],
        cwd=root,
        env=_env(root),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert (
        missing.returncode == 1 and "no features for 2013-01-31/ZZ1/JFK-LAX/0900" in missing.stderr
    )


def test_multiprocess_run_through_the_instance(demo) -> None:
    """The default (multiprocess, forkserver) executor, launched by the Dagster CLI."""
    root, _ = demo
    selection = "raw_flights,raw_weather,flight_features,traffic_features"
    materialize = [BIN / "dagster", "asset", "materialize", "-m", "ml_assets.definitions"]
    done = subprocess.run(
        [*materialize, "--select", selection, "--partition", "2013-01-31"],
        cwd=root,
        env=_env(root),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "RUN_SUCCESS" in done.stderr + done.stdout
