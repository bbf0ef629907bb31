"""Typing of landed rows: raw CSV frames -> typed, keyed frames with UTC timestamps."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

LOCAL_TZ = "America/New_York"
DELAY_THRESHOLD_MINUTES = 15

FLIGHT_COLUMNS = (
    "year",
    "month",
    "day",
    "sched_dep_time",
    "dep_delay",
    "carrier",
    "flight",
    "tailnum",
    "origin",
    "dest",
    "distance",
)
WEATHER_COLUMNS = (
    "origin",
    "time_hour",
    "temp",
    "dewp",
    "humid",
    "wind_dir",
    "wind_speed",
    "wind_gust",
    "precip",
    "pressure",
    "visib",
)
WEATHER_VALUES = WEATHER_COLUMNS[2:]


class SchemaError(ValueError):
    """Landed data lacks required columns or does not belong to its partition."""


def _require(frame: pd.DataFrame, columns: tuple[str, ...], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise SchemaError(f"{what}: missing required columns {missing}")


def prepare_flights(raw: pd.DataFrame, day: str) -> pd.DataFrame:
    """Flights of one local calendar day, keyed by ``flight_id``, with UTC departure times.

    ``is_delayed`` is the label (departure delay > 15 min); it is missing for cancelled flights.
    """
    import pandas as pd

    _require(raw, FLIGHT_COLUMNS, f"flights for {day}")
    dates = pd.to_datetime(
        dict(year=raw["year"], month=raw["month"], day=raw["day"]), errors="coerce"
    )
    wrong = dates.dt.strftime("%Y-%m-%d") != day
    if wrong.any():
        raise SchemaError(f"flights for {day}: {int(wrong.sum())} rows belong to another day")
    hhmm = raw["sched_dep_time"].astype("int64")
    local = dates + pd.to_timedelta(hhmm // 100 * 60 + hhmm % 100, unit="min")
    sched = local.dt.tz_localize(LOCAL_TZ, nonexistent="shift_forward", ambiguous=False)
    sched_utc = sched.dt.tz_convert("UTC")
    dep_delay = raw["dep_delay"].astype("float64")
    out = pd.DataFrame(
        {
            "flight_id": (
                day
                + "/"
                + raw["carrier"].astype(str)
                + raw["flight"].astype(str)
                + "/"
                + raw["origin"].astype(str)
                + "-"
                + raw["dest"].astype(str)
                + "/"
                + hhmm.astype(str).str.zfill(4)
            ),
            "flight_date": day,
            "carrier": raw["carrier"].astype(str),
            "flight": raw["flight"].astype("int64"),
            "tailnum": raw["tailnum"].astype("string"),
            "origin": raw["origin"].astype(str),
            "dest": raw["dest"].astype(str),
            "distance": raw["distance"].astype("float64"),
            "sched_dep_ts": sched_utc,
            "dep_delay": dep_delay,
            "actual_dep_ts": sched_utc + pd.to_timedelta(dep_delay, unit="min"),
            "is_delayed": (dep_delay > DELAY_THRESHOLD_MINUTES)
            .astype("float64")
            .where(dep_delay.notna()),
        }
    )
    return out.sort_values(["sched_dep_ts", "flight_id"], kind="stable").reset_index(drop=True)


def prepare_weather(raw: pd.DataFrame, day: str) -> pd.DataFrame:
    """Hourly observations of one day at the NYC airports, keyed by (origin, obs_ts UTC)."""
    import pandas as pd

    _require(raw, WEATHER_COLUMNS, f"weather for {day}")
    if {"year", "month", "day"} <= set(raw.columns) and len(raw):
        local = pd.to_datetime(
            dict(year=raw["year"], month=raw["month"], day=raw["day"]), errors="coerce"
        )
        wrong = local.dt.strftime("%Y-%m-%d") != day
        if wrong.any():
            raise SchemaError(f"weather for {day}: {int(wrong.sum())} rows belong to another day")
    out = raw.loc[:, ["origin", *WEATHER_VALUES]].copy()
    out["obs_ts"] = pd.to_datetime(raw["time_hour"], utc=True)
    out[list(WEATHER_VALUES)] = out[list(WEATHER_VALUES)].astype("float64")
    out = out.drop_duplicates(["origin", "obs_ts"], keep="last")
    return out.sort_values(["origin", "obs_ts"], kind="stable").reset_index(drop=True)


def prepare_planes(raw: pd.DataFrame) -> pd.DataFrame:
    """Plane reference data keyed by ``tailnum``."""
    _require(raw, ("tailnum", "year", "seats", "engines", "engine"), "planes")
    out = raw.loc[:, ["tailnum", "year", "seats", "engines", "engine", "manufacturer"]].copy()
    out["year"] = out["year"].astype("float64")
    out["seats"] = out["seats"].astype("float64")
    out["engines"] = out["engines"].astype("float64")
    return out.drop_duplicates("tailnum").sort_values("tailnum").reset_index(drop=True)
