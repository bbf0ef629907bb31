"""Environment -> settings: the only module that reads ``os.environ``.

Every field is read from ``ML_ASSETS_<FIELD NAME>`` (pydantic-settings, one prefix). A field whose
older variable name differs also answers to that name, declared on the field itself
(``validation_alias=legacy(...)``). ``ML_ASSETS_ENV=prod`` applies ``PRODUCTION``; a variable
set explicitly wins over it. Paths not set default under ``ML_ASSETS_ROOT`` and the lake.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CATALOG = Path(__file__).resolve().parent / "models" / "catalog.yaml"

Environment = Literal["local", "ci", "prod"]
ENV_PREFIX = "ML_ASSETS_"
ROOT_ENV = "ML_ASSETS_ROOT"  # not a setting: the base of the local default paths
REDIS_PASSWORD_ENV = "ML_ASSETS_REDIS_PASSWORD"  # bound as dg.EnvVar; never config, never logged

# Step time limits per asset group (models: per catalog entry, else model_timeout_s).
STEP_TIMEOUTS = {
    "raw": 1800.0,
    "features": 3600.0,
    "training": 3600.0,
    "evaluation": 1800.0,
    "deployment": 900.0,
}

# ML_ASSETS_ENV=prod: these values unless their variables are set.
PRODUCTION: dict[str, object] = {
    "feast_online_store": "redis",
    "auc_gate": 0.75,
    "executor": "k8s",
    "gpu_fallback": "fail",  # a GPU node that trains on its CPU is an incident
    "window_days": 366,  # expanding: every day of the year before D
    "model_runs": "daily",  # each model step's Job deadline is per day
}


def legacy(name: str) -> str:
    """A field's older variable name, read before ``ML_ASSETS_<FIELD NAME>``."""
    return ENV_PREFIX + name


class Settings(BaseSettings):
    """Everything that differs between environments; built once per code-location load.

    ``Settings(**values)`` and ``model_validate_json`` take exactly the values given: only
    ``from_env`` reads variables.
    """

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        frozen=True,
        hide_input_in_errors=True,  # no secret in errors
        validate_by_name=True,  # field names as keywords, whatever the variable is called
        extra="ignore",
        validate_default=False,
    )

    # Environment and storage; from_env derives the paths from ML_ASSETS_ROOT and the lake
    env: Environment = "local"
    landing_base: str = Field(
        description="Landing zone root (local dir or gs://bucket/prefix).",
        validation_alias=legacy("LANDING"),
    )
    lake_base: str = Field(
        description="Lake root for frames and models.", validation_alias=legacy("LAKE")
    )
    registry_base: str = Field(
        description="Model registry root.", validation_alias=legacy("REGISTRY")
    )
    catalog_path: str = Field(str(DEFAULT_CATALOG), validation_alias=legacy("CATALOG"))

    # Modelling choices
    prediction_horizon_hours: float = Field(2.0, validation_alias=legacy("HORIZON_HOURS"))
    window_days: int = Field(56, description="Days of flights in a training set, holdout included.")
    holdout_days: int = 7
    history_days: int = Field(14, description="Trailing days for carrier/route/origin delay rates.")
    min_training_rows: int = 10_000
    seed: int = 42
    num_threads: int | None = Field(
        None,
        description="LightGBM threads; unset: the profile's CPU request (k8s.training_threads).",
    )
    gpu_fallback: Literal["cpu", "fail"] = Field(
        "cpu",
        description="A gpu step without a usable GPU trains on the CPU (cpu) or fails (fail).",
    )

    # Quality gate
    auc_gate: float = 0.70
    bootstrap_samples: int = 200
    significance: float = 0.05
    require_significant_improvement: bool = Field(
        False, description="Promote only a challenger significantly better than the champion."
    )

    # Data contracts (ml_assets/checks)
    quarantine_max_share: float = Field(
        0.01, description="Largest share of a partition's rows that may be quarantined."
    )
    quarantine_tolerated_rows: int = Field(
        1, description="Rows a partition may always quarantine (one glitch in 72 weather rows)."
    )
    volume_guard_share: float = Field(
        0.5,
        ge=0.0,
        description="A landed flights day with fewer rows than this share of its reference "
        "(the partition it replaces, else the trailing median) is refused (rule volume_drop).",
    )

    # Feature store (ml_assets/feature_repo): registry and sqlite file under the lake by default
    feast_project: str = "ml_assets"
    feast_online_store: Literal["sqlite", "redis"] = Field(
        "sqlite", validation_alias=legacy("ONLINE_STORE")
    )
    redis_connection: str = Field(
        "127.0.0.1:6379",
        description="Feast's 'host:port[,db=0,ssl=true]' or a redis:// URL, without a password.",
        validation_alias=legacy("REDIS"),
    )
    redis_auth: bool = Field(
        False,
        description=f"Log in to Redis with {REDIS_PASSWORD_ENV} (bound as dg.EnvVar); from_env "
        "sets it from that variable's presence only.",
    )
    feast_registry: str = ""
    feast_sqlite_path: str = Field("", validation_alias=legacy("FEAST_SQLITE"))

    # Execution
    executor: Literal["multiprocess", "in_process", "k8s"] = "multiprocess"
    max_concurrent_steps: int = 2
    range_workers: int | None = Field(
        None,
        description="Processes computing a parallel asset's days in a range run (training "
        "sets); unset: this machine's cores locally, 1 on Kubernetes (k8s.day_workers).",
    )
    k8s_max_concurrent_steps: int = 20

    # Reliability (ml_assets/errors.py): step retries for transient faults, SMTP send retries
    retry_max_retries: int = Field(
        3, description="Step retries after a transient fault.", validation_alias=legacy("RETRY_MAX")
    )
    retry_delay_s: float = Field(
        10.0,
        description="First retry delay; doubles each attempt.",
        validation_alias=legacy("RETRY_DELAY"),
    )
    smtp_attempts: int = Field(4, description="SMTP tries when the server answers 4xx or drops.")
    smtp_retry_delay_s: float = Field(1.0, description="First SMTP retry delay; doubles.")

    # Backfill planning (ml_assets/operations/backfill_plan.py): defaults where the event log has
    # no run yet, and a price table (illustrative GCP us-central1 list prices: N2 vCPU, T4 GPU;
    # override them)
    backfill_default_step_s: float = Field(5.0, description="Seconds per step-day, unobserved.")
    backfill_run_overhead_s: float = Field(6.0, description="Launch + load per run, unobserved.")
    backfill_max_concurrent_runs: int = Field(5, description="If the instance sets no run queue.")
    backfill_gpu_slots: int = Field(1, description="If the instance sets no gpu pool limit.")
    backfill_step_overhead_s: float = Field(
        1.5,
        ge=0,
        description="A step process's start (fork, code location, resources) in the plan of a "
        "multiprocess or k8s run; a k8s pod takes longer: set it per environment.",
    )
    model_runs: Literal["range", "daily"] = Field(
        "range",
        description="A backfill's models, leaderboard and deployment: in the range run with the "
        "features (one run, steps in parallel) or one run per day (production: per-day deadlines).",
    )
    training_set_days_per_run: int | None = Field(
        None,
        description="Days of training sets per backfill run; unset: all of them in the feature "
        "assets' single run (one Feast start-up), so every day's models run as one run.",
    )
    price_cpu_hour_on_demand: float = Field(0.0316, validation_alias=legacy("PRICE_CPU_HOUR"))
    price_cpu_hour_spot: float = 0.0079
    price_gpu_hour_on_demand: float = Field(0.35, validation_alias=legacy("PRICE_GPU_HOUR"))
    price_gpu_hour_spot: float = 0.14

    # Automation and monitoring (ml_assets/automation);
    # the SMTP password is only EnvVar("SMTP_PASSWORD")
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 1025
    smtp_sender: str = "ml-assets@localhost"
    smtp_recipients: Annotated[tuple[str, ...], NoDecode] = ("ml-platform@localhost",)
    smtp_security: Literal["none", "starttls", "ssl"] = "none"
    smtp_username: str | None = Field(
        None,
        description="Log in as this user (password: SMTP_PASSWORD).",
        validation_alias=legacy("SMTP_USER"),
    )
    webserver_url: str = Field("http://127.0.0.1:3000", description="Base of run links in alerts.")
    landing_sensor_interval_s: int = Field(30, validation_alias=legacy("LANDING_SENSOR_INTERVAL"))
    monitor_window_runs: int = Field(
        20, description="Trailing finished runs for medians and rates."
    )
    monitor_min_history: int = Field(
        3, description="Fewest earlier samples before a monitor judges."
    )
    monitor_step_duration_factor: float = Field(2.0, validation_alias=legacy("MONITOR_STEP_FACTOR"))
    monitor_step_min_seconds: float = Field(1.0, description="Faster steps are never called slow.")
    monitor_failure_rate: float = 0.05
    monitor_volume_ratio: float = 0.5
    monitor_auc_drop: float = Field(0.02, description="Largest tolerated AUC drop vs the champion.")
    freshness_warn_hours: float = 24.0
    freshness_fail_hours: float = Field(
        26.0, description="deployed_model's FreshnessPolicy window."
    )
    partition_deadline_hours: float = Field(2.0, description="Landed day -> materialized, at most.")
    freshness_lookback_days: int = Field(3, description="Latest landed days checked for freshness.")
    auc_history_days: int = 14
    pushgateway_url: str | None = None

    # Timeouts, slow steps and preemption (ml_assets/timeouts.py, ml_assets/preemption.py)
    step_timeouts_s: Annotated[dict[str, float], NoDecode] = Field(
        default_factory=lambda: dict(STEP_TIMEOUTS),
        description="Step time limit per asset group; the variable: raw=1800,features=3600.",
        validation_alias=legacy("STEP_TIMEOUTS"),
    )
    default_step_timeout_s: float = Field(3600.0, gt=0, description="Groups not listed above.")
    model_timeout_s: float = Field(
        4 * 3600.0, gt=0, description="Model steps whose catalog entry has no timeout_s."
    )
    run_timeout_s: float = Field(
        12 * 3600.0, gt=0, description="dagster/max_runtime of every job (run monitoring)."
    )
    slow_step_warning_s: float = Field(
        7200.0, gt=0, description="A running step past this raises an alert whatever its median."
    )
    checkpoint_every: int | None = Field(
        None, ge=1, description="Boosting rounds between checkpoints (unset: by time only)."
    )
    checkpoint_interval_s: float = Field(
        60.0,
        gt=0,
        description="Seconds of training between checkpoints (a preemption or a timeout always "
        "saves one): a model trained faster writes none.",
    )
    preemption_grace_s: int = Field(
        60, ge=1, description="SIGTERM -> final checkpoint; the pod's termination grace period."
    )
    preemption_max_retries: int = Field(3, ge=0, description="Retries of a preempted step.")
    watchdog_interval_s: int = Field(
        30,
        ge=1,
        description="step_watchdog sensor interval.",
        validation_alias=legacy("WATCHDOG_INTERVAL"),
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Direct construction takes only its keywords (tests, JSON dumps): no variable, no file."""
        return (init_settings,)

    @field_validator("step_timeouts_s", mode="before")
    @classmethod
    def _parse_timeouts(cls, value: object) -> object:
        """``raw=1800,features=3600`` (environment) -> the defaults updated with those groups."""
        if not isinstance(value, str):
            return value
        pairs = [item.split("=", 1) for item in value.split(",") if item.strip()]
        return STEP_TIMEOUTS | {group.strip(): float(seconds) for group, seconds in pairs}

    @field_validator("redis_connection")
    @classmethod
    def _no_redis_password(cls, value: str) -> str:
        """A password in the connection string would sit in plain resource config: refused."""
        from ml_assets.security import redact

        if redact(value) != value:
            raise ValueError(
                f"the Redis connection {redact(value)!r} holds a password: remove it and set "
                f"{REDIS_PASSWORD_ENV} instead (secrets come only from the environment)"
            )
        return value

    @field_validator("smtp_recipients", mode="before")
    @classmethod
    def _split_recipients(cls, value: object) -> object:
        return (
            tuple(r.strip() for r in value.split(",") if r.strip())
            if isinstance(value, str)
            else value
        )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Settings from ``environ`` (default ``os.environ``; a mapping is the whole environment):
        variables set, over the production profile, over paths derived from the root and lake."""
        environ = os.environ if environ is None else environ
        explicit = _Variables(cls, environ).values()
        root = Path(environ.get(ROOT_ENV, PROJECT_ROOT))
        lake = str(explicit.get("lake_base", root / ".lake"))
        local_lake = "://" not in lake  # the SQLite online store needs a local file
        derived = {
            "landing_base": str(root / ".landing"),
            "lake_base": lake,
            "registry_base": f"{lake.rstrip('/')}/registry",
            "feast_registry": f"{lake.rstrip('/')}/feast/registry.db",
            "feast_sqlite_path": (
                f"{lake}/feast/online.db" if local_lake else str(root / ".feast" / "online.db")
            ),
        }
        profile = PRODUCTION if explicit.get("env") == "prod" else {}
        # The password stays in the environment (dg.EnvVar); settings only know that it is set.
        redis_auth = bool(environ.get(REDIS_PASSWORD_ENV))
        return cls.model_validate(derived | profile | explicit | {"redis_auth": redis_auth})


class _Variables(EnvSettingsSource):
    """The ``ML_ASSETS_*`` variables of one mapping, by their exact (upper-case) names."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        self._variables = {
            k: v for k, v in environ.items() if k.startswith(ENV_PREFIX) and k.isupper()
        }
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return {name.lower(): value for name, value in self._variables.items()}

    def values(self) -> dict[str, Any]:
        """Raw values by field name (a legacy name found is reported under its field)."""
        names = {
            field.validation_alias: name
            for name, field in self.settings_cls.model_fields.items()
            if isinstance(field.validation_alias, str)
        }
        return {names.get(key, key): value for key, value in self().items()}


def secret(name: str, environ: Mapping[str, str] | None = None) -> str | None:
    """A secret's value from the environment, for code outside Dagster's ``dg.EnvVar`` binding
    (CLI, benchmarks); never store it in settings or config."""
    environ = os.environ if environ is None else environ
    return environ.get(name) or None


NODE_NAME_ENV = "ML_ASSETS_NODE_NAME"


def node_name(environ: Mapping[str, str] | None = None) -> str:
    """The Kubernetes node this process runs on (downward API ``spec.nodeName``), else the host."""
    import socket

    environ = os.environ if environ is None else environ
    return environ.get(NODE_NAME_ENV) or socket.gethostname()
