"""Benchmark: Feast online reads (SQLite and Redis), batch reads, predict, historical retrieval.

Feature rows of real days are written to a temp lake, applied and materialized; then:
- one-entity online read, p50/p99 over N reads (goal p99 <= 2 ms);
- 1,000-entity batch read (goal <= 30 ms);
- end-to-end ``predict`` p99 (goal <= 5 ms);
- historical (point-in-time) retrieval of a 35-day training window vs a plain pandas as-of join.

    uv run python bench/bench_feature_store.py [--reads 10000]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from pathlib import Path

DAYS = ("2013-01-01", "2013-02-10")


def _percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered) * 1000, ordered[int(len(ordered) * 0.99) - 1] * 1000


def build_lake(root: Path) -> tuple[str, list[str], object]:
    """Feature rows for every day of DAYS in ``root``; returns lake, days, flight_features frame."""
    import pandas as pd
    from upath import UPath

    from ml_assets.feature_repo.feast_objects import feast_frames
    from ml_assets.models.features import build_flight_features, build_traffic_features
    from ml_assets.models.prepare import prepare_flights, prepare_planes, prepare_weather
    from ml_assets.resources.lake import dump_object
    from ml_assets.sources.landing_files import days_between, land, read_daily, read_reference

    landing = str(root / "landing")
    land(landing, *DAYS)
    days = days_between(*DAYS)
    planes = prepare_planes(read_reference(landing, "planes"))
    flights = {d: prepare_flights(read_daily(landing, "flights", d), d) for d in days}
    weather = {d: prepare_weather(read_daily(landing, "weather", d), d) for d in days}
    lake = str(root / "lake")
    ff = []
    for i, day in enumerate(days):
        f = build_flight_features(
            flights[day], pd.concat([weather[d] for d in days[max(0, i - 1) : i + 1]]), planes, 2.0
        )
        t = build_traffic_features(
            pd.concat([flights[d] for d in days[max(0, i - 14) : i + 1]]), day, 2.0
        )
        for asset, rows in feast_frames(f, t, day, 2.0).items():
            dump_object(rows, UPath(lake) / asset / day)
        ff.append(f)
    return lake, days, pd.concat(ff)


def bench_online(settings, lake: str, days: list[str], frame, reads: int) -> None:
    """Serving reads through the lean reader (what ``Predictor`` uses)
    and, for contrast, the SDK."""
    import numpy as np

    from ml_assets.assets.feature_store_assets import online_window
    from ml_assets.models.catalog import CatalogEntry
    from ml_assets.models.train import fit
    from ml_assets.models.training_set import build_training_set
    from ml_assets.resources.feature_store import build_feature_store, entity_row
    from ml_assets.resources.registry import ModelRegistry
    from ml_assets.serving import Predictor

    store = build_feature_store(settings)
    store.apply()
    day = days[-1]
    store.materialize(*online_window(day, 2.0))
    ids = frame.loc[frame["flight_date"] == day, "flight_id"].tolist()
    rows = [entity_row(i) for i in ids]
    rng = np.random.default_rng(0)
    store.online_rows(rows[:1])  # warm-up: resolves the service, opens the connection
    single = _timed(lambda i: store.online_rows([rows[i]]), rng.integers(0, len(rows), reads))
    sdk = _timed(lambda i: store.online_via_sdk([ids[i]]), rng.integers(0, len(ids), 200))
    batch_rows = (rows * (1000 // len(rows) + 1))[:1000]
    batch = _timed(lambda _: store.online_rows(batch_rows), range(50))
    registry = ModelRegistry(base_path=str(Path(lake) / f"registry-{uuid.uuid4().hex[:6]}"))
    model = fit(
        build_training_set(frame, _traffic_from(store, frame), day, 7)[0],
        CatalogEntry(name="gbdt", num_boost_round=100),
        seed=1,
        num_threads=1,
    )
    registry.promote(model, {}, day)
    predictor = Predictor(store, registry)
    predictor.predict(ids[0])  # warm-up: loads and parses the deployed booster
    scored = _timed(lambda i: predictor.predict(ids[i]), rng.integers(0, len(ids), reads))
    kind = settings.feast_online_store
    for label, samples, goal in (
        ("online read, 1 entity ", single, "p99 <= 2 ms"),
        ("  (Feast SDK get_online_features, same read)", sdk, "reference"),
        ("online read, 1000 rows", batch, "<= 30 ms"),
        ("predict end to end    ", scored, "p99 <= 5 ms"),
    ):
        p50, p99 = _percentiles(samples)
        print(
            f"{kind:6s} {label}: p50 {p50:7.3f} ms  p99 {p99:7.3f} ms  "
            f"({len(samples)} calls; goal {goal})"
        )


def _timed(call, arguments) -> list[float]:
    samples = []
    for argument in arguments:
        started = time.perf_counter()
        call(argument)
        samples.append(time.perf_counter() - started)
    return samples


def _traffic_from(store, frame):
    """The traffic branch as Feast serves it point in time (for a quick model)."""
    from ml_assets.models.features import KEY, TRAFFIC_FEATURES, join_keys

    rows = store.historical(
        join_keys(frame).assign(event_timestamp=frame["prediction_ts"].to_numpy())
    )
    return rows.loc[:, [KEY, *TRAFFIC_FEATURES]]


def bench_historical(settings, frame) -> None:
    """35 days of flights: Feast point-in-time retrieval vs a pandas as-of join of the same rows."""
    import pandas as pd

    from ml_assets.models.features import KEY, join_keys
    from ml_assets.resources.feature_store import build_feature_store

    store = build_feature_store(settings)
    days = sorted(frame["flight_date"].unique())[-35:]
    window = frame.loc[frame["flight_date"].isin(days)]
    entities = join_keys(window).assign(event_timestamp=window["prediction_ts"].to_numpy())
    started = time.perf_counter()
    feast_rows = store.historical(entities)
    feast_s = time.perf_counter() - started
    started = time.perf_counter()
    source = pd.concat(
        pd.read_parquet(p)
        for p in sorted(Path(settings.lake_base, "feast_features").glob("*.parquet"))
    )
    joined = pd.merge_asof(
        entities.sort_values("event_timestamp"),
        source.sort_values("prediction_ts"),
        left_on="event_timestamp",
        right_on="prediction_ts",
        by=KEY,
        direction="backward",
        tolerance=pd.Timedelta(days=2),
    )
    pandas_s = time.perf_counter() - started
    assert len(feast_rows) == len(joined) == len(entities)
    print(
        f"historical retrieval, {len(entities)} rows over 35 days: Feast {feast_s:.2f} s, "
        f"pandas as-of join {pandas_s:.2f} s, ratio {feast_s / pandas_s:.1f}x"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reads", type=int, default=10_000)
    args = parser.parse_args()

    from ml_assets.settings import Settings

    with tempfile.TemporaryDirectory(prefix="ml-assets-feast-") as tmp:
        root = Path(tmp)
        lake, days, frame = build_lake(root)
        for kind in ("sqlite", "redis"):
            settings = Settings(
                landing_base=str(root / "landing"),
                lake_base=lake,
                registry_base=str(root / "registry"),
                feast_project=f"bench{uuid.uuid4().hex[:8]}",
                feast_online_store=kind,
                feast_registry=str(root / f"registry-{kind}.db"),
                feast_sqlite_path=str(root / "online.db"),
            )
            bench_online(settings, lake, days, frame, args.reads)
        bench_historical(settings, frame)


if __name__ == "__main__":
    main()
