"""Feature engineering on real consecutive days: point-in-time correctness above all."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ml_assets.models.features import (
    CATEGORICAL_FEATURES,
    ENTITY_TIMESTAMP,
    ENTITY_VIEWS,
    FLIGHT_FEATURES,
    HISTORY_PRIOR_WEIGHT,
    KEY,
    LABEL,
    TRAFFIC_FEATURES,
    build_entity_rows,
    build_flight_features,
    build_traffic_features,
    entity_stamp,
    join_keys,
    keys_from_flight_ids,
    label_known_time,
    prediction_time,
)
from ml_assets.models.prepare import LOCAL_TZ
from ml_assets_tests import _samples

DAY = "2013-02-14"  # a Thursday, four days before Washington's Birthday (2013-02-18)
HISTORY_DAYS = 7
HORIZON = 2.0
RATE_FEATURES = [f for f in TRAFFIC_FEATURES if f.endswith("_rate_hist")]
OUTCOME_COLUMNS = ["dep_delay", "actual_dep_ts", LABEL]


def _local(day: str, hour: float) -> pd.Timestamp:
    return (pd.Timestamp(day) + pd.Timedelta(hours=hour)).tz_localize(LOCAL_TZ).tz_convert("UTC")


@pytest.fixture(scope="module")
def history() -> pd.DataFrame:
    """Typed flights of DAY and the HISTORY_DAYS before it (the traffic branch's input)."""
    return _samples.flights(*_samples.days(_samples.shift_day(DAY, -HISTORY_DAYS), DAY))


@pytest.fixture(scope="module")
def traffic(history: pd.DataFrame) -> pd.DataFrame:
    return build_traffic_features(history, DAY, HORIZON)


@pytest.fixture(scope="module")
def day_flights() -> pd.DataFrame:
    return _samples.flights(DAY)


@pytest.fixture(scope="module")
def day_weather() -> pd.DataFrame:
    return _samples.weather(_samples.shift_day(DAY, -1), DAY)


@pytest.fixture(scope="module")
def flight_feats(day_flights, day_weather) -> pd.DataFrame:
    return build_flight_features(day_flights, day_weather, _samples.planes(), HORIZON)


# --- flight features (fan-in of flights, weather and planes) --------------------------------------


def test_flight_features_one_row_per_flight(flight_feats, day_flights) -> None:
    assert len(flight_feats) == len(day_flights)
    assert flight_feats[KEY].is_unique
    assert set(flight_feats[KEY]) == set(day_flights[KEY])
    for column in (KEY, LABEL, *CATEGORICAL_FEATURES, *FLIGHT_FEATURES, "prediction_ts"):
        assert column in flight_feats.columns
    merged = flight_feats.merge(day_flights[[KEY, LABEL, "sched_dep_ts"]], on=KEY)
    assert merged[f"{LABEL}_x"].equals(merged[f"{LABEL}_y"])
    assert (merged["prediction_ts"] == merged["sched_dep_ts_y"] - pd.Timedelta(hours=HORIZON)).all()


def test_weather_is_observed_at_or_before_prediction_time(flight_feats) -> None:
    age = flight_feats["wx_age_hours"]
    assert age.notna().all()  # NYC airports report hourly: every flight finds an observation
    assert (age >= 0).all()
    assert (age <= 3).all()
    assert age.max() < 1.0  # the latest hourly observation, not an older one


def test_weather_join_picks_the_latest_observation_before_prediction(
    flight_feats, day_weather
) -> None:
    sample = flight_feats.sample(60, random_state=0)
    for _, row in sample.iterrows():
        wx = day_weather.loc[
            (day_weather["origin"] == row["origin"])
            & (day_weather["obs_ts"] <= row["prediction_ts"])
        ]
        latest = wx.loc[wx["obs_ts"].idxmax()]
        assert row["wx_age_hours"] == pytest.approx(
            (row["prediction_ts"] - latest["obs_ts"]) / pd.Timedelta(hours=1)
        )
        assert row["wx_temp"] == latest["temp"]
        assert row["wx_pressure"] == latest["pressure"] or np.isnan(latest["pressure"])


def test_weather_after_prediction_time_does_not_change_features(
    flight_feats, day_flights, day_weather
) -> None:
    cutoff = _local(DAY, 12)
    future = day_weather["obs_ts"] > cutoff
    garbage = day_weather.copy()
    for column in (
        "temp",
        "dewp",
        "humid",
        "wind_speed",
        "wind_gust",
        "precip",
        "pressure",
        "visib",
    ):
        garbage.loc[future, column] = 9999.0
    perturbed = build_flight_features(day_flights, garbage, _samples.planes(), HORIZON)
    early = flight_feats["prediction_ts"] <= cutoff
    assert early.sum() > 200 and (~early).sum() > 200
    pd.testing.assert_frame_equal(flight_feats.loc[early], perturbed.loc[early])
    an_hour_later = flight_feats["prediction_ts"] >= cutoff + pd.Timedelta(hours=1)
    assert (perturbed.loc[an_hour_later, "wx_temp"] == 9999.0).all()  # the check can fail


def test_early_flights_need_the_previous_days_weather(day_flights, day_weather) -> None:
    only_today = day_weather.loc[day_weather["obs_ts"] >= _local(DAY, 0)]
    long_horizon = 8.0  # 05:00 departures are predicted at 21:00 the evening before
    without = build_flight_features(day_flights, only_today, _samples.planes(), long_horizon)
    with_previous = build_flight_features(day_flights, day_weather, _samples.planes(), long_horizon)
    before_midnight = without["prediction_ts"] < _local(DAY, 0)
    assert before_midnight.any()
    assert without.loc[before_midnight, "wx_temp"].isna().all()
    assert with_previous.loc[before_midnight, "wx_temp"].notna().all()
    assert (with_previous["wx_age_hours"].dropna() >= 0).all()


def test_calendar_and_plane_features(flight_feats) -> None:
    local = flight_feats["sched_dep_ts"].dt.tz_convert(LOCAL_TZ)
    assert (flight_feats["weekday"] == 3.0).all()  # Thursday
    assert (flight_feats["days_to_holiday"] == 4.0).all()  # Washington's Birthday, 2013-02-18
    assert np.allclose(flight_feats["sched_hour"], local.dt.hour + local.dt.minute / 60)

    planes = _samples.planes().set_index("tailnum")
    known = flight_feats.loc[flight_feats["tailnum"].isin(planes.index)].head(50)
    assert len(known) == 50
    for _, row in known.iterrows():
        plane = planes.loc[row["tailnum"]]
        assert row["seats"] == plane["seats"]
        if not np.isnan(plane["year"]):
            assert row["plane_age"] == 2013 - plane["year"]
    unknown = flight_feats.loc[~flight_feats["tailnum"].isin(planes.index)]
    assert unknown["seats"].isna().all()


# --- traffic features ----------------------------------------------------------------------------


def test_traffic_features_one_row_per_flight_of_the_day(traffic, history) -> None:
    today = history.loc[history["flight_date"] == DAY]
    assert len(traffic) == len(today)
    assert traffic[KEY].is_unique
    assert set(traffic[KEY]) == set(today[KEY])
    assert list(traffic.columns) == [KEY, *TRAFFIC_FEATURES]


def test_traffic_features_do_not_depend_on_input_order(traffic, history) -> None:
    shuffled = history.sample(frac=1.0, random_state=1).reset_index(drop=True)
    pd.testing.assert_frame_equal(build_traffic_features(shuffled, DAY, HORIZON), traffic)


def _make_late(flights: pd.DataFrame, mask: pd.Series) -> pd.DataFrame:
    """Rewrite the outcome of the masked flights: hours late (their label becomes 'delayed')."""
    out = flights.copy()
    delay = 600.0 + np.arange(int(mask.sum())) % 97
    out.loc[mask, "dep_delay"] = delay
    out.loc[mask, "actual_dep_ts"] = out.loc[mask, "sched_dep_ts"] + pd.to_timedelta(
        delay, unit="m"
    )
    out.loc[mask, LABEL] = 1.0
    return out


def _checked(
    history: pd.DataFrame, horizon: float, cutoff_hour: float
) -> tuple[pd.Series, pd.Timestamp]:
    today = history.loc[history["flight_date"] == DAY]
    predicted = prediction_time(today["sched_dep_ts"], horizon)
    checked = today.loc[predicted < _local(DAY, cutoff_hour), KEY]
    return checked, predicted.loc[checked.index].max()


def _assert_no_leakage(history: pd.DataFrame, horizon: float, cutoff_hour: float) -> None:
    """Outcomes not yet observable at the checked flights' prediction times must not matter."""
    baseline = build_traffic_features(history, DAY, horizon)
    checked, latest_prediction = _checked(history, horizon, cutoff_hour)
    assert len(checked) > 20
    unknown = label_known_time(history) > latest_prediction  # NaT (cancelled) compares False
    assert unknown.sum() > 100
    perturbed_input = _make_late(history, unknown)
    # The rewrite keeps those outcomes unknown at prediction time (late -> known at sched + 15).
    assert (label_known_time(perturbed_input).loc[unknown] > latest_prediction).all()
    perturbed = build_traffic_features(perturbed_input, DAY, horizon)
    rows = baseline[KEY].isin(checked)
    pd.testing.assert_frame_equal(baseline.loc[rows], perturbed.loc[rows])


@pytest.mark.parametrize("cutoff_hour", [6, 12, 18])
def test_no_leakage_of_outcomes_unknown_at_prediction_time(history, cutoff_hour: float) -> None:
    _assert_no_leakage(history, HORIZON, cutoff_hour)


def test_no_leakage_with_a_long_horizon(history) -> None:
    """At 8 h the first predictions come the evening before: history labels must be known then."""
    _assert_no_leakage(history, 8.0, 0)


def test_leakage_check_detects_known_outcomes(history) -> None:
    """Sanity of the check above: rewriting outcomes that *are* known changes features."""
    checked, latest_prediction = _checked(history, HORIZON, 12)
    known_today = (label_known_time(history) <= latest_prediction) & (history["flight_date"] == DAY)
    assert known_today.sum() > 100
    baseline = build_traffic_features(history, DAY, HORIZON)
    perturbed = build_traffic_features(_make_late(history, known_today), DAY, HORIZON)
    rows = baseline[KEY].isin(checked)
    changed = (baseline.loc[rows, TRAFFIC_FEATURES] != perturbed.loc[rows, TRAFFIC_FEATURES]) & ~(
        baseline.loc[rows, TRAFFIC_FEATURES].isna() & perturbed.loc[rows, TRAFFIC_FEATURES].isna()
    )
    assert changed["origin_delayed_share_today"].sum() > 20
    assert changed["origin_mean_delay_3h"].sum() > 20


def test_future_days_do_not_change_the_days_features(traffic, history) -> None:
    later = _samples.flights(_samples.shift_day(DAY, 1), _samples.shift_day(DAY, 2))
    with_future = build_traffic_features(
        pd.concat([history, later], ignore_index=True), DAY, HORIZON
    )
    pd.testing.assert_frame_equal(with_future, traffic)
    late_future = _make_late(later, pd.Series(True, index=later.index))
    with_late_future = build_traffic_features(
        pd.concat([history, late_future], ignore_index=True), DAY, HORIZON
    )
    pd.testing.assert_frame_equal(with_late_future, traffic)


def test_history_rates_use_only_days_before_the_day(traffic, history) -> None:
    today = history["flight_date"] == DAY
    all_late_today = build_traffic_features(_make_late(history, today), DAY, HORIZON)
    pd.testing.assert_frame_equal(all_late_today[RATE_FEATURES], traffic[RATE_FEATURES])

    # ... and they do use the days before (the check can fail).
    earlier = history["flight_date"] < DAY
    all_late_before = build_traffic_features(_make_late(history, earlier), DAY, HORIZON)
    no_plane = traffic[RATE_FEATURES].isna()  # tail_rate_hist of flights without a tail number
    assert (no_plane.sum() == 0).drop("tail_rate_hist").all()
    assert ((all_late_before[RATE_FEATURES] > traffic[RATE_FEATURES]) | no_plane).all().all()


def test_history_rates_are_smoothed_towards_the_prior(traffic, history) -> None:
    known = label_known_time(history) <= entity_stamp(
        DAY, HORIZON
    )  # late flights of DAY - 1 are not
    past = history.loc[(history["flight_date"] < DAY) & history[LABEL].notna() & known]
    prior = past[LABEL].mean()
    today = history.loc[history["flight_date"] == DAY].set_index(KEY)
    features = traffic.set_index(KEY)
    for carrier in ("UA", "B6", "EV", "MQ"):
        rows = past.loc[past["carrier"] == carrier, LABEL]
        expected = (rows.sum() + HISTORY_PRIOR_WEIGHT * prior) / (len(rows) + HISTORY_PRIOR_WEIGHT)
        ids = today.index[today["carrier"] == carrier]
        assert len(ids) > 0
        assert np.allclose(features.loc[ids, "carrier_rate_hist"], expected)
    # A key without history falls back to the prior.
    unseen = history.copy()
    unseen.loc[unseen["flight_date"] == DAY, "dest"] = "ZZZ"
    rates = build_traffic_features(unseen, DAY, HORIZON)
    assert np.allclose(rates["dest_rate_hist"], prior)
    assert np.allclose(rates["route_rate_hist"], prior)


def test_schedule_congestion_counts(traffic, history) -> None:
    today = history.loc[history["flight_date"] == DAY].copy()
    today["h"] = today["sched_dep_ts"].dt.tz_convert(LOCAL_TZ).dt.hour
    features = traffic.set_index(KEY)
    for _, row in today.sample(25, random_state=2).iterrows():
        same_origin = today.loc[today["origin"] == row["origin"]]
        f = features.loc[row[KEY]]
        assert f["origin_hour_departures"] == (same_origin["h"] == row["h"]).sum()
        assert (
            f["origin_3h_departures"] == same_origin["h"].between(row["h"] - 1, row["h"] + 1).sum()
        )
        assert f["carrier_origin_departures"] == (same_origin["carrier"] == row["carrier"]).sum()


def test_known_outcome_counts_match_a_direct_computation(traffic, history) -> None:
    known = label_known_time(history)
    features = traffic.set_index(KEY)
    today = history.loc[history["flight_date"] == DAY]
    midnight = _local(DAY, 0)
    for _, row in today.sample(25, random_state=3).iterrows():
        t = row["sched_dep_ts"] - pd.Timedelta(hours=HORIZON)
        seen = (history["origin"] == row["origin"]) & (known > midnight) & (known <= t)
        seen_3h = (
            (history["origin"] == row["origin"])
            & (known > t - pd.Timedelta(hours=3))
            & (known <= t)
        )
        f = features.loc[row[KEY]]
        assert f["origin_known_today"] == seen.sum()
        assert f["origin_known_3h"] == seen_3h.sum()
        if seen.sum():
            assert f["origin_delayed_share_today"] == pytest.approx(history.loc[seen, LABEL].mean())
        else:
            assert np.isnan(f["origin_delayed_share_today"])


def test_tail_features_follow_the_planes_legs(traffic, history) -> None:
    today = history.loc[history["flight_date"] == DAY]
    legs = today.loc[today["tailnum"].notna()].sort_values("sched_dep_ts")
    features = traffic.set_index(KEY)
    multi = legs.groupby("tailnum").filter(lambda g: len(g) >= 3)
    assert multi["tailnum"].nunique() > 5
    known = label_known_time(history)
    for _, group in list(multi.groupby("tailnum"))[:10]:
        f = features.loc[group[KEY]]
        assert f["tail_leg_index"].tolist() == list(range(len(group)))
        assert np.isnan(f["tail_turnaround_min"].iloc[0])
        gaps = group["sched_dep_ts"].diff().iloc[1:] / pd.Timedelta(minutes=1)
        assert np.allclose(f["tail_turnaround_min"].iloc[1:], gaps)
        for i in range(1, len(group)):
            t = group["sched_dep_ts"].iloc[i] - pd.Timedelta(hours=HORIZON)
            previous = group.index[i - 1]
            value = f["tail_prev_known_delayed"].iloc[i]
            if known.loc[previous] <= t:
                assert value == history.loc[previous, LABEL]
            else:
                assert np.isnan(value)
    untailed = today.loc[today["tailnum"].isna(), KEY]
    assert features.loc[untailed, "tail_leg_index"].isna().all()


def _shuffle_future(frame: pd.DataFrame, future: pd.Series, columns: list[str]) -> pd.DataFrame:
    """Permute ``columns`` among the ``future`` rows (outcomes or observations of later days)."""
    out = frame.copy()
    rows = out.index[future]
    order = np.random.default_rng(7).permutation(len(rows))
    for column in columns:
        out.loc[rows, column] = out.loc[rows, column].to_numpy()[order]
    return out


def _every_feature(flights: pd.DataFrame, weather: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Every frame the feature store serves for DAY: flight rows and each entity view's rows."""
    from ml_assets.feature_repo.feast_objects import feast_frames

    day_flights = flights.loc[flights["flight_date"] == DAY].reset_index(drop=True)
    ff = build_flight_features(day_flights, weather, _samples.planes(), HORIZON)
    tf = build_traffic_features(flights, DAY, HORIZON)
    return feast_frames(ff, tf, DAY, HORIZON)


def test_shuffling_the_days_after_d_changes_no_feature_of_day_d(history) -> None:
    """The leakage test over every feature (flight, traffic and entity views): outcomes,
    schedules and weather of the days after D are shuffled; no feature of D changes."""
    later = _samples.days(_samples.shift_day(DAY, 1), _samples.shift_day(DAY, 3))
    flights = pd.concat([history, _samples.flights(*later)], ignore_index=True)
    weather = _samples.weather(_samples.shift_day(DAY, -1), DAY, *later)
    baseline = _every_feature(flights, weather)
    assert set(baseline) == {"feast_features", *(f"feast_{v}" for v in ENTITY_VIEWS)}
    future = flights["flight_date"] > DAY
    shuffled = _shuffle_future(
        flights, future, [*OUTCOME_COLUMNS, "sched_dep_ts", "origin", "tailnum", "carrier"]
    )
    wx_future = weather["obs_ts"] > _local(_samples.shift_day(DAY, 1), 0)
    wx_values = [c for c in weather.columns if c not in ("origin", "obs_ts")]
    perturbed = _every_feature(shuffled, _shuffle_future(weather, wx_future, wx_values))
    for name, frame in baseline.items():
        pd.testing.assert_frame_equal(perturbed[name], frame, obj=name)
    # ... and the check can fail: shuffling the day itself changes features.
    today = flights["flight_date"] == DAY
    changed = _every_feature(_shuffle_future(flights, today, OUTCOME_COLUMNS), weather)
    assert not changed["feast_features"].equals(baseline["feast_features"])


def test_entity_rows_are_the_flights_values_known_before_the_days_first_prediction(
    traffic, history, flight_feats
) -> None:
    rows = build_entity_rows(flight_feats, traffic, DAY, HORIZON)
    keys = join_keys(flight_feats).merge(traffic, on=KEY)
    stamp = entity_stamp(DAY, HORIZON)
    assert stamp <= flight_feats["prediction_ts"].min()
    previous = history.loc[history["flight_date"] == _samples.shift_day(DAY, -1)]
    assert stamp > prediction_time(previous["sched_dep_ts"], HORIZON).max()
    for view, (_, key, features) in ENTITY_VIEWS.items():
        frame = rows[view]
        assert frame[key].is_unique and (frame[ENTITY_TIMESTAMP] == stamp).all()
        served = keys.loc[keys[key] != "", [KEY, key]].merge(frame, on=key, how="left")
        expected = keys.set_index(KEY).loc[served[KEY], list(features)]
        assert np.allclose(served[list(features)], expected, equal_nan=True), view
    assert set(rows["plane_stats"]["plane_id"]) == set(flight_feats["tailnum"].dropna())


def test_keys_from_flight_ids_match_the_flights_join_keys(flight_feats) -> None:
    keys = join_keys(flight_feats)
    from_ids = keys_from_flight_ids(keys[KEY].tolist())
    pd.testing.assert_frame_equal(from_ids, keys.drop(columns=["plane_id"]))
