"""Environment -> settings: the only module that reads ``os.environ``."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CATALOG = Path(__file__).resolve().parent / "models" / "catalog.yaml"

Environment = Literal["local", "ci", "prod"]


class Settings(BaseModel):
    """Everything that differs between environments; built once per code-location load."""

    model_config = ConfigDict(frozen=True)

    env: Environment = "local"
    landing_base: str = Field(description="Landing zone root (local dir or gs://bucket/prefix).")
    lake_base: str = Field(description="Lake root for frames and models.")
    registry_base: str = Field(description="Model registry root.")
    catalog_path: str = str(DEFAULT_CATALOG)

    # Modelling choices
    prediction_horizon_hours: float = 2.0
    window_days: int = Field(56, description="Days of flights in a training set, holdout included.")
    holdout_days: int = 7
    history_days: int = Field(14, description="Trailing days for carrier/route/origin delay rates.")
    min_training_rows: int = 10_000
    seed: int = 42
    num_threads: int = 1

    # Quality gate
    auc_gate: float = 0.70
    bootstrap_samples: int = 200
    significance: float = 0.05

    # Execution
    executor: Literal["multiprocess", "in_process", "k8s"] = "multiprocess"
    max_concurrent_steps: int = 2

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from ``ML_ASSETS_*`` variables, with local defaults under the project."""
        environ = os.environ if environ is None else environ
        env = environ.get("ML_ASSETS_ENV", "local")
        root = Path(environ.get("ML_ASSETS_ROOT", PROJECT_ROOT))
        lake = environ.get("ML_ASSETS_LAKE", str(root / ".lake"))
        values: dict[str, object] = {
            "env": env,
            "landing_base": environ.get("ML_ASSETS_LANDING", str(root / ".landing")),
            "lake_base": lake,
            "registry_base": environ.get("ML_ASSETS_REGISTRY", f"{lake.rstrip('/')}/registry"),
        }
        if env == "prod":
            values["auc_gate"] = 0.75
            values["executor"] = "k8s"
        overrides = {
            "ML_ASSETS_CATALOG": "catalog_path",
            "ML_ASSETS_AUC_GATE": "auc_gate",
            "ML_ASSETS_WINDOW_DAYS": "window_days",
            "ML_ASSETS_HOLDOUT_DAYS": "holdout_days",
            "ML_ASSETS_MIN_TRAINING_ROWS": "min_training_rows",
            "ML_ASSETS_HORIZON_HOURS": "prediction_horizon_hours",
            "ML_ASSETS_EXECUTOR": "executor",
            "ML_ASSETS_NUM_THREADS": "num_threads",
        }
        values.update({field: environ[var] for var, field in overrides.items() if var in environ})
        return cls.model_validate(values)
