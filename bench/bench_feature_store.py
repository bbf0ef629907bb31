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

    from ml_assets.feature_repo.definitions import feast_frames
    from ml_assets.models.features import build_flight_features, build_traffic_features
    from ml_assets.models.prepare import prepare_flights, prepare_planes, prepare_weather
    from ml_assets.resources.lake import dump_object
    from ml_assets.sources.landing import days_between, land, read_daily, read_reference

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
    import numpy as np

    from ml_assets.assets.feature_store import online_window
    from ml_assets.models.catalog import CatalogEntry
    from ml_assets.models.train import fit
    from ml_assets.models.training_set import build_training_set
    from ml_assets.resources.feature_store import build_feature_store
    from ml_assets.resources.registry import ModelRegistry
    from ml_assets.serving import predict

    store = build_feature_store(settings)
    store.apply()
    day = days[-1]
    store.materialize(*online_window(day, 2.0))
    ids = frame.loc[frame["flight_date"] == day, "flight_id"].tolist()
    rng = np.random.default_rng(0)
    store.online(ids[:1])  # warm-up
    single = []
    for i in rng.integers(0, len(ids), reads):
        started = time.perf_counter()
        store.online([ids[i]])
        single.append(time.perf_counter() - started)
    batch_ids = (ids * (1000 // len(ids) + 1))[:1000]
    batch = []
    for _ in range(20):
        started = time.perf_counter()
        store.online(batch_ids)
        batch.append(time.perf_counter() - started)
    registry = ModelRegistry(base_path=str(Path(lake) / f"registry-{uuid.uuid4().hex[:6]}"))
    model = fit(
        build_training_set(frame, _traffic_from(store, frame), day, 7)[0],
        CatalogEntry(name="gbdt", num_boost_round=100),
        seed=1,
        num_threads=1,
    )
    registry.promote(model, {}, day)
    scored = []
    for i in rng.integers(0, len(ids), max(reads // 10, 100)):
        started = time.perf_counter()
        predict(store, registry, ids[i])
        scored.append(time.perf_counter() - started)
    kind = settings.feast_online_store
    p50, p99 = _percentiles(single)
    print(
        f"{kind:6s} online read, 1 entity  : p50 {p50:6.2f} ms  p99 {p99:6.2f} ms  ({reads} reads; goal p99 <= 2 ms)"
    )
    b50, b99 = _percentiles(batch)
    print(
        f"{kind:6s} online read, 1000 rows : p50 {b50:6.1f} ms  p99 {b99:6.1f} ms  (goal <= 30 ms)"
    )
    s50, s99 = _percentiles(scored)
    print(
        f"{kind:6s} predict end to end     : p50 {s50:6.2f} ms  p99 {s99:6.2f} ms  (goal p99 <= 5 ms)"
    )


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
        f"historical retrieval, {len(entities)} rows over 35 days: Feast {feast_s:.2f} s, pandas as-of join {pandas_s:.2f} s, ratio {feast_s / pandas_s:.1f}x"
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
                landing_base=str(root / "landing"), lake_base=lake, registry_base=str(root / "registry"),
                feast_project=f"bench{uuid.uuid4().hex[:8]}", feast_online_store=kind,
                feast_registry=str(root / f"registry-{kind}.db"), feast_sqlite_path=str(root / "online.db"),
            )  # fmt: skip
            bench_online(settings, lake, days, frame, args.reads)
        bench_historical(settings, frame)


if __name__ == "__main__":
    main()
