"""The fair baseline of ``bench/backfill.py``:
the backfill's work without Dagster, on the same cores.

Untimed first, as the Dagster side's seed: the warm days' raw data, features and online rows, and
the whole graph for the last warm days (their champion in the registry).

It calls the pipeline's own functions and writes the same outputs into a lake of its own: every
asset's files (raw, features, Feast's rows, training sets, models, leaderboards, deployment
documents; rows a contract refuses in quarantine), the online store, the registry and training
checkpoints as configured. The cheap serial parts run serially in this process (reading and
preparing each day, features, Feast's online materialization); each day's training set, models and
leaderboard run on a process pool of ``os.cpu_count()`` workers, with the threads the pipeline's
model steps get (``k8s.training_threads``); the promotion decisions run in day order, as the
pipeline's range run makes them (``models.gate.review``).
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from typing import Any

STAGES = ("read+raw", "features", "feast", "training_set", "models", "evaluation", "deployment")


def _lake_path(settings: Any, asset: str, day: str) -> Any:
    """``<lake>/<asset>/<day>``: the path the lake IO manager gives a partition (no suffix)."""
    from upath import UPath

    return UPath(settings.lake_base) / asset / day


def _store(settings: Any, asset: str, day: str, value: Any) -> None:
    from ml_assets.resources.lake import dump_object

    dump_object(value, _lake_path(settings, asset, day))


def _load(settings: Any, asset: str, day: str) -> Any:
    from ml_assets.resources.lake import load_object

    return load_object(_lake_path(settings, asset, day))


def _checked(
    settings: Any, contract: str, frame: Any, day: str | None, references: Any, asset: str = ""
) -> Any:
    """The contract's clean rows;
    refused rows to the asset's quarantine file (as ``ContractGate``)."""
    from ml_assets.checks.contracts import contract_params
    from ml_assets.checks.validation import validate
    from ml_assets.resources.lake import write_quarantine

    verdict = validate(contract, frame, contract_params(settings, day, references))
    if not verdict.table_failures.empty:
        raise ValueError(f"{contract}[{day}]: {list(verdict.table_failures['rule'])}")
    if verdict.quarantined_rows:
        write_quarantine(settings.lake_base, asset or contract, day, verdict.quarantined())
    return verdict.clean()


# -- the pool's work: one day's training set, models and leaderboard ----------------------------

_WORKER: dict[str, Any] = {}


def _start_worker(settings_json: str) -> None:
    from ml_assets.models.catalog import load_catalog
    from ml_assets.resources.feature_store import build_feature_store
    from ml_assets.settings import Settings

    settings = Settings.model_validate_json(settings_json)
    _WORKER.update(
        settings=settings,
        catalog=load_catalog(settings.catalog_path),
        store=build_feature_store(settings),
    )


def _train(frame: Any, entry: Any, day: str, settings: Any) -> Any:
    """``fit`` under the checkpoint guard a model step uses (same store, interval and limit)."""
    from ml_assets import k8s
    from ml_assets.assets.checkpointed_training import lake_guard
    from ml_assets.models.catalog import model_key
    from ml_assets.models.train import fit

    guard, store, _ = lake_guard(settings, entry, model_key(entry), day)
    threads = k8s.training_threads(entry.profile, settings)
    model = fit(frame, entry, settings.seed, threads, guard, settings.gpu_fallback)
    store.clear()
    return model


def _day_models(day: str, window: list[str]) -> dict[str, float]:
    """Training set, every catalog model and the leaderboard of ``day``; seconds per stage."""
    import pandas as pd

    from ml_assets.checks.contracts import quarantine_limit
    from ml_assets.models.catalog import model_key
    from ml_assets.models.evaluate import score
    from ml_assets.models.features import LABEL, join_keys
    from ml_assets.models.leaderboard import rank
    from ml_assets.models.train import holdout, predict
    from ml_assets.models.training_set import build_training_set, split_served_features

    settings, store, catalog = _WORKER["settings"], _WORKER["store"], _WORKER["catalog"]
    seconds: dict[str, float] = defaultdict(float)
    started = time.perf_counter()
    flights = pd.concat([_load(settings, "flight_features", d) for d in window], ignore_index=True)
    entities = join_keys(flights)
    entities["event_timestamp"] = flights["prediction_ts"].to_numpy()
    branches = split_served_features(flights, store.historical(entities))
    frame, _ = build_training_set(
        *branches,
        day,
        settings.holdout_days,
        max_unmatched_rows=int(quarantine_limit(settings, len(flights))),
    )
    frame = _checked(settings, "training_set", frame, day, None)
    _store(settings, "training_set", day, frame)
    seconds["training_set"] += time.perf_counter() - started
    models = {}
    for entry in catalog:
        started = time.perf_counter()
        models[model_key(entry)] = model = _train(frame, entry, day, settings)
        _store(settings, model_key(entry), day, model)
        seconds["models"] += time.perf_counter() - started
    started = time.perf_counter()
    rows = holdout(frame)
    y = rows[LABEL].to_numpy()
    board = rank({name: (m, score(y, predict(m, rows))) for name, m in models.items()})
    _store(
        settings,
        "model_leaderboard",
        day,
        _checked(settings, "model_leaderboard", board, day, None),
    )
    seconds["evaluation"] += time.perf_counter() - started
    return dict(seconds)


# -- the whole backfill ------------------------------------------------------------------------


def _deploy(settings: Any, day: str, catalog: list, registry: Any, lineage: Any) -> None:
    """The day's promotion decision against the registry's champion (``models.gate.review``)."""
    from ml_assets import __version__
    from ml_assets.assets.deployment import gate_rules
    from ml_assets.models.catalog import model_key
    from ml_assets.models.gate import decision_document, review

    board = _load(settings, "model_leaderboard", day)
    models = {model_key(e): _load(settings, model_key(e), day) for e in catalog}
    champion = registry.champion()
    rules = gate_rules(settings)
    verdict = review(
        day,
        board,
        models,
        _load(settings, "training_set", day),
        champion,
        lambda sha256: registry.load(sha256)[0],
        rules,
    )
    document = decision_document(day, board, champion, verdict, rules)
    if verdict.decision.promote:
        best = str(board.iloc[0]["asset"])
        inputs = lineage.upstream(best, day)  # one Lineage for all days, as deployed_model's
        document["manifest"] = {
            "catalog_entry": next(e for e in catalog if model_key(e) == best).model_dump(
                mode="json"
            ),
            "code_version": {"ml_assets": __version__, "asset": "1"},
            "inputs": {a: dict.fromkeys(parts) for a, parts in inputs.items()},
            "metrics": document["metrics"],
            "decision": verdict.decision.reason,
        }
        registry.promote(verdict.model, document["manifest"], day)
    _store(settings, "deployed_model", day, document)


def fair_baseline(
    settings: Any,
    days: list[str],
    warm: list[str],
    cpu_clock: Callable[[], float],
    seed_graph_days: int = 1,
) -> tuple[float, float, dict]:
    """The backfill of ``days`` (``warm`` days prepared before, untimed; the whole graph for the
    last ``seed_graph_days`` of them): (seconds, the machine's CPU-seconds by ``cpu_clock``,
    seconds per stage)."""
    import pandas as pd
    from upath import UPath

    from ml_assets.assets.feature_store_assets import materialize_days
    from ml_assets.checks.contracts import load_references
    from ml_assets.definitions import build_defs
    from ml_assets.feature_repo.feast_objects import feast_frames
    from ml_assets.lineage import Lineage
    from ml_assets.models.catalog import load_catalog
    from ml_assets.models.features import build_flight_features, build_traffic_features
    from ml_assets.models.prepare import prepare_flights, prepare_planes, prepare_weather
    from ml_assets.resources.feature_store import build_feature_store
    from ml_assets.resources.lake import dump_object
    from ml_assets.resources.landing_zone import LandingZone
    from ml_assets.resources.registry import ModelRegistry
    from ml_assets.sources.landing_files import read_daily, read_reference

    seconds: dict[str, float] = defaultdict(float)
    base, horizon = settings.landing_base, settings.prediction_horizon_hours
    catalog = load_catalog(settings.catalog_path)
    store = build_feature_store(settings)
    references = load_references(LandingZone(base_path=base))
    planes = prepare_planes(read_reference(base, "planes"))
    dump_object(planes, UPath(settings.lake_base) / "planes")
    order = warm + days
    flights: dict[str, pd.DataFrame] = {}
    weather: dict[str, pd.DataFrame] = {}

    def timed(stage: str, fn, *args):
        started = time.perf_counter()
        try:
            return fn(*args)
        finally:
            seconds[stage] += time.perf_counter() - started

    def ingest(i: int, day: str) -> None:
        def raw() -> None:
            landed = _checked(
                settings,
                "landed_flights",
                read_daily(base, "flights", day),
                day,
                references,
                "raw_flights",
            )
            flights[day] = _checked(
                settings, "raw_flights", prepare_flights(landed, day), day, references
            )
            landed = _checked(
                settings,
                "landed_weather",
                read_daily(base, "weather", day),
                day,
                references,
                "raw_weather",
            )
            weather[day] = _checked(
                settings, "raw_weather", prepare_weather(landed, day), day, references
            )
            _store(settings, "raw_flights", day, flights[day])
            _store(settings, "raw_weather", day, weather[day])

        def features() -> None:
            window = pd.concat(
                [weather[d] for d in order[max(0, i - 1) : i + 1]], ignore_index=True
            )
            flight = _checked(
                settings,
                "flight_features",
                build_flight_features(flights[day], window, planes, horizon),
                day,
                references,
            )
            history = pd.concat(
                [flights[d] for d in order[max(0, i - settings.history_days) : i + 1]],
                ignore_index=True,
            )
            traffic = _checked(
                settings,
                "traffic_features",
                build_traffic_features(history, day, horizon),
                day,
                None,
            )
            _store(settings, "flight_features", day, flight)
            _store(settings, "traffic_features", day, traffic)
            for name, rows in feast_frames(flight, traffic, day, horizon).items():
                _store(settings, name, day, rows)

        timed("read+raw", raw)
        timed("features", features)

    def online(range_days: list[str]) -> None:
        store.apply()
        materialize_days(store, range_days, horizon)

    for i, day in enumerate(warm):
        ingest(i, day)
    online(warm)
    registry = ModelRegistry(base_path=settings.registry_base)
    lineage = Lineage(build_defs(settings).resolve_asset_graph())
    _start_worker(settings.model_dump_json())  # the last warm days' models here, as the seed
    for i in range(len(warm) - seed_graph_days, len(warm)):
        _day_models(warm[i], warm[max(0, i - settings.window_days + 1) : i + 1])
        _deploy(settings, warm[i], catalog, registry, Lineage(lineage.graph))
    seconds.clear()

    started, cpu_started = time.perf_counter(), cpu_clock()
    for j, day in enumerate(days):
        ingest(len(warm) + j, day)
    timed("feast", online, days)
    windows = {
        day: order[max(0, len(warm) + j - settings.window_days + 1) : len(warm) + j + 1]
        for j, day in enumerate(days)
    }
    pool_started = time.perf_counter()
    with ProcessPoolExecutor(
        max_workers=os.cpu_count(),
        mp_context=multiprocessing.get_context("spawn"),  # duckdb's threads here: fork hangs
        initializer=_start_worker,
        initargs=(settings.model_dump_json(),),
    ) as pool:
        for stages in pool.map(_day_models, days, [windows[d] for d in days]):
            for stage, value in stages.items():
                seconds[f"{stage} (pool, summed)"] += value
    seconds["pool (wall)"] = time.perf_counter() - pool_started
    for day in days:
        timed("deployment", _deploy, settings, day, catalog, registry, lineage)
    return time.perf_counter() - started, cpu_clock() - cpu_started, dict(seconds)
