"""Benchmark: the whole graph for N days through a real Dagster instance vs a plain-Python loop.

Both sides do the same work per day (ingest, both feature branches, training set, every catalog
model, leaderboard, gate) with the same pure functions; the days before the timed range are
prepared untimed on both sides. Prints seconds, the ratio Dagster / plain, and the code
location's load time beyond ``import dagster``.

    uv run python bench/bench_pipeline.py [--days 7] [--executors in_process,multiprocess]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FIRST_DAY = "2013-01-01"
TIMED_END = "2013-03-07"


def _env(root: Path) -> dict[str, str]:
    return {"ML_ASSETS_ROOT": str(root), "ML_ASSETS_ENV": "local"}


def daily_job():
    """Module-level factory so ``dg.reconstructable`` can rebuild the job in step processes."""
    from ml_assets.definitions import build_defs
    from ml_assets.execution import DAILY_JOB
    from ml_assets.settings import Settings

    return build_defs(Settings.from_env()).resolve_job_def(DAILY_JOB)


def plain_python(settings, days: list[str], warm: list[str]) -> float:
    """The same pure functions in a loop, frames kept in memory; returns seconds for ``days``."""
    import pandas as pd

    from ml_assets.assets.deployment import gate_rules
    from ml_assets.models.catalog import load_catalog
    from ml_assets.models.evaluate import score
    from ml_assets.models.features import LABEL, build_flight_features, build_traffic_features
    from ml_assets.models.gate import Champion, review
    from ml_assets.models.leaderboard import rank
    from ml_assets.models.prepare import prepare_flights, prepare_planes, prepare_weather
    from ml_assets.models.train import fit, holdout, predict
    from ml_assets.models.training_set import build_training_set
    from ml_assets.sources.landing_files import read_daily, read_reference

    catalog = load_catalog(settings.catalog_path)
    base, horizon = settings.landing_base, settings.prediction_horizon_hours
    planes = prepare_planes(read_reference(base, "planes"))
    flights, weather, ff, tf = {}, {}, {}, {}
    champion: Champion | None = None
    kept: dict = {}  # promoted models by sha256 (this loop's registry)

    def features(day: str, i: int, order: list[str]) -> None:
        flights[day] = prepare_flights(read_daily(base, "flights", day), day)
        weather[day] = prepare_weather(read_daily(base, "weather", day), day)
        ff[day] = build_flight_features(
            flights[day],
            pd.concat([weather[d] for d in order[max(0, i - 1) : i + 1]]),
            planes,
            horizon,
        )
        hist = pd.concat([flights[d] for d in order[max(0, i - settings.history_days) : i + 1]])
        tf[day] = build_traffic_features(hist, day, horizon)

    order = warm + days
    for i, day in enumerate(warm):
        features(day, i, order)
    started = time.perf_counter()
    for j, day in enumerate(days):
        i = len(warm) + j
        features(day, i, order)
        window = order[max(0, i - settings.window_days + 1) : i + 1]
        frame, _ = build_training_set(
            pd.concat([ff[d] for d in window]),
            pd.concat([tf[d] for d in window]),
            day,
            settings.holdout_days,
        )
        rows = holdout(frame)
        y = rows[LABEL].to_numpy()
        models = {e.name: fit(frame, e, settings.seed, settings.num_threads) for e in catalog}
        board = rank({name: (m, score(y, predict(m, rows))) for name, m in models.items()})
        verdict = review(
            day, board, models, frame, champion, kept.__getitem__, gate_rules(settings)
        )
        if verdict.decision.promote:
            kept[verdict.model.sha256] = verdict.model
            champion = Champion(verdict.model.name, verdict.model.sha256, day)
    return time.perf_counter() - started


def through_dagster(executor: str, days: list[str], warm: list[str]) -> float:
    """Days run one after another through a real (SQLite) instance; returns seconds for ``days``."""
    import dagster as dg

    from ml_assets.definitions import build_defs
    from ml_assets.execution import FEATURES_JOB, REFERENCE_JOB
    from ml_assets.operations.materialize import materialize_days
    from ml_assets.settings import Settings

    defs = build_defs(Settings.from_env())
    with dg.DagsterInstance.get() as instance:
        materialize_days(defs, instance, REFERENCE_JOB, [None])
        materialize_days(defs, instance, FEATURES_JOB, warm)
        started = time.perf_counter()
        if executor == "in_process":
            runs = materialize_days(defs, instance, "daily_pipeline", days)
            assert all(r.success for r in runs), runs
        else:
            job = dg.reconstructable(daily_job)
            for day in days:
                with dg.execute_job(
                    job, instance=instance, tags={"dagster/partition": day}
                ) as result:
                    assert result.success, day
        return time.perf_counter() - started


def load_time(repeats: int = 3) -> tuple[float, float]:
    """Median seconds for ``import dagster`` and for loading the code location beyond it."""
    code = (
        "import time; t0=time.perf_counter(); import dagster; t1=time.perf_counter();"
        "from ml_assets.definitions import defs; defs(); t2=time.perf_counter();"
        "print(t1-t0, t2-t1)"
    )
    samples = [
        tuple(
            map(
                float,
                subprocess.run(
                    [sys.executable, "-c", code], capture_output=True, text=True, check=True
                ).stdout.split(),
            )
        )
        for _ in range(repeats)
    ]
    return statistics.median(s[0] for s in samples), statistics.median(s[1] for s in samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--executors", default="in_process,multiprocess")
    args = parser.parse_args()

    from ml_assets.settings import Settings
    from ml_assets.sources.landing_files import days_between, land

    end = dt.date.fromisoformat(TIMED_END)
    start = (end - dt.timedelta(days=args.days - 1)).isoformat()
    all_days = days_between(FIRST_DAY, TIMED_END)
    days, warm = all_days[-args.days :], all_days[: -args.days]
    with tempfile.TemporaryDirectory(prefix="ml-assets-bench-") as tmp:
        landing = Path(tmp) / "landing"
        land(str(landing), FIRST_DAY, TIMED_END)
        plain_settings = Settings.from_env(
            {"ML_ASSETS_ROOT": tmp, "ML_ASSETS_LANDING": str(landing)}
        )
        plain = plain_python(plain_settings, days, warm)
        print(f"plain Python, {args.days} days ({start}..{TIMED_END}): {plain:7.1f} s")
        for executor in args.executors.split(","):
            root = Path(tmp) / executor
            root.mkdir()
            (root / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
            os.environ.update(
                _env(root) | {"ML_ASSETS_LANDING": str(landing), "DAGSTER_HOME": str(root)}
            )
            seconds = through_dagster(executor, days, warm)
            print(
                f"Dagster {executor:13s}, {args.days} days: {seconds:7.1f} s   "
                f"ratio {seconds / plain:5.2f}x"
            )
    dagster_import, beyond = load_time()
    print(f"import dagster: {dagster_import:.2f} s; code location load beyond it: {beyond:.2f} s")


if __name__ == "__main__":
    main()
