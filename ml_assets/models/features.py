"""Feature engineering: pure functions over typed frames, point-in-time correct.

A prediction for a flight is made ``horizon`` hours before its scheduled departure (its
``prediction_ts``). Every feature uses only what is known at that moment: the published
schedule, weather observed by then, and delays of earlier flights once they are observable
(a flight's "more than 15 minutes late" is known at ``min(actual departure, scheduled + 15 min)``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ml_assets.models.prepare import DELAY_THRESHOLD_MINUTES, LOCAL_TZ

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

KEY = "flight_id"
LABEL = "is_delayed"
CATEGORICAL_FEATURES = ("carrier", "origin", "dest")
FLIGHT_FEATURES = (
    "distance",
    "sched_hour",
    "weekday",
    "days_to_holiday",
    "plane_age",
    "seats",
    "engines",
    "wx_temp",
    "wx_dewp",
    "wx_humid",
    "wx_wind_speed",
    "wx_wind_gust",
    "wx_precip",
    "wx_pressure",
    "wx_visib",
    "wx_precip_3h",
    "wx_pressure_change_3h",
    "wx_age_hours",
)
TRAFFIC_FEATURES = (
    "origin_hour_departures",
    "origin_3h_departures",
    "carrier_origin_departures",
    "carrier_rate_hist",
    "origin_rate_hist",
    "dest_rate_hist",
    "route_rate_hist",
    "carrier_origin_rate_hist",
    "origin_hour_rate_hist",
    "origin_known_3h",
    "origin_delayed_share_3h",
    "origin_known_today",
    "origin_delayed_share_today",
    "carrier_delayed_share_today",
    "origin_mean_delay_3h",
    "tail_leg_index",
    "tail_turnaround_min",
    "tail_prev_known_delayed",
    "tail_prev_delay_known",
    "tail_legs_today",
    "tail_rate_hist",
)
FEATURES = CATEGORICAL_FEATURES + FLIGHT_FEATURES + TRAFFIC_FEATURES
HISTORY_PRIOR_WEIGHT = 20.0

# Feast entity views: view -> (entity, join key, features). Each feature has one value per join key
# and day, known at the day's ``entity_stamp`` (schedule, and labels observable by then).
ENTITY_VIEWS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "carrier_stats": ("carrier", "carrier_id", ("carrier_rate_hist",)),
    "origin_stats": ("origin", "origin_id", ("origin_rate_hist",)),
    "route_stats": ("route", "route_id", ("route_rate_hist", "dest_rate_hist")),
    "origin_hour_stats": (
        "origin_hour",
        "origin_hour_id",
        ("origin_hour_departures", "origin_3h_departures", "origin_hour_rate_hist"),
    ),
    "plane_stats": ("plane", "plane_id", ("tail_legs_today", "tail_rate_hist")),
}
ENTITY_FEATURES = tuple(f for _, _, features in ENTITY_VIEWS.values() for f in features)
FLIGHT_TRAFFIC_FEATURES = tuple(f for f in TRAFFIC_FEATURES if f not in ENTITY_FEATURES)
JOIN_KEYS = tuple(key for _, key, _ in ENTITY_VIEWS.values())
ENTITY_TIMESTAMP = "event_timestamp"


def prediction_time(sched_dep_ts: pd.Series, horizon_hours: float) -> pd.Series:
    import pandas as pd

    return sched_dep_ts - pd.Timedelta(hours=horizon_hours)


def entity_stamp(day: str, horizon_hours: float) -> pd.Timestamp:
    """When a day's entity rows become known: local midnight minus the horizon, in UTC.

    It is at or before every prediction of the day and after every prediction of the day before.
    """
    import pandas as pd

    midnight = pd.Timestamp(day, tz=LOCAL_TZ)
    return (midnight - pd.Timedelta(hours=horizon_hours)).tz_convert("UTC")


def join_keys(flights: pd.DataFrame) -> pd.DataFrame:
    """The Feast join keys of each flight (``flight_id`` plus one per entity view)."""
    import pandas as pd

    hour = flights["sched_dep_ts"].dt.tz_convert(LOCAL_TZ).dt.hour.astype(str).str.zfill(2)
    return pd.DataFrame(
        {
            KEY: flights[KEY].to_numpy(),
            "carrier_id": flights["carrier"].astype(str).to_numpy(),
            "origin_id": flights["origin"].astype(str).to_numpy(),
            "route_id": (
                flights["origin"].astype(str) + "-" + flights["dest"].astype(str)
            ).to_numpy(),
            "origin_hour_id": (flights["origin"].astype(str) + "-" + hour).to_numpy(),
            "plane_id": flights["tailnum"].astype("string").fillna("").to_numpy(),
        }
    )


def keys_from_flight_ids(flight_ids: list[str]) -> pd.DataFrame:
    """The join keys a flight id determines (every entity key but the plane's).

    ``flight_id`` is ``YYYY-MM-DD/<carrier><number>/<origin>-<dest>/<HHMM local>``; carriers have
    two characters.
    """
    import pandas as pd

    parts = pd.Series(flight_ids, dtype=object).str.split("/", expand=True)
    if parts.shape[1] != 4 or parts.isna().any().any():
        raise ValueError(f"not a flight id: {flight_ids[:3]}")
    carrier, route, hour = parts[1].str[:2], parts[2], parts[3].str[:2]
    return pd.DataFrame(
        {
            KEY: list(flight_ids),
            "carrier_id": carrier,
            "origin_id": route.str.split("-").str[0],
            "route_id": route,
            "origin_hour_id": route.str.split("-").str[0] + "-" + hour,
        }
    )


@dataclass(frozen=True)
class Flight:
    """A departure as a caller knows it; ``scheduled`` is local New York time 'YYYY-MM-DD HH:MM'."""

    carrier: str
    flight: int
    origin: str
    dest: str
    scheduled: str
    tailnum: str | None = None

    @property
    def flight_id(self) -> str:
        return flight_id(self.carrier, self.flight, self.origin, self.dest, self.scheduled)

    def entity_row(self) -> dict[str, Any]:
        """Every Feast join key of the flight (``features.join_keys``); without a tail number
        the plane's key comes from the tail number the flight view serves."""
        hour = self.scheduled[11:13]
        row = {"flight_id": self.flight_id, "carrier_id": self.carrier, "origin_id": self.origin}
        row |= {"route_id": f"{self.origin}-{self.dest}", "origin_hour_id": f"{self.origin}-{hour}"}
        return row | ({"plane_id": self.tailnum} if self.tailnum else {})


def flight_id(carrier: str, flight: int, origin: str, dest: str, scheduled: str) -> str:
    """The pipeline's key for a departure;
    ``scheduled`` is local New York time 'YYYY-MM-DD HH:MM'."""
    when = dt.datetime.strptime(scheduled, "%Y-%m-%d %H:%M")
    return f"{when:%Y-%m-%d}/{carrier}{int(flight)}/{origin}-{dest}/{when:%H%M}"


def parse_flight_id(key: str) -> Flight:
    """The inverse of ``flight_id`` (no tail number: the key does not hold one)."""
    day, number, route, hhmm = key.split("/")
    origin, dest = route.split("-")
    carrier = number[:2]  # IATA carrier codes are two characters, digits allowed (B6, 9E)
    scheduled = f"{day} {hhmm[:2]}:{hhmm[2:]}"
    return Flight(carrier, int(number[len(carrier) :]), origin, dest, scheduled)


def label_known_time(flights: pd.DataFrame) -> pd.Series:
    """When a flight's label becomes observable; NaT for cancelled flights."""
    import pandas as pd

    late_at = flights["sched_dep_ts"] + pd.Timedelta(minutes=DELAY_THRESHOLD_MINUTES)
    known = flights["actual_dep_ts"].where(flights["actual_dep_ts"] < late_at, late_at)
    return known.where(flights[LABEL].notna())


def _days_to_holiday(local_dates: pd.Series) -> pd.Series:
    import numpy as np
    from pandas.tseries.holiday import USFederalHolidayCalendar

    days = local_dates.values.astype("datetime64[D]")
    lo, hi = days.min() - np.timedelta64(30, "D"), days.max() + np.timedelta64(30, "D")
    holidays = USFederalHolidayCalendar().holidays(str(lo), str(hi)).values.astype("datetime64[D]")
    if len(holidays) == 0:
        return local_dates.map(lambda _: 30.0)
    gaps = np.abs(days[:, None] - holidays[None, :]).astype("int64").min(axis=1)
    return local_dates.map(lambda _: 0.0).astype("float64") + np.minimum(gaps, 30)


def build_flight_features(
    flights: pd.DataFrame, weather: pd.DataFrame, planes: pd.DataFrame, horizon_hours: float
) -> pd.DataFrame:
    """Fan-in of one day's flights, the origin's weather and the plane table.

    ``weather`` must cover the day and the day before (early flights look back past midnight).
    """
    import pandas as pd

    out = flights.loc[
        :,
        [
            KEY,
            "flight_date",
            "carrier",
            "origin",
            "dest",
            "tailnum",
            "distance",
            "sched_dep_ts",
            LABEL,
        ],
    ].copy()
    out["prediction_ts"] = prediction_time(out["sched_dep_ts"], horizon_hours)
    local = out["sched_dep_ts"].dt.tz_convert(LOCAL_TZ)
    out["sched_hour"] = (local.dt.hour + local.dt.minute / 60.0).astype("float64")
    out["weekday"] = local.dt.weekday.astype("float64")
    out["days_to_holiday"] = _days_to_holiday(local.dt.tz_localize(None).dt.normalize())

    wx = weather.sort_values(["origin", "obs_ts"], kind="stable").copy()
    grouped = wx.groupby("origin", sort=False)
    wx["precip_3h"] = grouped["precip"].transform(lambda s: s.rolling(3, min_periods=1).sum())
    wx["pressure_change_3h"] = wx["pressure"] - grouped["pressure"].shift(3)
    wx = wx.rename(columns={c: f"wx_{c}" for c in wx.columns if c not in ("origin", "obs_ts")})
    joined = pd.merge_asof(
        out.sort_values("prediction_ts", kind="stable"),
        wx.sort_values("obs_ts", kind="stable"),
        left_on="prediction_ts",
        right_on="obs_ts",
        by="origin",
        direction="backward",
        tolerance=pd.Timedelta(hours=3),
    )
    joined["wx_age_hours"] = (joined["prediction_ts"] - joined["obs_ts"]) / pd.Timedelta(hours=1)
    joined = joined.drop(columns=["obs_ts", "wx_wind_dir"])

    plane = planes.loc[:, ["tailnum", "year", "seats", "engines"]]
    joined = joined.merge(plane, on="tailnum", how="left", validate="many_to_one")
    joined["plane_age"] = local.dt.year.iloc[0] - joined.pop("year") if len(joined) else 0.0
    columns = [KEY, "flight_date", "sched_dep_ts", "prediction_ts", "tailnum", LABEL]
    columns += [*CATEGORICAL_FEATURES, *FLIGHT_FEATURES]
    return (
        joined.loc[:, columns]
        .sort_values(["sched_dep_ts", KEY], kind="stable")
        .reset_index(drop=True)
    )


def _smoothed_rate(
    history: pd.DataFrame, today: pd.DataFrame, keys: list[str], prior: float
) -> pd.Series:
    stats = history.groupby(keys, observed=True)[LABEL].agg(["sum", "count"]).reset_index()
    stats["rate"] = (stats["sum"] + HISTORY_PRIOR_WEIGHT * prior) / (
        stats["count"] + HISTORY_PRIOR_WEIGHT
    )
    rate = today.loc[:, keys].merge(stats.loc[:, [*keys, "rate"]], on=keys, how="left")["rate"]
    return rate.fillna(prior).to_numpy()


def _events_before(
    event_keys: pd.Series,
    event_ts: pd.Series,
    event_values: pd.Series,
    query_keys: pd.Series,
    query_from: pd.Series,
    query_to: pd.Series,
) -> tuple[np.ndarray, np.ndarray]:
    """Per query, count and sum of the events of its key with ``from < ts <= to``."""
    import numpy as np
    import pandas as pd

    counts = np.zeros(len(query_keys))
    sums = np.zeros(len(query_keys))
    valid = event_ts.notna().to_numpy()
    events = pd.DataFrame(
        {
            "k": event_keys.to_numpy()[valid],
            "ts": event_ts.to_numpy()[valid],
            "v": event_values.to_numpy()[valid],
        }
    ).sort_values(["k", "ts"], kind="stable")
    ev = {
        key: (g["ts"].to_numpy(), g["v"].to_numpy()) for key, g in events.groupby("k", sort=False)
    }
    qk, qf, qt = query_keys.to_numpy(), query_from.to_numpy(), query_to.to_numpy()
    for key, (ts, vals) in ev.items():
        rows = np.flatnonzero(qk == key)
        if not len(rows):
            continue
        cum = np.concatenate([[0.0], np.cumsum(vals)])
        hi = np.searchsorted(ts, qt[rows], side="right")
        lo = np.searchsorted(ts, qf[rows], side="right")
        counts[rows] = hi - lo
        sums[rows] = cum[hi] - cum[lo]
    return counts, sums


def build_traffic_features(flights: pd.DataFrame, day: str, horizon_hours: float) -> pd.DataFrame:
    """Traffic and delay-history features for the flights of ``day``.

    ``flights`` holds the trailing history window ending on ``day`` (typed flights of each day).
    """
    import numpy as np
    import pandas as pd

    flights = flights.sort_values(["sched_dep_ts", KEY], kind="stable").reset_index(drop=True)
    today = flights.loc[flights["flight_date"] == day].reset_index(drop=True)
    out = pd.DataFrame({KEY: today[KEY]})
    t = prediction_time(today["sched_dep_ts"], horizon_hours)
    local_hour = today["sched_dep_ts"].dt.tz_convert(LOCAL_TZ).dt.hour

    # The published schedule is known in advance: congestion of the day.
    per_hour = today.assign(h=local_hour).groupby(["origin", "h"]).size()
    lookup = lambda dh: pd.MultiIndex.from_arrays([today["origin"], local_hour + dh])  # noqa: E731
    out["origin_hour_departures"] = per_hour.reindex(lookup(0)).fillna(0).to_numpy()
    out["origin_3h_departures"] = sum(
        per_hour.reindex(lookup(d)).fillna(0).to_numpy() for d in (-1, 0, 1)
    )
    out["carrier_origin_departures"] = (
        today.groupby(["carrier", "origin"])[KEY].transform("size").to_numpy()
    )

    # Delay rates over the trailing days before `day`: only labels observable at the day's entity
    # stamp (before its first prediction), so one value per key serves the whole day (Feast views).
    known_by = label_known_time(flights) <= entity_stamp(day, horizon_hours)
    history = flights.loc[(flights["flight_date"] < day) & flights[LABEL].notna() & known_by].copy()
    history["h"] = history["sched_dep_ts"].dt.tz_convert(LOCAL_TZ).dt.hour
    prior = float(history[LABEL].mean()) if len(history) else 0.2
    keyed = today.assign(h=local_hour)
    for name, keys in (
        ("carrier_rate_hist", ["carrier"]),
        ("origin_rate_hist", ["origin"]),
        ("dest_rate_hist", ["dest"]),
        ("route_rate_hist", ["origin", "dest"]),
        ("carrier_origin_rate_hist", ["carrier", "origin"]),
        ("origin_hour_rate_hist", ["origin", "h"]),
        ("tail_rate_hist", ["tailnum"]),
    ):
        out[name] = _smoothed_rate(history, keyed, keys, prior)
    no_tail = today["tailnum"].isna().to_numpy()
    out.loc[no_tail, "tail_rate_hist"] = float("nan")  # a plane entity needs a tail number
    out["tail_legs_today"] = today.groupby("tailnum")[KEY].transform("size").astype("float64")

    # What the day has shown by prediction time.
    known_ts = label_known_time(flights)
    midnight = today["sched_dep_ts"].dt.tz_convert(LOCAL_TZ).dt.normalize().dt.tz_convert("UTC")
    three_h = t - pd.Timedelta(hours=3)
    n3, d3 = _events_before(
        flights["origin"], known_ts, flights[LABEL], today["origin"], three_h, t
    )
    nd, dd = _events_before(
        flights["origin"], known_ts, flights[LABEL], today["origin"], midnight, t
    )
    nc, dc = _events_before(
        flights["carrier"], known_ts, flights[LABEL], today["carrier"], midnight, t
    )
    departed = flights["actual_dep_ts"].where(flights["dep_delay"].notna())
    nm, sm = _events_before(
        flights["origin"], departed, flights["dep_delay"], today["origin"], three_h, t
    )
    with np.errstate(invalid="ignore", divide="ignore"):
        out["origin_known_3h"] = n3
        out["origin_delayed_share_3h"] = np.where(n3 > 0, d3 / np.maximum(n3, 1), np.nan)
        out["origin_known_today"] = nd
        out["origin_delayed_share_today"] = np.where(nd > 0, dd / np.maximum(nd, 1), np.nan)
        out["carrier_delayed_share_today"] = np.where(nc > 0, dc / np.maximum(nc, 1), np.nan)
        out["origin_mean_delay_3h"] = np.where(nm > 0, sm / np.maximum(nm, 1), np.nan)

    # The plane's earlier legs today: schedule known; the previous leg's outcome only once
    # observable.
    legs = today.assign(t=t, known=known_ts.loc[flights["flight_date"] == day].to_numpy())
    legs = legs.loc[legs["tailnum"].notna()].sort_values(["tailnum", "sched_dep_ts"], kind="stable")
    by_tail = legs.groupby("tailnum", sort=False)
    prev_sched = by_tail["sched_dep_ts"].shift(1)
    prev_known = by_tail["known"].shift(1)
    prev_label = by_tail[LABEL].shift(1)
    prev_actual = by_tail["actual_dep_ts"].shift(1)
    prev_delay = by_tail["dep_delay"].shift(1)
    leg = pd.DataFrame(index=legs.index)
    leg["tail_leg_index"] = by_tail.cumcount().astype("float64")
    leg["tail_turnaround_min"] = (legs["sched_dep_ts"] - prev_sched) / pd.Timedelta(minutes=1)
    leg["tail_prev_known_delayed"] = prev_label.where(prev_known <= legs["t"])
    leg["tail_prev_delay_known"] = prev_delay.where(prev_actual <= legs["t"])
    for column in leg.columns:
        out[column] = leg[column].reindex(out.index).astype("float64")
    return out.loc[:, [KEY, *TRAFFIC_FEATURES]].reset_index(drop=True)


def build_feature_rows(
    flight_features: pd.DataFrame, traffic_features: pd.DataFrame
) -> pd.DataFrame:
    """One row per flight with its flight-level features, stamped with its prediction time (Feast's
    flight views); the entity-level features go to ``build_entity_rows``."""
    traffic = traffic_features.loc[:, [KEY, *FLIGHT_TRAFFIC_FEATURES]]
    rows = flight_features.loc[
        :, [KEY, "flight_date", "prediction_ts", *CATEGORICAL_FEATURES, *FLIGHT_FEATURES]
    ]
    joined = rows.merge(traffic, on=KEY, how="inner", validate="one_to_one")
    return joined.sort_values(["prediction_ts", KEY], kind="stable").reset_index(drop=True)


def build_entity_rows(
    flight_features: pd.DataFrame, traffic_features: pd.DataFrame, day: str, horizon_hours: float
) -> dict[str, pd.DataFrame]:
    """Per entity view, one row per join key of ``day``, stamped with ``entity_stamp`` (Feast).

    The values come from the day's traffic features, which hold one value per key; a key with two
    values would be a bug in the features, so it raises.
    """
    keyed = join_keys(flight_features).merge(
        traffic_features.loc[:, [KEY, *ENTITY_FEATURES]], on=KEY, how="inner", validate="one_to_one"
    )
    stamp = entity_stamp(day, horizon_hours)
    rows = {}
    for view, (_, key, features) in ENTITY_VIEWS.items():
        frame = keyed.loc[keyed[key] != "", [key, *features]].drop_duplicates()
        if frame[key].duplicated().any():
            bad = frame.loc[frame[key].duplicated(), key].iloc[0]
            raise ValueError(f"{view} for {day}: {key} {bad} has more than one value of a feature")
        frame = frame.sort_values(key, kind="stable").reset_index(drop=True)
        frame.insert(1, ENTITY_TIMESTAMP, stamp)
        rows[view] = frame
    return rows


def parity(
    online: pd.DataFrame, offline: pd.DataFrame, features: tuple[str, ...] = FEATURES
) -> pd.DataFrame:
    """Per flight and feature: do the online and offline values agree (NaN equals NaN)?"""
    import numpy as np

    left = online.set_index(KEY).loc[:, list(features)]
    right = offline.set_index(KEY).loc[left.index, list(features)]
    same = left.eq(right) | (left.isna() & right.isna())
    for column in features:
        if column not in CATEGORICAL_FEATURES:
            a = left[column].astype("float64").to_numpy()
            b = right[column].astype("float64").to_numpy()
            same[column] = np.isclose(a, b, rtol=1e-9, atol=1e-12, equal_nan=True)
    return same
