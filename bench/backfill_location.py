"""The code location of ``bench/backfill.py``: the project's definitions without sensors and
schedules, so the landed days do not start runs of their own during the benchmark."""

import dagster as dg


@dg.definitions
def defs() -> dg.Definitions:
    from ml_assets.definitions import build_defs
    from ml_assets.settings import Settings

    full = build_defs(Settings.from_env())
    return dg.Definitions(
        assets=full.assets,
        asset_checks=full.asset_checks,
        jobs=full.jobs,
        executor=full.executor,
        resources=full.resources,
    )
