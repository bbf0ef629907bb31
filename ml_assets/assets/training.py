"""The diamond's join (``training_set``) and the fan-out of one model asset per catalog entry."""

import functools
import time
from typing import Any

import dagster as dg

from ml_assets import k8s
from ml_assets.assets.checkpointed_training import checkpointed_training
from ml_assets.assets.daily_asset import BACKFILL_POLICY, DailyAssetSpec, DayContext, daily_asset
from ml_assets.errors import persistent_failure
from ml_assets.feature_repo.feast_objects import ENTITY_ASSETS
from ml_assets.models.catalog import CatalogEntry, model_key
from ml_assets.models.train import TrainedModel
from ml_assets.partitions import trailing
from ml_assets.resources.feature_store import FeatureStoreResource
from ml_assets.settings import Settings, node_name
from ml_assets.types import Frame

GROUP = "training"


def training_set_policy(settings: Settings) -> dg.BackfillPolicy:
    """Single run with the feature assets by default: the asset backfill daemon then requests
    every day's models, leaderboard and deployment in one tick, as one run per day (a policy
    differing from the parents' makes it request them tick by tick, split over several runs)."""
    if settings.training_set_days_per_run is None:
        return BACKFILL_POLICY
    return dg.BackfillPolicy.multi_run(settings.training_set_days_per_run)


def training_set(day: str, inputs: dict[str, Any], ctx: DayContext) -> Frame:
    """The window's flights with their features served point in time, split train/holdout."""
    from ml_assets.checks.contracts import quarantine_limit
    from ml_assets.models.features import join_keys
    from ml_assets.models.training_set import build_training_set, split_served_features

    flight_features, feature_store = inputs["flight_features"], ctx.resources["feature_store"]
    entities = join_keys(flight_features)
    entities["event_timestamp"] = flight_features["prediction_ts"].to_numpy()
    served = feature_store.historical(entities)
    flight_branch, traffic_branch = split_served_features(flight_features, served)
    frame, summary = build_training_set(
        flight_branch,
        traffic_branch,
        day,
        ctx.settings.holdout_days,
        max_unmatched_rows=int(quarantine_limit(ctx.settings, len(flight_features))),
    )
    ctx.add_metadata(
        {
            "train_rows": summary.train_rows,
            "holdout_rows": summary.holdout_rows,
            "unlabelled_rows_excluded": summary.unlabelled_rows,
            "unmatched_rows_excluded": summary.unmatched_rows,
            "first_day": summary.first_day,
            "last_day": summary.last_day,
            "positive_rate": summary.positive_rate,
            "feature_service": feature_store.service().name,
        }
    )
    return frame


TRAINING_SET_DESCRIPTION = """\
Diamond join of both feature branches over the window, split by time into train/holdout.

The window's flights (keys, prediction times, labels) form Feast's entity frame; every
feature comes from ``get_historical_features``, point in time. Its contract (the seed's:
more than ``min_training_rows`` training rows, no null label, both classes) is enforced
before returning, so a failing day writes nothing. A backfill computes it in the feature
assets' range run (one Feast start-up for all days), see :func:`training_set_policy`."""


def build_training_set_asset(settings: Settings) -> dg.AssetsDefinition:
    window = trailing(settings.window_days)
    spec = DailyAssetSpec(
        name="training_set",
        group=GROUP,
        kinds=frozenset({"pandas", "parquet"}),
        code_version="2",
        description=TRAINING_SET_DESCRIPTION,
        ins={"flight_features": settings.window_days},
        deps=[
            dg.AssetDep("traffic_features", partition_mapping=window),
            dg.AssetDep("feast_features", partition_mapping=window),
            *(dg.AssetDep(a, partition_mapping=window) for a in ENTITY_ASSETS.values()),
            # after the day's online materialization: Feast refuses retrieval while a view
            # is MATERIALIZING, and online_features is what registers the repo
            dg.AssetDep("online_features", partition_mapping=window),
        ],
        resources={"feature_store": FeatureStoreResource},
        contract="training_set",
        backfill=training_set_policy(settings),
        lazy=True,
        parallel=True,
        metadata={
            "window_days": settings.window_days,
            "holdout_days": settings.holdout_days,
            "min_training_rows": settings.min_training_rows,
        },
    )
    return daily_asset(spec, settings, training_set)


def train_model(entry: CatalogEntry, day: str, inputs: dict[str, Any], ctx: DayContext) -> Any:
    """Train ``entry`` on the day's training set, resuming from its checkpoint."""
    from ml_assets.models.evaluate import auc
    from ml_assets.models.features import LABEL
    from ml_assets.models.gpu import GpuUnavailable
    from ml_assets.models.train import fit, holdout, predict

    settings, training_set = ctx.settings, inputs["training_set"]
    step = f"{model_key(entry)}[{day}]"
    threads = k8s.training_threads(entry.profile, settings)
    started = time.perf_counter()
    try:
        with checkpointed_training(ctx.dagster, model_key(entry), entry, settings, day) as guard:
            model: TrainedModel = fit(
                training_set, entry, settings.seed, threads, guard, settings.gpu_fallback
            )
    except GpuUnavailable as exc:
        raise persistent_failure(f"{step} on node {node_name()}", exc) from exc
    if model.device_note:
        ctx.log.warning(f"{step} on node {node_name()}: {model.device_note}")
    seconds = time.perf_counter() - started
    rows = holdout(training_set)
    ctx.add_metadata(
        {
            "holdout_auc": auc(rows[LABEL].to_numpy(), predict(model, rows)),
            "train_rows": model.train_rows,
            "train_window": f"{model.train_first_day}..{model.train_last_day}",
            "training_seconds": round(seconds, 3),
            "device": model.device,
            "device_note": model.device_note or "as requested",
            "gpu_device": model.gpu_device or "none",
            "num_threads": threads,
            "resumed_from_iteration": model.resumed_from_iteration,
            "iterations_trained": guard.computed,
        }
    )
    return model


def build_model_asset(entry: CatalogEntry, settings: Settings) -> dg.AssetsDefinition:
    """One catalog entry -> one asset ``model__<name>`` with its own k8s tags and pool."""
    spec = DailyAssetSpec(
        name=model_key(entry),
        group=GROUP,
        kinds=frozenset({"lightgbm"}),
        code_version=f"train-1/entry-{entry.version}",
        description=entry.description or f"LightGBM model {entry.name} from the catalog.",
        ins={"training_set": None},
        backfill="model",
        lazy=True,
        op_tags=k8s.op_tags(entry.profile, entry.spot),
        pool=k8s.pool(entry.profile),
        metadata={"catalog_entry": entry.model_dump(mode="json"), "profile": entry.profile},
        tags={"profile": entry.profile},
    )
    return daily_asset(spec, settings, functools.partial(train_model, entry))


def build_training_assets(
    settings: Settings, catalog: list[CatalogEntry]
) -> list[dg.AssetsDefinition]:
    return [build_training_set_asset(settings), *(build_model_asset(e, settings) for e in catalog)]
