"""Benchmark: model quality on December 2013, never seen in training or selection.

With the pipeline's own pure functions (landing zone -> prepare -> features -> training set ->
catalog models -> leaderboard -> gate), and production settings (AUC gate 0.75, expanding
training set from 2013-01-01):

1. the pipeline's day 2013-11-30: every catalog model is trained on 2013-01-01..11-23, ranked on
   the holdout 11-24..11-30 and the best goes through the gate; prints each model's holdout and
   December AUC, and the deployed model's December AUC (the goal: >= 0.75);
2. the champion/challenger history over the last days of 2013: the daily run of each day D
   (training set ending on D, ``--history-models`` trained, ranked, compared with the champion on
   the same holdout by paired bootstrap: ``models.gate.review``); a day's flights are scored by
   the champion in place after the run of the day before, and the December AUC of those live
   predictions is printed.

Features go through the pure functions, not Feast: Feast's point-in-time join returns the same
values (online/offline parity and the training_set tests). Frames are cached under ``--cache``.

    uv run python bench/quality.py [--history-models gbdt,gbdt_recent] [--history-days 31]
        [--cutoff-models gbdt,gbdt_recent] [--require-improvement]
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import time
from pathlib import Path

YEAR_START, YEAR_END = "2013-01-01", "2013-12-31"
CUTOFF = "2013-11-30"
TEST_START = "2013-12-01"


def _features_version(settings) -> str:
    from ml_assets.models import features, prepare

    digest = hashlib.sha256()
    for module in (features, prepare):
        digest.update(Path(module.__file__).read_bytes())
    digest.update(f"{settings.prediction_horizon_hours}/{settings.history_days}".encode())
    return digest.hexdigest()[:12]


def year_features(settings, cache: Path):
    """Flight and traffic features of every day of 2013, cached per version of the feature code."""
    import pandas as pd

    from ml_assets.models.features import build_flight_features, build_traffic_features
    from ml_assets.models.prepare import prepare_flights, prepare_planes, prepare_weather
    from ml_assets.sources.landing_files import days_between, land, read_daily, read_reference

    version = _features_version(settings)
    ff_path, tf_path = cache / f"flight-{version}.parquet", cache / f"traffic-{version}.parquet"
    if ff_path.exists() and tf_path.exists():
        return pd.read_parquet(ff_path), pd.read_parquet(tf_path)
    base, horizon = settings.landing_base, settings.prediction_horizon_hours
    days = days_between(YEAR_START, YEAR_END)
    if not (Path(base) / "flights" / f"{YEAR_END}.csv").exists():
        land(base, YEAR_START, YEAR_END)
    planes = prepare_planes(read_reference(base, "planes"))
    flights = {d: prepare_flights(read_daily(base, "flights", d), d) for d in days}
    weather = {d: prepare_weather(read_daily(base, "weather", d), d) for d in days}
    ff, tf = [], []
    for i, day in enumerate(days):
        wx = pd.concat([weather[d] for d in days[max(0, i - 1) : i + 1]])
        ff.append(build_flight_features(flights[day], wx, planes, horizon))
        hist = pd.concat([flights[d] for d in days[max(0, i - settings.history_days) : i + 1]])
        tf.append(build_traffic_features(hist, day, horizon))
    ff_all, tf_all = pd.concat(ff, ignore_index=True), pd.concat(tf, ignore_index=True)
    ff_all.to_parquet(ff_path)
    tf_all.to_parquet(tf_path)
    return ff_all, tf_all


def window(ff, tf, day: str, settings):
    """The pipeline's training set of ``day`` (its window of days, split by time)."""
    from ml_assets.models.features import KEY
    from ml_assets.models.training_set import build_training_set

    first = (dt.date.fromisoformat(day) - dt.timedelta(days=settings.window_days - 1)).isoformat()
    days = (ff["flight_date"] >= first) & (ff["flight_date"] <= day)
    flights = ff.loc[days]
    traffic = tf.loc[tf[KEY].isin(flights[KEY])]
    frame, _ = build_training_set(flights, traffic, day, settings.holdout_days)
    return frame


def run_day(day, ff, tf, entries, settings, champion):
    """One daily run: train, rank, compare with the champion, decide.

    Returns (models, board, decision)."""
    from ml_assets.assets.deployment import gate_rules
    from ml_assets.models.evaluate import score
    from ml_assets.models.features import LABEL
    from ml_assets.models.gate import Champion, review
    from ml_assets.models.leaderboard import rank
    from ml_assets.models.train import fit, holdout, predict

    frame = window(ff, tf, day, settings)
    rows = holdout(frame)
    y = rows[LABEL].to_numpy()
    models = {e.name: fit(frame, e, settings.seed, settings.num_threads) for e in entries}
    board = rank({name: (m, score(y, predict(m, rows))) for name, m in models.items()})
    verdict = review(
        day,
        board,
        models,
        frame,
        Champion(champion[0].name, champion[0].sha256, champion[1]) if champion else None,
        lambda _sha256: champion[0],
        gate_rules(settings),
    )
    return models, board, verdict.model, verdict.decision, verdict.comparison


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cache", default="/tmp/ml-assets-quality")
    parser.add_argument("--history-models", default="gbdt,gbdt_recent")
    parser.add_argument("--history-days", type=int, default=31)
    parser.add_argument("--cutoff-models", default="", help="catalog subset on 11-30 (default all)")
    parser.add_argument("--require-improvement", action="store_true", help="the strict rule")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    import numpy as np
    import pandas as pd

    from ml_assets.models.catalog import load_catalog
    from ml_assets.models.evaluate import auc
    from ml_assets.models.features import LABEL
    from ml_assets.models.train import predict
    from ml_assets.settings import Settings

    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    settings = Settings.from_env(
        {
            "ML_ASSETS_ENV": "prod",
            "ML_ASSETS_ROOT": str(cache),
            "ML_ASSETS_LANDING": str(cache / "landing"),
            "ML_ASSETS_NUM_THREADS": str(args.threads),
            "ML_ASSETS_REQUIRE_SIGNIFICANT_IMPROVEMENT": str(args.require_improvement).lower(),
        }
    )
    catalog = load_catalog(settings.catalog_path)
    print(
        f"settings: gate {settings.auc_gate}, training set {settings.window_days} days "
        f"(holdout {settings.holdout_days}), horizon {settings.prediction_horizon_hours} h, "
        f"require significant improvement: {settings.require_significant_improvement}"
    )
    started = time.perf_counter()
    ff, tf = year_features(settings, cache)
    print(f"features of 2013: {len(ff)} flights ({time.perf_counter() - started:.0f} s)")
    test = window(ff, tf, YEAR_END, settings)
    test = test.loc[test["flight_date"] >= TEST_START]
    y_test = test[LABEL].to_numpy()

    started = time.perf_counter()
    cutoff = set(args.cutoff_models.split(",")) if args.cutoff_models else {e.name for e in catalog}
    cutoff_entries = [e for e in catalog if e.name in cutoff]
    models, board, best, decision, _ = run_day(CUTOFF, ff, tf, cutoff_entries, settings, None)
    board["december_auc"] = [auc(y_test, predict(models[m], test)) for m in board["model"]]
    print(f"\npipeline day {CUTOFF} ({time.perf_counter() - started:.0f} s): leaderboard")
    print(
        board.loc[
            :,
            [
                "rank",
                "model",
                "train_window",
                "train_first_day",
                "train_last_day",
                "train_rows",
                "auc",
                "log_loss",
                "brier",
                "ece",
                "december_auc",
            ],
        ].to_string(index=False, float_format=lambda v: f"{v:.4f}")
    )
    print(f"gate: {decision.reason}")
    deployed = best if decision.promote else None
    if deployed is not None:
        dec_auc = auc(y_test, predict(deployed, test))
        print(
            f"DECEMBER AUC of the deployed model {deployed.name} "
            f"({deployed.sha256[:12]}): {dec_auc:.4f} on {len(test)} flights "
            f"{TEST_START}..{YEAR_END} (goal 0.75)"
        )

    names = set(args.history_models.split(","))
    entries = [e for e in catalog if e.name in names]
    days = pd.date_range(end=YEAR_END, periods=args.history_days).strftime("%Y-%m-%d").tolist()
    champion = (deployed, CUTOFF) if deployed is not None else None
    live, history = [], []
    if not days:
        return
    print(f"\nchampion/challenger, daily runs {days[0]}..{days[-1]} with {sorted(names)}:")
    for day in days:
        todays = test.loc[test["flight_date"] == day]
        if champion is not None and len(todays):
            live.append(
                pd.DataFrame({"y": todays[LABEL].to_numpy(), "p": predict(champion[0], todays)})
            )
        t0 = time.perf_counter()
        _, board, best, decision, comparison = run_day(day, ff, tf, entries, settings, champion)
        if decision.promote:
            champion = (best, day)
        history.append(
            {
                "day": day,
                "promoted": decision.promote,
                "champion": champion[0].name if champion else None,
                "reason": decision.reason,
            }
        )
        diff = ""
        if comparison is not None:
            diff = (
                f" diff {comparison.auc_difference:+.4f} CI [{comparison.ci_low:+.4f},"
                f" {comparison.ci_high:+.4f}] p={comparison.p_value:.3f}"
            )
        verdict = "PROMOTE" if decision.promote else "keep   "
        print(
            f"  {day} {verdict} best {best.name:12s} holdout AUC {board.iloc[0]['auc']:.4f}{diff}"
            f" ({time.perf_counter() - t0:.0f} s)\n      {decision.reason}",
            flush=True,
        )
    if live:
        scored = pd.concat(live, ignore_index=True)
        promoted = sum(h["promoted"] for h in history)
        print(
            f"\nlive December AUC (each day's flights scored by the champion in place after the run"
            f" of the day before): {auc(scored['y'].to_numpy(), scored['p'].to_numpy()):.4f} on"
            f" {len(scored)} flights; {promoted} promotions in {len(history)} runs"
        )
        print(f"positive rate December: {np.mean(y_test):.3f}")


if __name__ == "__main__":
    main()
