"""A real training set (ten days of February 2013, both feature branches) for the model tests."""

from __future__ import annotations

import pandas as pd
import pytest

from ml_assets.models.catalog import CatalogEntry
from ml_assets.models.features import build_flight_features, build_traffic_features
from ml_assets.models.training_set import build_training_set
from ml_assets_tests import _samples

FIRST, LAST = "2013-02-05", "2013-02-14"
HOLDOUT_DAYS = 3
TRAFFIC_HISTORY = 3
HORIZON = 2.0
SMALL = CatalogEntry(
    name="small",
    params={
        "learning_rate": 0.1,
        "num_leaves": 15,
        "feature_fraction": 0.8,
        "min_data_in_leaf": 30,
    },
    num_boost_round=20,
)


@pytest.fixture(scope="module")
def feature_branches() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Both feature branches for FIRST..LAST, built per day as the assets do."""
    planes = _samples.planes()
    flight_parts, traffic_parts = [], []
    for day in _samples.days(FIRST, LAST):
        flight_parts.append(
            build_flight_features(
                _samples.flights(day),
                _samples.weather(_samples.shift_day(day, -1), day),
                planes,
                HORIZON,
            )
        )
        window = _samples.days(_samples.shift_day(day, -TRAFFIC_HISTORY), day)
        traffic_parts.append(build_traffic_features(_samples.flights(*window), day, HORIZON))
    return pd.concat(flight_parts, ignore_index=True), pd.concat(traffic_parts, ignore_index=True)


@pytest.fixture(scope="module")
def built(feature_branches):
    flight_features, traffic_features = feature_branches
    return build_training_set(flight_features, traffic_features, LAST, HOLDOUT_DAYS)


@pytest.fixture(scope="module")
def training_set(built) -> pd.DataFrame:
    return built[0]
