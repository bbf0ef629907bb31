"""Jobs and the executor chosen by settings."""

from __future__ import annotations

import dagster as dg

from ml_assets.freshness_policy import SENSOR_EVALUATED_CHECKS
from ml_assets.partitions import daily
from ml_assets.settings import Settings

DAILY_JOB = "daily_pipeline"
FEATURES_JOB = "features_pipeline"
REFERENCE_JOB = "reference_data"
MODELS_JOB = "models_pipeline"

DAILY_GROUPS = ("raw", "features", "training", "evaluation", "deployment")


GPU_RUN_TAG = "ml_assets/gpu"

# The multiprocess executor's forkserver imports this once; every step process it forks starts
# with what it loaded (``forkserver_preload.py``).
FORKSERVER_PRELOAD = ["ml_assets.forkserver_preload"]


def build_jobs(
    gpu: bool = False, tags: dict[str, str] | None = None
) -> list[dg.UnresolvedAssetJobDefinition]:
    """``gpu``: some model trains on a GPU, so daily runs carry the tag the run queue limits;
    ``tags`` go on every job (``dagster/max_runtime``)."""
    tags = tags or {}
    partitioned = dg.AssetSelection.groups(*DAILY_GROUPS) - dg.AssetSelection.assets("planes")
    # Freshness checks are evaluated by the freshness_monitor sensor, not as steps of a run.
    partitioned -= dg.AssetSelection.checks(*SENSOR_EVALUATED_CHECKS)
    ingestion_and_features = (
        dg.AssetSelection.groups("raw", "features")
        - dg.AssetSelection.assets("planes")
        - dg.AssetSelection.checks(*SENSOR_EVALUATED_CHECKS)
    )
    models = dg.AssetSelection.groups("training") - dg.AssetSelection.assets("training_set")
    return [
        dg.define_asset_job(
            DAILY_JOB,
            selection=partitioned,
            partitions_def=daily,
            tags={GPU_RUN_TAG: str(gpu).lower(), **tags},
            description="The whole daily pipeline for one day: ingest to deployment.",
        ),
        dg.define_asset_job(
            FEATURES_JOB,
            selection=ingestion_and_features,
            partitions_def=daily,
            tags=tags,
            description="Ingestion and features only (cheap; for backfills).",
        ),
        dg.define_asset_job(
            MODELS_JOB,
            selection=models,
            partitions_def=daily,
            tags={GPU_RUN_TAG: str(gpu).lower(), **tags},
            description="Retrain the catalog's models for a day from its stored training set.",
        ),
        dg.define_asset_job(
            REFERENCE_JOB,
            selection=dg.AssetSelection.assets("planes"),
            tags=tags,
            description="Reload the static reference tables.",
        ),
    ]


def build_executor(
    settings: Settings, step_timeouts: dict[str, float] | None = None
) -> dg.ExecutorDefinition:
    """In-process for cheap local runs, multiprocess (forkserver) by default, k8s in production.

    On k8s each step's Job gets ``activeDeadlineSeconds`` from ``step_timeouts`` (op name -> s).
    """
    if settings.executor == "in_process":
        return dg.in_process_executor
    if settings.executor == "k8s":
        from dagster_k8s import k8s_job_executor

        from ml_assets.k8s import default_step_config, per_step_config

        return k8s_job_executor.configured(
            {
                "max_concurrent": settings.k8s_max_concurrent_steps,
                "step_k8s_config": default_step_config(
                    settings.default_step_timeout_s, settings.preemption_grace_s
                ),
                "per_step_k8s_config": per_step_config(
                    step_timeouts or {}, settings.preemption_grace_s
                ),
            },
            name="k8s_job_executor",
        )
    return dg.multiprocess_executor.configured(
        {
            "max_concurrent": settings.max_concurrent_steps,
            "start_method": {"forkserver": {"preload_modules": FORKSERVER_PRELOAD}},
        }
    )
