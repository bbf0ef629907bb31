"""Feast's own tools on the project's repo: ``feast feature-views list`` and ``feast serve``
(the HTTP feature server non-Python services call) over the pipeline's registry and online store."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pandas as pd
import pytest

from ml_assets.assets.feature_store_assets import online_window
from ml_assets.feature_repo.config import REPO_DIR, write_repo
from ml_assets.feature_repo.feast_objects import SERVICE
from ml_assets.models.features import FEATURES, JOIN_KEYS, KEY
from ml_assets_tests.feature_repo.conftest import DAY, feast_store, store_settings

FEAST = str(Path(sys.executable).parent / "feast")


@pytest.fixture(scope="module")
def repo(lake: dict, tmp_path_factory: pytest.TempPathFactory):
    """A materialized store and a repo directory rendered from the same settings."""
    settings = store_settings(lake, "sqlite")
    store = feast_store(settings)
    store.materialize(*online_window(DAY, 2.0), [DAY])
    return store, write_repo(settings, tmp_path_factory.mktemp("repo")).parent


def _feast(repo: Path, *args: str) -> str:
    done = subprocess.run(
        [FEAST, "-c", str(repo), *args], capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_the_package_directory_is_the_repo() -> None:
    assert Path(__file__).resolve().parents[2] / "ml_assets" / "feature_repo" == REPO_DIR
    assert (REPO_DIR / "repo.py").exists() and (REPO_DIR / ".feastignore").exists()


def test_feast_lists_the_pipelines_views_and_service(repo) -> None:
    _, directory = repo
    views = _feast(directory, "feature-views", "list")
    for name in ("flight_features", "traffic_features", "carrier_stats", "plane_stats"):
        assert name in views
    assert SERVICE in _feast(directory, "feature-services", "list")


def test_feast_serve_answers_what_the_lean_reader_reads(repo, lake: dict) -> None:
    store, directory = repo
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [FEAST, "-c", str(directory), "serve", "-h", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=os.environ.copy(),
    )
    try:
        _wait_healthy(server, f"http://127.0.0.1:{port}/health")
        rows = pd.read_parquet(Path(lake["lake"]) / "feast_features" / f"{DAY}.parquet")
        rows = rows.sample(5, random_state=7)
        body = {
            "feature_service": SERVICE,
            "entities": {k: rows[k].astype(str).tolist() for k in (KEY, *JOIN_KEYS)},
        }
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/get-online-features",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            answer = json.load(response)
    finally:
        server.terminate()
        server.wait(timeout=60)
    names = answer["metadata"]["feature_names"]
    served = {name: result["values"] for name, result in zip(names, answer["results"], strict=True)}
    lean = store.online(rows[KEY].tolist())
    for feature in FEATURES:
        for got, want in zip(served[feature], lean[feature], strict=True):
            assert (got is None and pd.isna(want)) or got == pytest.approx(want) or got == want


def _wait_healthy(server: subprocess.Popen, url: str, timeout_s: float = 180) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"feast serve exited: {server.stderr.read()[-2000:]}")
        try:
            with urllib.request.urlopen(url, timeout=5):
                return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"feast serve not healthy within {timeout_s} s")


def test_ml_assets_feast_repo_renders_the_settings(tmp_path: Path, monkeypatch) -> None:
    import yaml

    from ml_assets.operations.cli import main

    monkeypatch.setenv("ML_ASSETS_ROOT", str(tmp_path))
    monkeypatch.setenv("ML_ASSETS_LAKE", str(tmp_path / "lake"))
    assert main(["feast-repo", "--dir", str(tmp_path / "repo")]) == 0
    rendered = yaml.safe_load((tmp_path / "repo" / "feature_store.yaml").read_text())
    assert rendered["registry"] == str(tmp_path / "lake" / "feast" / "registry.db")
    assert rendered["online_store"] == {
        "type": "sqlite",
        "path": f"{tmp_path}/lake/feast/online.db",
    }
