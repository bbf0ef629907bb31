"""The code location's one ``Definitions`` object, assembled lazily from settings."""

from __future__ import annotations

import dagster as dg

from ml_assets import dagster_warnings
from ml_assets.settings import Settings

dagster_warnings.install()


def build_defs(settings: Settings) -> dg.Definitions:
    """Assets, checks, jobs, executor and resources for one environment."""
    from ml_assets.assets.deployment import build_deployment_asset
    from ml_assets.assets.evaluation import build_leaderboard_asset
    from ml_assets.assets.feature_assets import build_feature_assets
    from ml_assets.assets.feature_store_assets import build_feature_store_assets
    from ml_assets.assets.raw import build_raw_assets
    from ml_assets.assets.training import build_training_assets
    from ml_assets.automation import build_automation_defs
    from ml_assets.checks.contracts import build_contract_checks
    from ml_assets.execution import build_executor, build_jobs
    from ml_assets.models.catalog import load_catalog
    from ml_assets.resources import build_resources
    from ml_assets.timeouts import run_tags, step_timeouts

    catalog = load_catalog(settings.catalog_path)
    core = dg.Definitions(
        assets=[
            *build_raw_assets(settings),
            *build_feature_assets(settings),
            *build_feature_store_assets(settings),
            *build_training_assets(settings, catalog),
            build_leaderboard_asset(settings, catalog),
            build_deployment_asset(settings, catalog),
        ],
        asset_checks=build_contract_checks(settings),
        jobs=build_jobs(
            gpu=any(entry.profile == "gpu" for entry in catalog), tags=run_tags(settings)
        ),
        resources=build_resources(settings),
    )
    executor = build_executor(settings, step_timeouts(settings, core.assets or [], catalog))
    return dg.Definitions.merge(
        core, build_automation_defs(settings), dg.Definitions(executor=executor)
    )


@dg.definitions
def defs() -> dg.Definitions:
    return build_defs(Settings.from_env())
