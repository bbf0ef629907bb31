"""Every contract keeps its clean real frame and names the rule a dirty copy breaks."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from ml_assets.checks.schemas import CONTRACTS, Params, references_from
from ml_assets.checks.validation import validate
from ml_assets.models.features import CATEGORICAL_FEATURES, FLIGHT_FEATURES, KEY, TRAFFIC_FEATURES
from ml_assets.sources.nycflights13 import read_table
from ml_assets_tests.checks.conftest import MIN_TRAINING_ROWS

ROW, TABLE = "row", "table"


def _set(column: str, value, rows=(1,)) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def mutate(frame: pd.DataFrame) -> pd.DataFrame:
        if isinstance(value, str) and frame[column].dtype.kind in "iuf":
            frame[column] = frame[column].astype(object)
        elif not pd.isna(value) and frame[column].dtype.kind in "iu":
            frame[column] = frame[column].astype("float64")
        frame.loc[list(rows), column] = value
        return frame

    return mutate


def _dup_row(frame: pd.DataFrame) -> pd.DataFrame:
    return pd.concat([frame, frame.iloc[[3]]], ignore_index=True)


def _shift(column: str, **delta) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def mutate(frame: pd.DataFrame) -> pd.DataFrame:
        frame.loc[2, column] = frame.loc[2, column] + pd.Timedelta(**delta)
        return frame

    return mutate


def _other_day(frame: pd.DataFrame) -> pd.DataFrame:
    frame.loc[0, "day"] = 15
    return frame


def _no_departure(frame: pd.DataFrame) -> pd.DataFrame:
    frame.loc[1, ["dep_time", "dep_delay"]] = np.nan
    return frame


def _mislabel(frame: pd.DataFrame) -> pd.DataFrame:
    frame.loc[1, "is_delayed"] = 1.0 - frame.loc[1, "is_delayed"]
    return frame


def _swap_split(frame: pd.DataFrame) -> pd.DataFrame:
    frame["split"] = frame["split"].map({"train": "holdout", "holdout": "train"})
    return frame


def _one_class_holdout(frame: pd.DataFrame) -> pd.DataFrame:
    frame.loc[frame["split"] == "holdout", "is_delayed"] = 0.0
    return frame


def _reverse_ranks(frame: pd.DataFrame) -> pd.DataFrame:
    frame["rank"] = frame["rank"].to_numpy()[::-1]
    return frame


def _busier_hour(frame: pd.DataFrame) -> pd.DataFrame:
    frame.loc[1, "origin_hour_departures"] = frame.loc[1, "origin_3h_departures"] + 1
    return frame


def _dup_weather_key(frame: pd.DataFrame) -> pd.DataFrame:
    frame.loc[1, ["origin", "obs_ts"]] = frame.loc[0, ["origin", "obs_ts"]].to_numpy()
    return frame


DIRTY = [
    # contract, case, mutation, rule the verdict names, level
    (
        "landed_flights",
        "delay_out_of_bounds",
        _set("dep_delay", 5000.0),
        "dep_delay: less_than_or_equal_to(2880.0)",
        ROW,
    ),
    (
        "landed_flights",
        "unknown_carrier",
        _set("carrier", "ZZ"),
        "carrier: carrier_in_airlines",
        ROW,
    ),
    (
        "landed_flights",
        "origin_outside_nyc",
        _set("origin", "BOS"),
        "origin: isin(['EWR', 'JFK', 'LGA'])",
        ROW,
    ),
    (
        "landed_flights",
        "arrival_before_departure",
        _set("air_time", 150.0),
        "arrival_after_departure",
        ROW,
    ),
    (
        "landed_flights",
        "departure_not_schedule_plus_delay",
        _set("dep_time", 502.0),
        "departure_is_schedule_plus_delay",
        ROW,
    ),
    ("landed_flights", "arrival_without_departure", _no_departure, "arrival_needs_departure", ROW),
    (
        "landed_flights",
        "time_hour_off",
        _set("time_hour", "2013-03-14T12:00:00Z"),
        "time_hour_matches_local_hour",
        ROW,
    ),
    ("landed_flights", "month_13", _set("month", 13), "rows_belong_to_partition_day", TABLE),
    ("landed_flights", "another_days_row", _other_day, "rows_belong_to_partition_day", TABLE),
    ("landed_flights", "duplicated_row", _dup_row, "no_duplicate_rows", TABLE),
    (
        "landed_flights",
        "missing_column",
        lambda f: f.drop(columns=["dep_delay"]),
        "column_in_dataframe",
        TABLE,
    ),
    ("landed_flights", "extra_column", lambda f: f.assign(gate="B22"), "column_in_schema", TABLE),
    (
        "landed_flights",
        "wrong_type",
        _set("distance", "far"),
        "distance: coerce_dtype('int64')",
        TABLE,
    ),
    ("landed_flights", "no_rows", lambda f: f.head(0), "has_rows", TABLE),
    (
        "landed_weather",
        "wind_speed_sensor_glitch",
        _set("wind_speed", 1048.36),
        "wind_speed: less_than_or_equal_to(250.0)",
        ROW,
    ),
    (
        "landed_weather",
        "dewpoint_above_temperature",
        _set("dewp", 90.0),
        "dewpoint_not_above_temperature",
        ROW,
    ),
    (
        "landed_weather",
        "humidity_over_100",
        _set("humid", 150.0),
        "humid: less_than_or_equal_to(100)",
        ROW,
    ),
    ("landed_weather", "gust_below_wind", _set("wind_gust", 0.5), "gust_not_below_wind_speed", ROW),
    ("landed_weather", "another_days_row", _other_day, "rows_belong_to_partition_day", TABLE),
    (
        "raw_flights",
        "duplicated_key",
        lambda f: _set("flight_id", f.loc[0, "flight_id"])(f),
        "field_uniqueness",
        TABLE,
    ),
    ("raw_flights", "label_not_delay", _mislabel, "label_is_delay_over_threshold", ROW),
    (
        "raw_flights",
        "actual_departure_off",
        _shift("actual_dep_ts", minutes=9),
        "actual_departure_is_schedule_plus_delay",
        ROW,
    ),
    (
        "raw_flights",
        "other_flight_date",
        _set("flight_date", "2013-03-15"),
        "flight_date: rows_belong_to_partition_day",
        TABLE,
    ),
    (
        "raw_flights",
        "departure_next_day",
        _shift("sched_dep_ts", days=1),
        "departure_on_partition_day",
        TABLE,
    ),
    ("raw_weather", "duplicated_key", _dup_weather_key, "multiple_fields_uniqueness", TABLE),
    (
        "raw_weather",
        "visibility_20_miles",
        _set("visib", 20.0),
        "visib: less_than_or_equal_to(10.0)",
        ROW,
    ),
    (
        "raw_weather",
        "observed_next_day",
        _shift("obs_ts", days=1),
        "observed_on_partition_day",
        TABLE,
    ),
    ("planes", "no_seats", _set("seats", 0.0), "seats: greater_than_or_equal_to(1)", ROW),
    (
        "flight_features",
        "prediction_not_horizon_before",
        _shift("prediction_ts", hours=1),
        "prediction_is_horizon_before_departure",
        ROW,
    ),
    ("flight_features", "hour_25", _set("sched_hour", 25.0), "sched_hour: less_than(24)", ROW),
    (
        "flight_features",
        "unknown_carrier",
        _set("carrier", "ZZ"),
        "carrier: carrier_in_airlines",
        ROW,
    ),
    (
        "flight_features",
        "stale_weather",
        _set("wx_age_hours", 5.0),
        "wx_age_hours: less_than_or_equal_to(3)",
        ROW,
    ),
    (
        "flight_features",
        "duplicated_key",
        lambda f: _set("flight_id", f.loc[0, "flight_id"])(f),
        "field_uniqueness",
        TABLE,
    ),
    (
        "traffic_features",
        "share_over_one",
        _set("origin_delayed_share_today", 1.5),
        "origin_delayed_share_today: less_than_or_equal_to(1)",
        ROW,
    ),
    ("traffic_features", "hour_busier_than_3h", _busier_hour, "three_hours_hold_the_hour", ROW),
    (
        "traffic_features",
        "missing_column",
        lambda f: f.drop(columns=["route_rate_hist"]),
        "column_in_dataframe",
        TABLE,
    ),
    (
        "training_set",
        "null_label",
        _set("is_delayed", np.nan, rows=(1, 2, 3)),
        "is_delayed: not_nullable",
        TABLE,
    ),
    (
        "training_set",
        "one_class_holdout",
        _one_class_holdout,
        "both_classes_in_holdout_rows",
        TABLE,
    ),
    ("training_set", "holdout_before_training", _swap_split, "holdout_after_training_rows", TABLE),
    (
        "training_set",
        "unknown_split",
        _set("split", "test"),
        "split: isin(['train', 'holdout'])",
        TABLE,
    ),
    ("training_set", "extra_column", lambda f: f.assign(leak=1.0), "column_in_schema", TABLE),
    (
        "model_leaderboard",
        "auc_over_one",
        _set("auc", 1.2, rows=(0,)),
        "auc: less_than_or_equal_to(1)",
        TABLE,
    ),
    ("model_leaderboard", "ranks_not_by_auc", _reverse_ranks, "ranked_by_auc", TABLE),
    (
        "model_leaderboard",
        "bad_hash",
        _set("sha256", "not-a-hash"),
        "sha256: str_matches('^[0-9a-f]{64}$')",
        TABLE,
    ),
    (
        "model_leaderboard",
        "trained_after_day",
        _set("train_last_day", "2013-03-20"),
        "trained_on_rows_before_partition_day",
        TABLE,
    ),
]


@pytest.mark.parametrize("name", sorted(set(CONTRACTS) - {"airlines", "airports"}))
def test_clean_real_frame_keeps_its_contract(clean_frames, name: str) -> None:
    frame, params = clean_frames[name]
    verdict = validate(name, frame.copy(), params)
    assert verdict.passed, verdict.failures.to_string()
    assert len(verdict.clean()) == len(frame)


@pytest.mark.parametrize(
    ("name", "mutate", "rule", "level"),
    [pytest.param(n, m, r, lv, id=f"{n}-{case}") for n, case, m, r, lv in DIRTY],
)
def test_dirty_frame_names_the_broken_rule(frames, name, mutate, rule: str, level: str) -> None:
    frame, params = frames[name]
    verdict = validate(name, mutate(frame), params)
    assert not verdict.passed
    found = verdict.failures.set_index("rule")
    assert rule in found.index, verdict.failures.to_string()
    assert found.loc[rule, "level"] == level
    if level == ROW:
        assert verdict.table_failures.empty, verdict.failures.to_string()
        assert 1 <= verdict.quarantined_rows <= 3
        assert rule in verdict.quarantined()["failure_reasons"].iloc[0]
    else:
        assert not verdict.table_failures.empty


def test_every_dirty_case_targets_a_contract() -> None:
    covered = {name for name, *_ in DIRTY}
    assert covered == set(CONTRACTS) - {"airlines", "airports"}


@pytest.mark.parametrize("train_rows_over", [0, 1])
def test_training_set_needs_more_than_the_minimum_training_rows(
    clean_frames, train_rows_over: int
) -> None:
    frame, _ = clean_frames["training_set"]
    train_rows = int((frame["split"] == "train").sum())
    assert train_rows > MIN_TRAINING_ROWS
    minimum = train_rows - train_rows_over
    verdict = validate("training_set", frame.copy(), Params(min_training_rows=minimum))
    assert verdict.passed == bool(train_rows_over)
    if not train_rows_over:
        assert list(verdict.failures["rule"]) == [f"more_than_{minimum}_training_rows"]


def test_feature_contracts_list_exactly_the_feature_columns(clean_frames) -> None:
    flight = CONTRACTS["flight_features"].model.to_schema().columns
    traffic = CONTRACTS["traffic_features"].model.to_schema().columns
    training = CONTRACTS["training_set"].model.to_schema().columns
    assert set(CATEGORICAL_FEATURES + FLIGHT_FEATURES) <= set(flight)
    assert set(traffic) == {KEY, *TRAFFIC_FEATURES}
    assert set(training) == set(flight) | set(traffic) | {"split"}
    assert list(clean_frames["flight_features"][0].columns) == list(flight)


def test_referential_rules_need_the_reference_tables(clean_frames) -> None:
    frame, _ = clean_frames["raw_flights"]
    with pytest.raises(ValueError, match="needs the reference tables"):
        validate("raw_flights", frame.copy(), Params(day="2013-03-14"))


def test_reference_tables_keep_their_contracts_and_bad_ones_are_refused() -> None:
    airlines, airports = read_table("airlines"), read_table("airports")
    references = references_from(airlines, airports)
    assert {"EWR", "JFK", "LGA", "ORD"} <= references.airports and "UA" in references.carriers
    assert references.utc_offsets["HNL"] == (-10.0, False)
    bad = airports.copy()
    bad.loc[0, "lat"] = 123.0
    with pytest.raises(ValueError, match=r"airports breaks its contract.*less_than_or_equal_to"):
        references_from(airlines, bad)
    with pytest.raises(ValueError, match="airlines breaks its contract"):
        references_from(pd.concat([airlines, airlines.head(1)]), airports)
