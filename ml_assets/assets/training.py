"""The diamond's join (``training_set``) and the fan-out of one model asset per catalog entry."""

import time

import dagster as dg

from ml_assets import k8s
from ml_assets.assets import OWNERS
from ml_assets.assets.checkpointed_training import checkpointed_training
from ml_assets.assets.data_errors import persistent_failures
from ml_assets.assets.range_runs import (
    BACKFILL_POLICY,
    add_day_metadata,
    in_range_run,
    model_backfill_policy,
    per_day,
)
from ml_assets.assets.versions import versioned
from ml_assets.errors import classified, persistent_failure, retry_policy
from ml_assets.feature_repo.feast_objects import ENTITY_ASSETS
from ml_assets.models.catalog import CatalogEntry, model_key
from ml_assets.models.train import TrainedModel
from ml_assets.partitions import daily, trailing
from ml_assets.resources import lake_ranges
from ml_assets.resources.feature_store import FeatureStoreResource
from ml_assets.settings import Settings, node_name
from ml_assets.types import Frame, Model

GROUP = "training"


def training_set_policy(settings: Settings) -> dg.BackfillPolicy:
    """Single run with the feature assets by default: the asset backfill daemon then requests
    every day's models, leaderboard and deployment in one tick, as one run per day (a policy
    differing from the parents' makes it request them tick by tick, split over several runs)."""
    if settings.training_set_days_per_run is None:
        return BACKFILL_POLICY
    return dg.BackfillPolicy.multi_run(settings.training_set_days_per_run)


def build_training_set_asset(settings: Settings) -> dg.AssetsDefinition:
    window = trailing(settings.window_days)

    @dg.asset(
        partitions_def=daily, group_name=GROUP, kinds={"pandas", "parquet"}, owners=OWNERS,
        code_version="2", io_manager_key="lake", retry_policy=retry_policy(settings),
        backfill_policy=training_set_policy(settings),
        ins={"flight_features": dg.AssetIn(partition_mapping=window)},
        deps=[dg.AssetDep("traffic_features", partition_mapping=window),
              dg.AssetDep("feast_features", partition_mapping=window),
              *(dg.AssetDep(a, partition_mapping=window) for a in ENTITY_ASSETS.values()),
              # after the day's online materialization: Feast refuses retrieval while a view
              # is MATERIALIZING, and online_features is what registers the repo
              dg.AssetDep("online_features", partition_mapping=window)],
        metadata={"window_days": settings.window_days, "holdout_days": settings.holdout_days,
                  "min_training_rows": settings.min_training_rows},
    )  # fmt: skip
    @classified
    def training_set(
        context: dg.AssetExecutionContext,
        feature_store: FeatureStoreResource,
        flight_features: Frame,
    ) -> Frame:
        """Diamond join of both feature branches over the window, split by time into train/holdout.

        The window's flights (keys, prediction times, labels) form Feast's entity frame; every
        feature comes from ``get_historical_features``, point in time. Its contract (the seed's:
        more than ``min_training_rows`` training rows, no null label, both classes) is enforced
        before returning, so a failing day writes nothing. A backfill computes it in the feature
        assets' range run (one Feast start-up for all days), see :func:`training_set_policy`.
        """
        days = settings.window_days
        out = per_day(
            context,
            lambda day: _training_set(
                context, feature_store, lake_ranges.window(flight_features, day, days), day
            ),
        )
        return out if in_range_run(context) else versioned(context, out)

    def _training_set(context, feature_store, flight_features, day: str) -> Frame:
        from ml_assets.checks.contracts import ContractGate, quarantine_limit
        from ml_assets.models.features import join_keys
        from ml_assets.models.training_set import build_training_set, split_served_features

        gate = ContractGate(context, settings, partition=day)
        with persistent_failures(f"training_set[{day}]"):
            entities = join_keys(flight_features)
            entities["event_timestamp"] = flight_features["prediction_ts"].to_numpy()
            served = feature_store.historical(entities)
            flight_branch, traffic_branch = split_served_features(flight_features, served)
            frame, summary = build_training_set(
                flight_branch, traffic_branch, day, settings.holdout_days,
                max_unmatched_rows=int(quarantine_limit(settings, len(flight_features))),
            )  # fmt: skip
        frame = gate.finish(
            gate.check("training_set", frame, gate.params()),
            "training_set",
            {
                "train_rows": summary.train_rows,
                "holdout_rows": summary.holdout_rows,
                "unlabelled_rows_excluded": summary.unlabelled_rows,
                "unmatched_rows_excluded": summary.unmatched_rows,
                "first_day": summary.first_day,
                "last_day": summary.last_day,
                "positive_rate": summary.positive_rate,
                "feature_service": feature_store.service().name,
            },
        )
        return frame

    return training_set


def build_model_asset(entry: CatalogEntry, settings: Settings) -> dg.AssetsDefinition:
    """One catalog entry -> one asset ``model__<name>`` with its own k8s tags and pool."""

    @dg.asset(
        name=model_key(entry), partitions_def=daily, group_name=GROUP, kinds={"lightgbm"}, owners=OWNERS,
        code_version=f"train-1/entry-{entry.version}", io_manager_key="lake",
        description=entry.description or f"LightGBM model {entry.name} from the catalog.",
        op_tags=k8s.op_tags(entry.profile, entry.spot), pool=k8s.pool(entry.profile),
        retry_policy=retry_policy(settings), backfill_policy=model_backfill_policy(settings),
        metadata={"catalog_entry": entry.model_dump(mode="json"), "profile": entry.profile},
        tags={"profile": entry.profile},
    )  # fmt: skip
    @classified
    def _model(context: dg.AssetExecutionContext, training_set: Frame) -> Model:
        """Train the entry on the day's training set (each day of a range run in turn)."""
        return per_day(
            context,
            lambda day: _train(context, day, lake_ranges.window(training_set, day, 1)),
            version=True,
            lazy=True,
        )

    def _train(context: dg.AssetExecutionContext, day: str, training_set: Frame) -> TrainedModel:
        from ml_assets.models.evaluate import auc
        from ml_assets.models.features import LABEL
        from ml_assets.models.gpu import GpuUnavailable
        from ml_assets.models.train import fit, holdout, predict

        step = f"{model_key(entry)}[{day}]"
        threads = k8s.training_threads(entry.profile, settings)
        started = time.perf_counter()
        try:
            with (
                checkpointed_training(context, model_key(entry), entry, settings, day) as guard,
                persistent_failures(step),
            ):
                model = fit(
                    training_set, entry, settings.seed, threads, guard, settings.gpu_fallback
                )
        except GpuUnavailable as exc:
            raise persistent_failure(f"{step} on node {node_name()}", exc) from exc
        if model.device_note:
            context.log.warning(f"{step} on node {node_name()}: {model.device_note}")
        seconds = time.perf_counter() - started
        rows = holdout(training_set)
        add_day_metadata(
            context,
            day,
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
            },
        )
        return model

    return _model


def build_training_assets(
    settings: Settings, catalog: list[CatalogEntry]
) -> list[dg.AssetsDefinition]:
    return [build_training_set_asset(settings), *(build_model_asset(e, settings) for e in catalog)]
