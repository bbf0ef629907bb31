"""What the forkserver of the multiprocess executor loads once, before it forks each step process.

A step process forked from it starts with the libraries, the code location's modules, Dagster's
SQLite storage (``DagsterInstance.from_ref``) and the built Pandera contracts in memory, so it pays
the fork and its own work, not these imports. Measured on 2 cores: about 1 s per step for the
libraries, 0.4 s more for the storage and 0.25 s more for a step that checks a contract (Pandera
imports its dask and modin types when it first builds a schema).

Only imports and in-memory work belong here: every fork copies this process, so no files,
connections or threads. A module that is not installed is skipped, as the forkserver does.
"""

from __future__ import annotations

import importlib

MODULES = (
    "dagster",
    "pandas",
    "pyarrow.parquet",
    "lightgbm",
    "upath",
    "pandera.pandas",
    "feast",
    "dagster._core.storage.event_log.sqlite",
    "dagster._core.storage.runs.sqlite",
    "dagster._core.storage.schedules.sqlite",
    "dagster._utils.test",
    "ml_assets.definitions",
    "ml_assets.assets.raw",
    "ml_assets.assets.feature_assets",
    "ml_assets.assets.feature_store_assets",
    "ml_assets.assets.training",
    "ml_assets.assets.evaluation",
    "ml_assets.assets.deployment",
    "ml_assets.assets.day_pool",
    "ml_assets.automation",
    "ml_assets.automation.sensors",
    "ml_assets.checks.contracts",
    "ml_assets.checks.validation",
    "ml_assets.resources",
)


def preload() -> None:
    """Import :data:`MODULES` and build every data contract's Pandera schema."""
    for name in MODULES:
        try:
            importlib.import_module(name)
        except ImportError:
            continue
    from ml_assets.checks.schemas import CONTRACTS

    for contract in CONTRACTS.values():
        contract.model.to_schema()


preload()
