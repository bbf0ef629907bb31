"""A week of real feature rows in a temp lake, and Feast stores over it
(SQLite or the real Redis)."""

from __future__ import annotations

import uuid
from pathlib import Path

import pandas as pd
import pytest
from upath import UPath

from ml_assets.feature_repo.config import store_config
from ml_assets.feature_repo.feast_objects import feast_frames
from ml_assets.models.features import build_flight_features, build_traffic_features
from ml_assets.models.prepare import prepare_flights, prepare_planes, prepare_weather
from ml_assets.resources.feature_store import FeatureStoreResource
from ml_assets.resources.lake import dump_object
from ml_assets.settings import Settings
from ml_assets.sources.landing_files import days_between, read_daily, read_reference

DAYS = days_between("2013-01-08", "2013-01-14")
DAY = DAYS[-1]


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory, landing_dir: Path) -> dict:
    """Feature rows of a week in a temp lake, plus the two feature branches in memory."""
    base = str(landing_dir)
    root = tmp_path_factory.mktemp("feast")
    planes = prepare_planes(read_reference(base, "planes"))
    history = days_between("2013-01-01", DAY)
    flights = {d: prepare_flights(read_daily(base, "flights", d), d) for d in history}
    weather = {d: prepare_weather(read_daily(base, "weather", d), d) for d in history}
    ff, tf = [], []
    for day in DAYS:
        i = history.index(day)
        f = build_flight_features(
            flights[day], pd.concat([weather[history[i - 1]], weather[day]]), planes, 2.0
        )
        t = build_traffic_features(
            pd.concat([flights[d] for d in history[max(0, i - 7) : i + 1]]), day, 2.0
        )
        for asset, frame in feast_frames(f, t, day, 2.0).items():
            dump_object(frame, UPath(root / "lake" / asset / day))
        ff.append(f)
        tf.append(t)
    return {
        "lake": str(root / "lake"),
        "root": root,
        "flight_features": pd.concat(ff),
        "traffic_features": pd.concat(tf),
    }


def store_settings(lake: dict, online: str, connection: str = "127.0.0.1:6379") -> Settings:
    root = lake["root"]
    return Settings(
        landing_base=str(root / "landing"),
        lake_base=lake["lake"],
        registry_base=str(root / "registry"),
        feast_project=f"t{uuid.uuid4().hex[:10]}",
        feast_online_store=online,
        redis_connection=connection,
        feast_registry=str(root / f"registry-{uuid.uuid4().hex[:6]}.db"),
        feast_sqlite_path=str(root / f"online-{uuid.uuid4().hex[:6]}.db"),
    )


def feast_store(settings: Settings) -> FeatureStoreResource:
    store = FeatureStoreResource(config=store_config(settings), lake_base=settings.lake_base)
    store.apply()
    return store
