"""Pandera data contracts for every boundary of the pipeline.

Import this module only inside asset and check bodies: it imports pandera (about a second), and
every step process reloads the code location.

Each :class:`Contract` pairs a ``DataFrameModel`` (columns, dtypes, nullability, ranges, keys,
cross-column rules) with the rules that need run-time facts (:class:`Params`: the partition day,
the reference tables, settings). A failed rule is either

* **row-level**: it points at rows, which are quarantined and dropped from the output, or
* **table-level**: the frame as a whole is wrong (a column missing, a wrong dtype, a duplicated
  key, rows of another day, too few training rows); the partition fails.

Rules that report no row, dtype and key rules, the contract's ``table_rules`` and every rule of
a contract with ``quarantine=False`` are table-level; everything else is row-level.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Annotated

import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

from ml_assets.models.prepare import DELAY_THRESHOLD_MINUTES, LOCAL_TZ
from ml_assets.models.training_set import HOLDOUT, SPLIT, TRAIN

UtcTimestamp = Annotated[pd.DatetimeTZDtype, "ns", "UTC"]

NYC_AIRPORTS = ("EWR", "JFK", "LGA")
# Physical bounds (minutes, miles, degrees Fahrenheit, hPa, inches): wide enough for any real
# flight or observation, narrow enough to catch unit and sensor errors.
DELAY_MINUTES = (-120.0, 2880.0)
ARRIVAL_DELAY_MINUTES = (-240.0, 2880.0)
AIR_TIME_MINUTES = (1.0, 1440.0)
DISTANCE_MILES = (1.0, 10_000.0)
TEMP_F = (-60.0, 130.0)
DEWPOINT_F = (-80.0, 100.0)
WIND_SPEED_MPH = (0.0, 250.0)
WIND_GUST_MPH = (0.0, 300.0)
PRECIP_INCHES = (0.0, 10.0)
PRESSURE_HPA = (870.0, 1090.0)
VISIBILITY_MILES = (0.0, 10.0)
DEWPOINT_SLACK_F = 0.5

TABLE_CHECKS = frozenset(
    {"column_in_dataframe", "column_in_schema", "field_uniqueness", "multiple_fields_uniqueness"}
)


def _range(bounds: tuple[float, float], **kwargs) -> object:
    return pa.Field(ge=bounds[0], le=bounds[1], **kwargs)


def _hhmm_valid(values: pd.Series) -> pd.Series:
    """Clock times written as HHMM (0..2400, minutes below 60); nulls pass."""
    return values.isna() | ((values >= 0) & (values <= 2400) & (values % 100 < 60))


def _minutes(hhmm: pd.Series) -> pd.Series:
    return hhmm // 100 * 60 + hhmm % 100


@dataclass(frozen=True)
class References:
    """The reference tables that referential rules check against."""

    carriers: frozenset[str]
    utc_offsets: Mapping[str, tuple[float, bool]] = field(default_factory=dict)
    """FAA code -> (standard UTC offset in hours, observes US daylight saving time)."""

    @property
    def airports(self) -> frozenset[str]:
        return frozenset(self.utc_offsets)


@dataclass(frozen=True)
class Params:
    """Run-time facts a contract needs beyond the frame."""

    day: str | None = None
    references: References | None = None
    horizon_hours: float = 2.0
    min_training_rows: int = 0

    def refs(self, contract: str) -> References:
        if self.references is None:
            raise ValueError(f"contract {contract} needs the reference tables (airlines, airports)")
        return self.references


# --- Reference tables ------------------------------------------------------------------------


class Airlines(pa.DataFrameModel):
    """``reference/airlines.csv``: one row per carrier code."""

    carrier: Series[str] = pa.Field(unique=True, str_length={"min_value": 2, "max_value": 3})
    name: Series[str]

    class Config:
        strict = True


class Airports(pa.DataFrameModel):
    """``reference/airports.csv``: FAA code, coordinates, UTC offset, daylight-saving rule."""

    faa: Series[str] = pa.Field(unique=True, str_length={"min_value": 3, "max_value": 4})
    name: Series[str]
    lat: Series[float] = pa.Field(ge=-90, le=90)
    lon: Series[float] = pa.Field(ge=-180, le=180)
    alt: Series[int] = pa.Field(ge=-1_500, le=30_000, coerce=True)
    tz: Series[int] = pa.Field(ge=-12, le=14, coerce=True)
    dst: Series[str] = pa.Field(isin=["A", "N", "U"])
    tzone: Series[str] = pa.Field(nullable=True)

    class Config:
        strict = True

    @pa.dataframe_check(name="nyc_airports_present", ignore_na=False)
    def nyc_present(cls, df: pd.DataFrame) -> bool:
        return set(NYC_AIRPORTS) <= set(df["faa"])


class Planes(pa.DataFrameModel):
    """The ``planes`` asset: one row per tail number."""

    tailnum: Series[str] = pa.Field(unique=True)
    year: Series[float] = pa.Field(ge=1900, le=2014, nullable=True)
    seats: Series[float] = pa.Field(ge=1, le=1_000)
    engines: Series[float] = pa.Field(ge=1, le=8)
    engine: Series[str]
    manufacturer: Series[str]

    class Config:
        strict = True


# --- Landed files ----------------------------------------------------------------------------


class LandedFlights(pa.DataFrameModel):
    """One day's ``landing/flights/<day>.csv`` as the upstream system writes it."""

    year: Series[int] = pa.Field(ge=2000, le=2100, coerce=True)
    month: Series[int] = pa.Field(ge=1, le=12, coerce=True)
    day: Series[int] = pa.Field(ge=1, le=31, coerce=True)
    dep_time: Series[float] = pa.Field(nullable=True, coerce=True)
    sched_dep_time: Series[int] = pa.Field(ge=0, le=2359, coerce=True)
    dep_delay: Series[float] = _range(DELAY_MINUTES, nullable=True, coerce=True)
    arr_time: Series[float] = pa.Field(nullable=True, coerce=True)
    sched_arr_time: Series[int] = pa.Field(ge=0, le=2359, coerce=True)
    arr_delay: Series[float] = _range(ARRIVAL_DELAY_MINUTES, nullable=True, coerce=True)
    carrier: Series[str] = pa.Field(str_length={"min_value": 2, "max_value": 3})
    flight: Series[int] = pa.Field(ge=1, le=9_999, coerce=True)
    tailnum: Series[str] = pa.Field(nullable=True)
    origin: Series[str] = pa.Field(isin=list(NYC_AIRPORTS))
    dest: Series[str] = pa.Field(str_length={"min_value": 3, "max_value": 4})
    air_time: Series[float] = _range(AIR_TIME_MINUTES, nullable=True, coerce=True)
    distance: Series[int] = _range(DISTANCE_MILES, coerce=True)
    hour: Series[int] = pa.Field(ge=0, le=23, coerce=True)
    minute: Series[int] = pa.Field(ge=0, le=59, coerce=True)
    time_hour: Series[str]

    class Config:
        strict = True

    @pa.dataframe_check(name="has_rows", ignore_na=False)
    def has_rows(cls, df: pd.DataFrame) -> bool:
        return len(df) > 0

    @pa.dataframe_check(name="no_duplicate_rows", ignore_na=False)
    def no_duplicate_rows(cls, df: pd.DataFrame) -> pd.Series:
        return ~df.duplicated()

    @pa.dataframe_check(name="clock_times_are_hhmm", ignore_na=False)
    def clock_times(cls, df: pd.DataFrame) -> pd.Series:
        return (
            _hhmm_valid(df["dep_time"])
            & _hhmm_valid(df["arr_time"])
            & _hhmm_valid(df["sched_dep_time"])
            & _hhmm_valid(df["sched_arr_time"])
        )

    @pa.dataframe_check(name="hour_minute_match_schedule", ignore_na=False)
    def hour_minute(cls, df: pd.DataFrame) -> pd.Series:
        return (df["hour"] == df["sched_dep_time"] // 100) & (
            df["minute"] == df["sched_dep_time"] % 100
        )

    @pa.dataframe_check(name="departed_iff_delay_known", ignore_na=False)
    def departed_iff_delay(cls, df: pd.DataFrame) -> pd.Series:
        return df["dep_time"].isna() == df["dep_delay"].isna()

    @pa.dataframe_check(name="departure_is_schedule_plus_delay", ignore_na=False)
    def departure_matches(cls, df: pd.DataFrame) -> pd.Series:
        gap = (_minutes(df["sched_dep_time"]) + df["dep_delay"] - _minutes(df["dep_time"])) % 1440
        return df["dep_time"].isna() | (gap == 0)

    @pa.dataframe_check(name="time_hour_matches_local_hour", ignore_na=False)
    def time_hour_matches(cls, df: pd.DataFrame) -> pd.Series:
        return _local_stamp(df["time_hour"]) == _local_parts(df, with_hour=True)

    @pa.dataframe_check(name="arrival_needs_departure", ignore_na=False)
    def arrival_needs_departure(cls, df: pd.DataFrame) -> pd.Series:
        return (df["arr_time"].isna() & df["air_time"].isna()) | df["dep_time"].notna()


class LandedWeather(pa.DataFrameModel):
    """One day's ``landing/weather/<day>.csv``: hourly observations at the NYC airports."""

    origin: Series[str] = pa.Field(isin=list(NYC_AIRPORTS))
    year: Series[int] = pa.Field(ge=2000, le=2100, coerce=True)
    month: Series[int] = pa.Field(ge=1, le=12, coerce=True)
    day: Series[int] = pa.Field(ge=1, le=31, coerce=True)
    hour: Series[int] = pa.Field(ge=0, le=23, coerce=True)
    temp: Series[float] = _range(TEMP_F, nullable=True, coerce=True)
    dewp: Series[float] = _range(DEWPOINT_F, nullable=True, coerce=True)
    humid: Series[float] = pa.Field(ge=0, le=100, nullable=True, coerce=True)
    wind_dir: Series[float] = pa.Field(ge=0, le=360, nullable=True, coerce=True)
    wind_speed: Series[float] = _range(WIND_SPEED_MPH, nullable=True, coerce=True)
    wind_gust: Series[float] = _range(WIND_GUST_MPH, nullable=True, coerce=True)
    precip: Series[float] = _range(PRECIP_INCHES, nullable=True, coerce=True)
    pressure: Series[float] = _range(PRESSURE_HPA, nullable=True, coerce=True)
    visib: Series[float] = _range(VISIBILITY_MILES, nullable=True, coerce=True)
    time_hour: Series[str]

    class Config:
        strict = True

    @pa.dataframe_check(name="no_duplicate_rows", ignore_na=False)
    def no_duplicate_rows(cls, df: pd.DataFrame) -> pd.Series:
        return ~df.duplicated()

    @pa.dataframe_check(name="dewpoint_not_above_temperature", ignore_na=False)
    def dewpoint(cls, df: pd.DataFrame) -> pd.Series:
        return df["dewp"].isna() | df["temp"].isna() | (df["dewp"] <= df["temp"] + DEWPOINT_SLACK_F)

    @pa.dataframe_check(name="gust_not_below_wind_speed", ignore_na=False)
    def gust(cls, df: pd.DataFrame) -> pd.Series:
        return (
            df["wind_gust"].isna() | df["wind_speed"].isna() | (df["wind_gust"] >= df["wind_speed"])
        )

    @pa.dataframe_check(name="time_hour_matches_local_hour", ignore_na=False)
    def time_hour_matches(cls, df: pd.DataFrame) -> pd.Series:
        return _local_stamp(df["time_hour"]) == _local_parts(df, with_hour=True)


def _local_parts(df: pd.DataFrame, with_hour: bool) -> pd.Series:
    stamp = (
        df["year"].astype(str)
        + "-"
        + df["month"].astype(str).str.zfill(2)
        + "-"
        + df["day"].astype(str).str.zfill(2)
    )
    return stamp + " " + df["hour"].astype(str).str.zfill(2) if with_hour else stamp


def _local_stamp(utc_text: pd.Series) -> pd.Series:
    parsed = pd.to_datetime(utc_text, utc=True, errors="coerce", format="ISO8601")
    return parsed.dt.tz_convert(LOCAL_TZ).dt.strftime("%Y-%m-%d %H")


def _landed_flights_rules(params: Params) -> tuple[dict[str, list], list]:
    refs = params.refs("landed_flights")
    columns = {
        "carrier": [
            pa.Check.isin(
                sorted(refs.carriers), name="carrier_in_airlines", error="carrier_in_airlines"
            )
        ],
        "origin": [
            pa.Check.isin(
                sorted(refs.airports), name="origin_in_airports", error="origin_in_airports"
            )
        ],
    }
    frame = [
        pa.Check(
            lambda df: _local_parts(df, with_hour=False) == params.day,
            name="rows_belong_to_partition_day",
            ignore_na=False,
        ),
        pa.Check(
            lambda df: _arrival_after_departure(df, refs),
            name="arrival_after_departure",
            ignore_na=False,
        ),
    ]
    return columns, frame


def _arrival_after_departure(df: pd.DataFrame, refs: References) -> pd.Series:
    """Gate-to-gate time (clock times shifted by the airports' UTC offsets) covers the air time.

    Checked when departure, arrival and air time are all known and the destination's offset is in
    the airports table; other rows pass.
    """
    origin = df["origin"].map(lambda code: refs.utc_offsets.get(code, (None, False)))
    dest = df["dest"].map(lambda code: refs.utc_offsets.get(code, (None, False)))
    local = pd.to_datetime(
        dict(year=df["year"], month=df["month"], day=df["day"], hour=df["hour"]), errors="coerce"
    )
    utc = pd.to_datetime(df["time_hour"], utc=True, errors="coerce", format="ISO8601")
    origin_offset = (local - utc.dt.tz_localize(None)) / pd.Timedelta(hours=1)
    in_dst = origin_offset != origin.map(lambda o: o[0]).astype("float64")
    dest_offset = dest.map(lambda o: o[0]).astype("float64") + (
        in_dst & dest.map(lambda o: o[1])
    ).astype("float64")
    block = (
        _minutes(df["arr_time"]) - _minutes(df["dep_time"]) - (dest_offset - origin_offset) * 60
    ) % 1440
    unknown = df[["dep_time", "arr_time", "air_time"]].isna().any(axis=1) | dest_offset.isna()
    return unknown | (block >= df["air_time"])


def _weather_rules(params: Params) -> tuple[dict[str, list], list]:
    day = params.day
    return {}, [
        pa.Check(
            lambda df: _local_parts(df, with_hour=False) == day,
            name="rows_belong_to_partition_day",
            ignore_na=False,
        )
    ]


# --- Assets ----------------------------------------------------------------------------------


class RawFlights(pa.DataFrameModel):
    """The ``raw_flights`` asset: typed flights of one day keyed by ``flight_id``."""

    flight_id: Series[str] = pa.Field(unique=True)
    flight_date: Series[str]
    carrier: Series[str]
    flight: Series[int] = pa.Field(ge=1, le=9_999)
    tailnum: Series[pd.StringDtype] = pa.Field(nullable=True)
    origin: Series[str] = pa.Field(isin=list(NYC_AIRPORTS))
    dest: Series[str] = pa.Field(str_length={"min_value": 3, "max_value": 4})
    distance: Series[float] = _range(DISTANCE_MILES)
    sched_dep_ts: Series[UtcTimestamp]
    dep_delay: Series[float] = _range(DELAY_MINUTES, nullable=True)
    actual_dep_ts: Series[UtcTimestamp] = pa.Field(nullable=True)
    is_delayed: Series[float] = pa.Field(isin=[0.0, 1.0], nullable=True)

    class Config:
        strict = True

    @pa.dataframe_check(name="actual_departure_is_schedule_plus_delay", ignore_na=False)
    def actual_departure(cls, df: pd.DataFrame) -> pd.Series:
        expected = df["sched_dep_ts"] + pd.to_timedelta(df["dep_delay"], unit="min")
        return (df["actual_dep_ts"].isna() & df["dep_delay"].isna()) | (
            df["actual_dep_ts"] == expected
        )

    @pa.dataframe_check(name="label_is_delay_over_threshold", ignore_na=False)
    def label(cls, df: pd.DataFrame) -> pd.Series:
        late = (df["dep_delay"] > DELAY_THRESHOLD_MINUTES).astype("float64")
        return (df["is_delayed"].isna() & df["dep_delay"].isna()) | (df["is_delayed"] == late)


class RawWeather(pa.DataFrameModel):
    """The ``raw_weather`` asset: hourly observations keyed by (origin, obs_ts)."""

    origin: Series[str] = pa.Field(isin=list(NYC_AIRPORTS))
    temp: Series[float] = _range(TEMP_F, nullable=True)
    dewp: Series[float] = _range(DEWPOINT_F, nullable=True)
    humid: Series[float] = pa.Field(ge=0, le=100, nullable=True)
    wind_dir: Series[float] = pa.Field(ge=0, le=360, nullable=True)
    wind_speed: Series[float] = _range(WIND_SPEED_MPH, nullable=True)
    wind_gust: Series[float] = _range(WIND_GUST_MPH, nullable=True)
    precip: Series[float] = _range(PRECIP_INCHES, nullable=True)
    pressure: Series[float] = _range(PRESSURE_HPA, nullable=True)
    visib: Series[float] = _range(VISIBILITY_MILES, nullable=True)
    obs_ts: Series[UtcTimestamp]

    class Config:
        strict = True
        unique = ["origin", "obs_ts"]


def _in_local_day(stamps: pd.Series, day: str | None) -> pd.Series:
    return stamps.dt.tz_convert(LOCAL_TZ).dt.strftime("%Y-%m-%d") == day


def _raw_flights_rules(params: Params) -> tuple[dict[str, list], list]:
    refs = params.refs("raw_flights")
    day = params.day
    return {
        "carrier": [
            pa.Check.isin(
                sorted(refs.carriers), name="carrier_in_airlines", error="carrier_in_airlines"
            )
        ],
        "origin": [
            pa.Check.isin(
                sorted(refs.airports), name="origin_in_airports", error="origin_in_airports"
            )
        ],
        "flight_date": [
            pa.Check.eq(
                day, name="rows_belong_to_partition_day", error="rows_belong_to_partition_day"
            )
        ],
    }, [
        pa.Check(
            lambda df: _in_local_day(df["sched_dep_ts"], day),
            name="departure_on_partition_day",
            ignore_na=False,
        )
    ]


def _raw_weather_rules(params: Params) -> tuple[dict[str, list], list]:
    day = params.day
    return {}, [
        pa.Check(
            lambda df: _in_local_day(df["obs_ts"], day),
            name="observed_on_partition_day",
            ignore_na=False,
        )
    ]


class FlightFeatures(pa.DataFrameModel):
    """The ``flight_features`` asset: schedule, plane and the origin's weather at prediction time.

    Text columns are checked as ``object`` (a dtype test, not a per-value one) and the rules on
    non-null text columns keep nulls (``ignore_na=False``, nothing to drop first), so a million
    rows validate within a second; the values are covered by ``isin`` and key rules.
    """

    flight_id: Series[object] = pa.Field(unique=True)
    flight_date: Series[object]
    sched_dep_ts: Series[UtcTimestamp]
    prediction_ts: Series[UtcTimestamp]
    tailnum: Series[object] = pa.Field(nullable=True)
    is_delayed: Series[float] = pa.Field(isin=[0.0, 1.0], nullable=True)
    carrier: Series[object]
    origin: Series[object] = pa.Field(isin=list(NYC_AIRPORTS), ignore_na=False)
    dest: Series[object]
    distance: Series[float] = _range(DISTANCE_MILES)
    sched_hour: Series[float] = pa.Field(ge=0, lt=24)
    weekday: Series[float] = pa.Field(ge=0, le=6)
    days_to_holiday: Series[float] = pa.Field(ge=0, le=30)
    plane_age: Series[float] = pa.Field(ge=-1, le=100, nullable=True)
    seats: Series[float] = pa.Field(ge=1, le=1_000, nullable=True)
    engines: Series[float] = pa.Field(ge=1, le=8, nullable=True)
    wx_temp: Series[float] = _range(TEMP_F, nullable=True)
    wx_dewp: Series[float] = _range(DEWPOINT_F, nullable=True)
    wx_humid: Series[float] = pa.Field(ge=0, le=100, nullable=True)
    wx_wind_speed: Series[float] = _range(WIND_SPEED_MPH, nullable=True)
    wx_wind_gust: Series[float] = _range(WIND_GUST_MPH, nullable=True)
    wx_precip: Series[float] = _range(PRECIP_INCHES, nullable=True)
    wx_pressure: Series[float] = _range(PRESSURE_HPA, nullable=True)
    wx_visib: Series[float] = _range(VISIBILITY_MILES, nullable=True)
    wx_precip_3h: Series[float] = pa.Field(ge=0, le=3 * PRECIP_INCHES[1], nullable=True)
    wx_pressure_change_3h: Series[float] = pa.Field(ge=-50, le=50, nullable=True)
    wx_age_hours: Series[float] = pa.Field(ge=0, le=3, nullable=True)

    class Config:
        strict = True


def _flight_features_rules(params: Params) -> tuple[dict[str, list], list]:
    refs = params.refs("flight_features")
    horizon = pd.Timedelta(hours=params.horizon_hours)
    return {
        "carrier": [
            pa.Check.isin(
                sorted(refs.carriers),
                name="carrier_in_airlines",
                error="carrier_in_airlines",
                ignore_na=False,
            )
        ],
        "flight_date": [
            pa.Check.eq(
                params.day,
                name="rows_belong_to_partition_day",
                error="rows_belong_to_partition_day",
                ignore_na=False,
            )
        ],
    }, [
        pa.Check(
            lambda df: df["prediction_ts"] == df["sched_dep_ts"] - horizon,
            name="prediction_is_horizon_before_departure",
            ignore_na=False,
        )
    ]


class TrafficFeatures(pa.DataFrameModel):
    """The ``traffic_features`` asset: congestion, trailing delay rates, the day's known delays."""

    flight_id: Series[object] = pa.Field(unique=True)
    origin_hour_departures: Series[int] = pa.Field(ge=1)
    origin_3h_departures: Series[float] = pa.Field(ge=1)
    carrier_origin_departures: Series[int] = pa.Field(ge=1)
    carrier_rate_hist: Series[float] = pa.Field(ge=0, le=1)
    origin_rate_hist: Series[float] = pa.Field(ge=0, le=1)
    dest_rate_hist: Series[float] = pa.Field(ge=0, le=1)
    route_rate_hist: Series[float] = pa.Field(ge=0, le=1)
    carrier_origin_rate_hist: Series[float] = pa.Field(ge=0, le=1)
    origin_hour_rate_hist: Series[float] = pa.Field(ge=0, le=1)
    origin_known_3h: Series[float] = pa.Field(ge=0)
    origin_delayed_share_3h: Series[float] = pa.Field(ge=0, le=1, nullable=True)
    origin_known_today: Series[float] = pa.Field(ge=0)
    origin_delayed_share_today: Series[float] = pa.Field(ge=0, le=1, nullable=True)
    carrier_delayed_share_today: Series[float] = pa.Field(ge=0, le=1, nullable=True)
    origin_mean_delay_3h: Series[float] = _range(DELAY_MINUTES, nullable=True)
    tail_leg_index: Series[float] = pa.Field(ge=0, nullable=True)
    tail_turnaround_min: Series[float] = pa.Field(ge=0, le=1440, nullable=True)
    tail_prev_known_delayed: Series[float] = pa.Field(isin=[0.0, 1.0], nullable=True)
    tail_prev_delay_known: Series[float] = _range(DELAY_MINUTES, nullable=True)
    tail_legs_today: Series[float] = pa.Field(ge=1, nullable=True)
    tail_rate_hist: Series[float] = pa.Field(ge=0, le=1, nullable=True)

    class Config:
        strict = True

    @pa.dataframe_check(name="three_hours_hold_the_hour", ignore_na=False)
    def three_hours(cls, df: pd.DataFrame) -> pd.Series:
        return df["origin_3h_departures"] >= df["origin_hour_departures"]


class TrainingSet(FlightFeatures, TrafficFeatures):
    """The ``training_set`` asset: both feature branches over the window,
    labelled, split by time."""

    is_delayed: Series[float] = pa.Field(isin=[0.0, 1.0])
    split: Series[object] = pa.Field(isin=[TRAIN, HOLDOUT])

    class Config:
        strict = True


def _training_set_rules(params: Params) -> tuple[dict[str, list], list]:
    minimum = params.min_training_rows

    def both_classes(part: str) -> Callable[[pd.DataFrame], bool]:
        return lambda df: set(df.loc[df[SPLIT] == part, "is_delayed"].dropna()) == {0.0, 1.0}

    return {}, [
        pa.Check(
            lambda df: int((df[SPLIT] == TRAIN).sum()) > minimum,
            name=f"more_than_{minimum}_training_rows",
            ignore_na=False,
        ),
        pa.Check(both_classes(TRAIN), name="both_classes_in_training_rows", ignore_na=False),
        pa.Check(both_classes(HOLDOUT), name="both_classes_in_holdout_rows", ignore_na=False),
        pa.Check(
            lambda df: (
                df.loc[df[SPLIT] == TRAIN, "flight_date"].max()
                < df.loc[df[SPLIT] == HOLDOUT, "flight_date"].min()
            ),
            name="holdout_after_training_rows",
            ignore_na=False,
        ),
        pa.Check(
            lambda df: params.day is None or str(df["flight_date"].max()) <= params.day,
            name="no_rows_after_partition_day",
            ignore_na=False,
        ),
    ]


class Leaderboard(pa.DataFrameModel):
    """The ``model_leaderboard`` asset: every model's holdout metrics, best AUC first."""

    rank: Series[int] = pa.Field(ge=1, unique=True)
    model: Series[str] = pa.Field(unique=True)
    asset: Series[str] = pa.Field(unique=True, str_startswith="model__")
    sha256: Series[str] = pa.Field(str_matches=r"^[0-9a-f]{64}$")
    auc: Series[float] = pa.Field(ge=0, le=1)
    log_loss: Series[float] = pa.Field(ge=0)
    brier: Series[float] = pa.Field(ge=0, le=1)
    ece: Series[float] = pa.Field(ge=0, le=1)
    mean_predicted: Series[float] = pa.Field(ge=0, le=1)
    positive_rate: Series[float] = pa.Field(gt=0, lt=1)
    train_window: Series[str] = pa.Field(str_matches=r"^(expanding|trailing \d+d)$")
    train_rows: Series[int] = pa.Field(gt=0)
    train_first_day: Series[str]
    train_last_day: Series[str]

    class Config:
        strict = True

    @pa.dataframe_check(name="has_rows", ignore_na=False)
    def has_rows(cls, df: pd.DataFrame) -> bool:
        return len(df) > 0

    @pa.dataframe_check(name="ranked_by_auc", ignore_na=False)
    def ranked(cls, df: pd.DataFrame) -> bool:
        return list(df["rank"]) == list(range(1, len(df) + 1)) and df["auc"].is_monotonic_decreasing

    @pa.dataframe_check(name="training_window_ordered", ignore_na=False)
    def window(cls, df: pd.DataFrame) -> pd.Series:
        return df["train_first_day"] <= df["train_last_day"]


def _leaderboard_rules(params: Params) -> tuple[dict[str, list], list]:
    return {}, [
        pa.Check(
            lambda df: params.day is None or bool((df["train_last_day"] <= params.day).all()),
            name="trained_on_rows_before_partition_day",
            ignore_na=False,
        )
    ]


# --- The registry ----------------------------------------------------------------------------


def _no_rules(params: Params) -> tuple[dict[str, list], list]:
    return {}, []


@dataclass(frozen=True)
class Contract:
    """One frame's contract: the model, its run-time rules, and which failures fail the table."""

    name: str
    model: type[pa.DataFrameModel]
    quarantine: bool = True
    table_rules: frozenset[str] = frozenset()
    rules: Callable[[Params], tuple[dict[str, list], list]] = _no_rules
    needs_references: bool = False

    def schema(self, params: Params) -> pa.DataFrameSchema:
        """The model's schema plus the rules that depend on ``params``."""
        schema = self.model.to_schema()
        columns, frame_checks = self.rules(params)
        updates = {
            name: {"checks": [*schema.columns[name].checks, *checks]}
            for name, checks in columns.items()
        }
        schema = schema.update_columns(updates) if updates else copy.copy(schema)
        schema.checks = [*schema.checks, *frame_checks]
        return schema

    def column_docs(self) -> dict[str, dict[str, object]]:
        """Per column: dtype, nullable, unique, and the static rules
        (for ``dagster/column_schema``)."""
        schema = self.model.to_schema()
        return {
            name: {
                "type": str(column.dtype),
                "nullable": bool(column.nullable),
                "unique": bool(column.unique),
                "rules": [str(check.error or check.name) for check in column.checks],
            }
            for name, column in schema.columns.items()
        }


_DAY_RULES = frozenset({"rows_belong_to_partition_day", "no_duplicate_rows"})
CONTRACTS: dict[str, Contract] = {
    c.name: c
    for c in (
        Contract("airlines", Airlines, quarantine=False),
        Contract("airports", Airports, quarantine=False),
        Contract("planes", Planes),
        Contract(
            "landed_flights",
            LandedFlights,
            table_rules=_DAY_RULES | {"has_rows"},
            rules=_landed_flights_rules,
            needs_references=True,
        ),
        Contract("landed_weather", LandedWeather, table_rules=_DAY_RULES, rules=_weather_rules),
        Contract(
            "raw_flights",
            RawFlights,
            table_rules=_DAY_RULES | {"departure_on_partition_day"},
            rules=_raw_flights_rules,
            needs_references=True,
        ),
        Contract(
            "raw_weather",
            RawWeather,
            table_rules=frozenset({"observed_on_partition_day"}),
            rules=_raw_weather_rules,
        ),
        Contract(
            "flight_features",
            FlightFeatures,
            table_rules=_DAY_RULES,
            rules=_flight_features_rules,
            needs_references=True,
        ),
        Contract("traffic_features", TrafficFeatures),
        Contract("training_set", TrainingSet, quarantine=False, rules=_training_set_rules),
        Contract("model_leaderboard", Leaderboard, quarantine=False, rules=_leaderboard_rules),
    )
}


def contract(name: str) -> Contract:
    try:
        return CONTRACTS[name]
    except KeyError:
        raise ValueError(f"no data contract named {name!r}; known: {sorted(CONTRACTS)}") from None


def references_from(airlines: pd.DataFrame, airports: pd.DataFrame) -> References:
    """Validate the reference tables (table-level) and index them for referential rules."""
    for name, frame in (("airlines", airlines), ("airports", airports)):
        try:
            contract(name).schema(Params()).validate(frame, lazy=True)
        except pa.errors.SchemaErrors as exc:
            rules = sorted(set(exc.failure_cases["check"].astype(str)))
            raise ValueError(f"reference table {name} breaks its contract: {rules}") from None
    offsets = {
        str(faa): (float(tz), dst == "A")
        for faa, tz, dst in zip(airports["faa"], airports["tz"], airports["dst"], strict=True)
    }
    return References(carriers=frozenset(airlines["carrier"].astype(str)), utc_offsets=offsets)
