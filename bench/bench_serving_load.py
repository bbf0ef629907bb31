"""Load benchmark: concurrent clients of ``serving.Predictor`` on Redis while another day
materializes.

Feature rows of real days go to a temp lake; day D is materialized into Redis and a small model
is deployed. Then N client **processes** (default 8) each build their own ``Predictor`` (the
service's unit: one per worker process, as the README says) and score M flights of day D
(default 10,000 each), while one more process materializes another day (default D+1, the daily
pipeline's next partition) in a loop into the same Redis project. Reported: throughput,
p50/p99/max latency, errors (exceptions), degraded predictions (a view answered nothing), the
materializations that ran, and the load average.

Why processes: the lean reader and the scorer are Python (key encoding, decoding, the feature
matrix) and hold the GIL, so threads would measure the GIL, not the store; a service scales by
worker processes. ``--threads`` runs the clients as threads of one process (one shared
Predictor) for contrast.

    uv run python bench/bench_serving_load.py [--clients 8] [--predictions 10000] [--threads]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from backfill import machine_cpu  # noqa: E402  (bench/ is on the path above)

FIRST, SERVED, OTHER = "2013-01-01", "2013-01-15", "2013-01-16"
HISTORY_DAYS = 14
GOAL_P99_MS = 5.0


def build_lake(root: Path, days: list[str]) -> tuple[str, Any, Any]:
    """Feature rows of ``days`` (with their history) in ``root/lake``; returns the lake and
    both feature branches of those days."""
    import pandas as pd
    from upath import UPath

    from ml_assets.feature_repo.feast_objects import feast_frames
    from ml_assets.models.features import build_flight_features, build_traffic_features
    from ml_assets.models.prepare import prepare_flights, prepare_planes, prepare_weather
    from ml_assets.resources.lake import dump_object
    from ml_assets.sources.landing_files import days_between, land, read_daily, read_reference

    landing = str(root / "landing")
    land(landing, FIRST, days[-1])
    history = days_between(FIRST, days[-1])
    planes = prepare_planes(read_reference(landing, "planes"))
    flights = {d: prepare_flights(read_daily(landing, "flights", d), d) for d in history}
    weather = {d: prepare_weather(read_daily(landing, "weather", d), d) for d in history}
    lake, ff, tf = str(root / "lake"), [], []
    for day in days:
        i = history.index(day)
        f = build_flight_features(
            flights[day],
            pd.concat([weather[d] for d in history[max(0, i - 1) : i + 1]]),
            planes,
            2.0,
        )
        t = build_traffic_features(
            pd.concat([flights[d] for d in history[max(0, i - HISTORY_DAYS) : i + 1]]), day, 2.0
        )
        for asset, rows in feast_frames(f, t, day, 2.0).items():
            dump_object(rows, UPath(lake) / asset / day)
        ff.append(f)
        tf.append(t)
    return lake, pd.concat(ff), pd.concat(tf)


def deploy_model(registry_base: str, flight_features: Any, traffic_features: Any) -> None:
    """A small LightGBM model trained on the days before SERVED, promoted to ``current``."""
    from ml_assets.models.catalog import CatalogEntry
    from ml_assets.models.train import fit
    from ml_assets.models.training_set import build_training_set
    from ml_assets.resources.registry import ModelRegistry

    training, _ = build_training_set(flight_features, traffic_features, SERVED, holdout_days=2)
    model = fit(training, CatalogEntry(name="gbdt", num_boost_round=100), seed=1, num_threads=1)
    ModelRegistry(base_path=registry_base).promote(model, {"metrics": {}}, SERVED)


def _predictor(settings: Any) -> Any:
    from ml_assets.resources.feature_store import build_feature_store
    from ml_assets.resources.registry import ModelRegistry
    from ml_assets.serving import Predictor

    return Predictor(build_feature_store(settings), ModelRegistry(base_path=settings.registry_base))


def run_client(predictor: Any, flights: list[str], n: int, seed: int, start: Any) -> dict:
    """Warm up, wait for the common start, then ``n`` predictions of random flights."""
    import numpy as np

    order = np.random.default_rng(seed).integers(0, len(flights), n)
    predictor.predict(flights[0])
    start.wait()
    latencies = np.empty(n)
    errors: dict[str, int] = {}
    degraded = 0
    began = time.perf_counter()
    for i, j in enumerate(order):
        t0 = time.perf_counter()
        try:
            degraded += bool(predictor.predict(flights[j]).missing_views)
        except Exception as exc:  # counted, not raised: the bench reports them
            errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
        latencies[i] = time.perf_counter() - t0
    reader = predictor.feature_store.reader()
    return {
        "latencies": latencies,
        "errors": errors,
        "degraded": degraded,
        "began": began,
        "ended": time.perf_counter(),
        "retries": reader.retries,
    }


def client_process(settings: Any, flights: list[str], n: int, seed: int, start: Any, out: Any):
    out.put(run_client(_predictor(settings), flights, n, seed, start))


def materializer(settings: Any, day: str, start: Any, stop: Any, out: Any) -> None:
    """Materialize ``day`` (its upkeep included) again and again until ``stop``."""
    from ml_assets.assets.feature_store_assets import online_window
    from ml_assets.resources.feature_store import build_feature_store

    store = build_feature_store(settings)
    store.store()  # Feast loaded before the clock starts
    start.wait()
    runs = []
    while not stop.is_set():
        t0 = time.perf_counter()
        store.materialize(*online_window(day, settings.prediction_horizon_hours), [day])
        runs.append((t0, time.perf_counter()))
    out.put(runs)


def bench(settings: Any, flights: list[str], args: argparse.Namespace) -> None:
    context = mp.get_context("spawn")  # fork after Feast/duckdb/LightGBM threads is unsafe
    start, stop, out, done = context.Event(), context.Event(), context.Queue(), context.Queue()
    writer = context.Process(target=materializer, args=(settings, args.other, start, stop, done))
    if args.other != "none":
        writer.start()
    load_before = os.getloadavg()
    if args.threads:
        cpu_before = machine_cpu()
        results = _thread_clients(settings, flights, args, start)
    else:
        clients = [
            context.Process(
                target=client_process, args=(settings, flights, args.predictions, seed, start, out)
            )
            for seed in range(args.clients)
        ]
        for client in clients:
            client.start()
        time.sleep(args.warmup_s)  # spawned clients import, connect and warm up
        cpu_before = machine_cpu()
        start.set()
        results = [out.get() for _ in clients]
        for client in clients:
            client.join()
    load_after, cpu_s = os.getloadavg(), machine_cpu() - cpu_before
    stop.set()
    runs = done.get() if args.other != "none" else []
    if args.other != "none":
        writer.join()
    report(results, runs, args, load_before, load_after, cpu_s)


def _thread_clients(
    settings: Any, flights: list[str], args: argparse.Namespace, start: Any
) -> list[dict]:
    predictor = _predictor(settings)
    results: list[dict] = []
    threads = [
        threading.Thread(
            target=lambda s=seed: results.append(
                run_client(predictor, flights, args.predictions, s, start)
            )
        )
        for seed in range(args.clients)
    ]
    for thread in threads:
        thread.start()
    time.sleep(args.warmup_s)
    start.set()
    for thread in threads:
        thread.join()
    return results


def report(
    results: list[dict], runs: list, args: argparse.Namespace, before, after, cpu_s: float
) -> None:
    import numpy as np

    latencies = np.concatenate([r["latencies"] for r in results]) * 1000
    began, ended = min(r["began"] for r in results), max(r["ended"] for r in results)
    errors: dict[str, int] = {}
    for r in results:
        for name, count in r["errors"].items():
            errors[name] = errors.get(name, 0) + count
    overlapping = [(a, b) for a, b in runs if a < ended and b > began]
    busy = sum(min(b, ended) - max(a, began) for a, b in overlapping)
    p50, p99 = np.percentile(latencies, [50, 99])
    mode = "threads (one process)" if args.threads else "processes"
    print(
        f"{args.clients} client {mode} x {args.predictions} predictions on Redis, "
        f"day {SERVED}; materializing {args.other} concurrently; {os.cpu_count()} CPUs"
    )
    print(
        f"  throughput {len(latencies) / (ended - began):,.0f} predictions/s "
        f"({len(latencies):,} in {ended - began:.1f} s wall; machine CPU {cpu_s:.1f} s of "
        f"{(ended - began) * (os.cpu_count() or 1):.1f} s available, "
        "clients + materializer + Redis)"
    )
    print(
        f"  latency p50 {p50:.2f} ms  p99 {p99:.2f} ms  max {latencies.max():.1f} ms "
        f"(goal p99 <= {GOAL_P99_MS} ms: {'met' if p99 <= GOAL_P99_MS else 'missed'})"
    )
    print(
        f"  errors {sum(errors.values())} {errors or ''}  degraded (a view missing) "
        f"{sum(r['degraded'] for r in results)}  retried requests "
        f"{sum(r['retries'] for r in results)}"
    )
    print(
        f"  materializations overlapping the clients: {len(overlapping)} "
        f"({', '.join(f'{b - a:.1f} s' for a, b in overlapping)}), "
        f"busy {busy / (ended - began):.0%}"
        " of the client window"
    )
    print(
        f"  load average before {before[0]:.2f} / {before[1]:.2f}; "
        f"after {after[0]:.2f} / {after[1]:.2f} (1 / 5 min)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--predictions", type=int, default=10_000, help="per client")
    parser.add_argument("--threads", action="store_true", help="clients as threads, not processes")
    parser.add_argument(
        "--other", default=OTHER, help="the day materialized concurrently ('none': no writer)"
    )
    parser.add_argument("--redis", default="127.0.0.1:6379")
    parser.add_argument("--warmup-s", type=float, default=20.0)
    args = parser.parse_args()

    import pandas as pd

    from ml_assets.assets.feature_store_assets import online_window
    from ml_assets.resources.feature_store import build_feature_store
    from ml_assets.settings import Settings
    from ml_assets.sources.landing_files import days_between

    with tempfile.TemporaryDirectory(prefix="ml-assets-load-") as tmp:
        root = Path(tmp)
        days = sorted({*days_between("2013-01-05", SERVED), args.other} - {"none"})
        lake, flight_features, traffic_features = build_lake(root, days)
        settings = Settings(
            landing_base=str(root / "landing"),
            lake_base=lake,
            registry_base=str(root / "registry"),
            feast_project=f"load{uuid.uuid4().hex[:8]}",
            feast_online_store="redis",
            redis_connection=args.redis,
            feast_registry=str(root / "registry.db"),
        )
        store = build_feature_store(settings)
        store.apply()
        store.materialize(*online_window(SERVED, 2.0), [SERVED])
        deploy_model(settings.registry_base, flight_features, traffic_features)
        rows = pd.read_parquet(Path(lake) / "feast_features" / f"{SERVED}.parquet")
        try:
            bench(settings, rows["flight_id"].tolist(), args)
        finally:
            store.store().teardown()  # the project's keys leave Redis


if __name__ == "__main__":
    main()
