"""Environment -> settings: every variable name, the production profile, and what never reads the
environment (a given mapping, direct construction, a JSON dump)."""

from __future__ import annotations

import pydantic
import pytest

from ml_assets.settings import STEP_TIMEOUTS, Settings

ROOT = "/tmp/settings-root"
BASE = {"ML_ASSETS_ROOT": ROOT}

# Every environment variable the settings have ever read: name, value -> the fields it changes
# against BASE. One row per name; a name that moves another field is a behaviour change.
NAMES: dict[str, tuple[str, dict[str, object]]] = {
    # Environment and storage, with the defaults derived from the root and the lake
    "ML_ASSETS_ENV": ("ci", {"env": "ci"}),
    "ML_ASSETS_ROOT": (
        "/tmp/other-root",
        {
            "landing_base": "/tmp/other-root/.landing",
            "lake_base": "/tmp/other-root/.lake",
            "registry_base": "/tmp/other-root/.lake/registry",
            "feast_registry": "/tmp/other-root/.lake/feast/registry.db",
            "feast_sqlite_path": "/tmp/other-root/.lake/feast/online.db",
        },
    ),
    "ML_ASSETS_LAKE": (
        "gs://bucket/prefix/",
        {
            "lake_base": "gs://bucket/prefix/",
            "registry_base": "gs://bucket/prefix/registry",
            "feast_registry": "gs://bucket/prefix/feast/registry.db",
            "feast_sqlite_path": f"{ROOT}/.feast/online.db",  # SQLite needs a local file
        },
    ),
    "ML_ASSETS_LANDING": ("gs://bucket/landing", {"landing_base": "gs://bucket/landing"}),
    "ML_ASSETS_REGISTRY": ("/tmp/registry", {"registry_base": "/tmp/registry"}),
    "ML_ASSETS_FEAST_REGISTRY": ("/tmp/feast.db", {"feast_registry": "/tmp/feast.db"}),
    "ML_ASSETS_FEAST_SQLITE": ("/tmp/online.db", {"feast_sqlite_path": "/tmp/online.db"}),
    "ML_ASSETS_REDIS_PASSWORD": ("s3cr3t-pw", {"redis_auth": True}),
    "ML_ASSETS_CATALOG": ("/tmp/catalog.yaml", {"catalog_path": "/tmp/catalog.yaml"}),
    # Modelling, gate, contracts
    "ML_ASSETS_AUC_GATE": ("0.8", {"auc_gate": 0.8}),
    "ML_ASSETS_REQUIRE_SIGNIFICANT_IMPROVEMENT": (
        "true",
        {"require_significant_improvement": True},
    ),
    "ML_ASSETS_WINDOW_DAYS": ("30", {"window_days": 30}),
    "ML_ASSETS_HOLDOUT_DAYS": ("3", {"holdout_days": 3}),
    "ML_ASSETS_MIN_TRAINING_ROWS": ("500", {"min_training_rows": 500}),
    "ML_ASSETS_HORIZON_HOURS": ("1.5", {"prediction_horizon_hours": 1.5}),
    "ML_ASSETS_NUM_THREADS": ("3", {"num_threads": 3}),
    "ML_ASSETS_GPU_FALLBACK": ("fail", {"gpu_fallback": "fail"}),
    "ML_ASSETS_QUARANTINE_MAX_SHARE": ("0.2", {"quarantine_max_share": 0.2}),
    "ML_ASSETS_QUARANTINE_TOLERATED_ROWS": ("4", {"quarantine_tolerated_rows": 4}),
    "ML_ASSETS_VOLUME_GUARD_SHARE": ("0.3", {"volume_guard_share": 0.3}),
    # Feature store
    "ML_ASSETS_FEAST_PROJECT": ("other", {"feast_project": "other"}),
    "ML_ASSETS_ONLINE_STORE": ("redis", {"feast_online_store": "redis"}),
    "ML_ASSETS_REDIS": ("10.0.0.1:6380", {"redis_connection": "10.0.0.1:6380"}),
    # Execution, reliability, backfills and prices
    "ML_ASSETS_EXECUTOR": ("in_process", {"executor": "in_process"}),
    "ML_ASSETS_MAX_CONCURRENT_STEPS": ("7", {"max_concurrent_steps": 7}),
    "ML_ASSETS_RANGE_WORKERS": ("3", {"range_workers": 3}),
    "ML_ASSETS_RETRY_MAX": ("5", {"retry_max_retries": 5}),
    "ML_ASSETS_RETRY_DELAY": ("2.5", {"retry_delay_s": 2.5}),
    "ML_ASSETS_BACKFILL_DEFAULT_STEP_S": ("9", {"backfill_default_step_s": 9.0}),
    "ML_ASSETS_TRAINING_SET_DAYS_PER_RUN": ("10", {"training_set_days_per_run": 10}),
    "ML_ASSETS_MODEL_RUNS": ("daily", {"model_runs": "daily"}),
    "ML_ASSETS_PRICE_CPU_HOUR": ("0.05", {"price_cpu_hour_on_demand": 0.05}),
    "ML_ASSETS_PRICE_CPU_HOUR_SPOT": ("0.01", {"price_cpu_hour_spot": 0.01}),
    "ML_ASSETS_PRICE_GPU_HOUR": ("0.5", {"price_gpu_hour_on_demand": 0.5}),
    "ML_ASSETS_PRICE_GPU_HOUR_SPOT": ("0.2", {"price_gpu_hour_spot": 0.2}),
    # Automation and monitoring
    "ML_ASSETS_SMTP_HOST": ("mail.example", {"smtp_host": "mail.example"}),
    "ML_ASSETS_SMTP_PORT": ("2525", {"smtp_port": 2525}),
    "ML_ASSETS_SMTP_SENDER": ("a@example", {"smtp_sender": "a@example"}),
    "ML_ASSETS_SMTP_RECIPIENTS": (
        "x@example, ,y@example",
        {"smtp_recipients": ("x@example", "y@example")},
    ),
    "ML_ASSETS_SMTP_SECURITY": ("starttls", {"smtp_security": "starttls"}),
    "ML_ASSETS_SMTP_USER": ("pipeline", {"smtp_username": "pipeline"}),
    "ML_ASSETS_WEBSERVER_URL": ("http://ui:3000", {"webserver_url": "http://ui:3000"}),
    "ML_ASSETS_LANDING_SENSOR_INTERVAL": ("60", {"landing_sensor_interval_s": 60}),
    "ML_ASSETS_MONITOR_WINDOW_RUNS": ("40", {"monitor_window_runs": 40}),
    "ML_ASSETS_MONITOR_STEP_FACTOR": ("3", {"monitor_step_duration_factor": 3.0}),
    "ML_ASSETS_MONITOR_FAILURE_RATE": ("0.1", {"monitor_failure_rate": 0.1}),
    "ML_ASSETS_MONITOR_VOLUME_RATIO": ("0.25", {"monitor_volume_ratio": 0.25}),
    "ML_ASSETS_MONITOR_AUC_DROP": ("0.05", {"monitor_auc_drop": 0.05}),
    "ML_ASSETS_FRESHNESS_FAIL_HOURS": ("30", {"freshness_fail_hours": 30.0}),
    "ML_ASSETS_PARTITION_DEADLINE_HOURS": ("4", {"partition_deadline_hours": 4.0}),
    "ML_ASSETS_PUSHGATEWAY_URL": ("http://pg:9091", {"pushgateway_url": "http://pg:9091"}),
    # Timeouts, checkpoints, preemption
    "ML_ASSETS_STEP_TIMEOUTS": (
        "raw=60, evaluation=120,",
        {"step_timeouts_s": STEP_TIMEOUTS | {"raw": 60.0, "evaluation": 120.0}},
    ),
    "ML_ASSETS_MODEL_TIMEOUT_S": ("100", {"model_timeout_s": 100.0}),
    "ML_ASSETS_RUN_TIMEOUT_S": ("200", {"run_timeout_s": 200.0}),
    "ML_ASSETS_SLOW_STEP_WARNING_S": ("300", {"slow_step_warning_s": 300.0}),
    "ML_ASSETS_CHECKPOINT_EVERY": ("10", {"checkpoint_every": 10}),
    "ML_ASSETS_CHECKPOINT_INTERVAL_S": ("5", {"checkpoint_interval_s": 5.0}),
    "ML_ASSETS_PREEMPTION_GRACE_S": ("20", {"preemption_grace_s": 20}),
    "ML_ASSETS_WATCHDOG_INTERVAL": ("15", {"watchdog_interval_s": 15}),
}

PRODUCTION = {
    "env": "prod",
    "feast_online_store": "redis",
    "auc_gate": 0.75,
    "executor": "k8s",
    "gpu_fallback": "fail",
    "window_days": 366,
    "model_runs": "daily",
}


def changes(settings: Settings, reference: Settings) -> dict[str, object]:
    before = reference.model_dump()
    return {k: v for k, v in settings.model_dump().items() if before[k] != v}


@pytest.mark.parametrize("name", NAMES)
def test_each_variable_sets_its_field_and_nothing_else(name: str) -> None:
    value, expected = NAMES[name]
    assert changes(Settings.from_env(BASE | {name: value}), Settings.from_env(BASE)) == expected


def test_defaults_under_the_root() -> None:
    settings = Settings.from_env(BASE)
    assert (settings.env, settings.landing_base, settings.lake_base) == (
        "local",
        f"{ROOT}/.landing",
        f"{ROOT}/.lake",
    )
    assert settings.registry_base == f"{ROOT}/.lake/registry"
    assert settings.feast_registry == f"{ROOT}/.lake/feast/registry.db"
    assert settings.feast_sqlite_path == f"{ROOT}/.lake/feast/online.db"
    assert not settings.redis_auth and settings.feast_online_store == "sqlite"


def test_the_lake_moves_the_registries_unless_they_are_named() -> None:
    named = {
        "ML_ASSETS_REGISTRY": "/r",
        "ML_ASSETS_FEAST_REGISTRY": "/f",
        "ML_ASSETS_FEAST_SQLITE": "/s",
    }
    settings = Settings.from_env(BASE | {"ML_ASSETS_LAKE": "/lake/"} | named)
    assert (settings.registry_base, settings.feast_registry, settings.feast_sqlite_path) == (
        "/r",
        "/f",
        "/s",
    )
    assert Settings.from_env(BASE | {"ML_ASSETS_LAKE": "/lake/"}).registry_base == "/lake/registry"


def test_the_production_profile() -> None:
    prod = Settings.from_env(BASE | {"ML_ASSETS_ENV": "prod"})
    assert changes(prod, Settings.from_env(BASE)) == PRODUCTION


def test_explicit_variables_win_over_the_production_profile() -> None:
    explicit = {
        "ML_ASSETS_ONLINE_STORE": "sqlite",
        "ML_ASSETS_AUC_GATE": "0.6",
        "ML_ASSETS_EXECUTOR": "multiprocess",
        "ML_ASSETS_GPU_FALLBACK": "cpu",
        "ML_ASSETS_WINDOW_DAYS": "30",
        "ML_ASSETS_MODEL_RUNS": "range",
    }
    prod = Settings.from_env(BASE | {"ML_ASSETS_ENV": "prod"} | explicit)
    assert changes(prod, Settings.from_env(BASE)) == {
        "env": "prod",
        "auc_gate": 0.6,
        "window_days": 30,
    }


def test_the_redis_password_is_never_a_value() -> None:
    settings = Settings.from_env(BASE | {"ML_ASSETS_REDIS_PASSWORD": "s3cr3t-pw"})
    assert settings.redis_auth and "s3cr3t-pw" not in settings.model_dump_json()
    assert not Settings.from_env(BASE | {"ML_ASSETS_REDIS_PASSWORD": ""}).redis_auth
    with pytest.raises(pydantic.ValidationError) as info:
        Settings.from_env(BASE | {"ML_ASSETS_REDIS": "h:6379,password=s3cr3t-pw"})
    assert "s3cr3t-pw" not in str(info.value)  # hide_input_in_errors, and a redacted message


def test_invalid_values_are_refused() -> None:
    for name, value in [
        ("ML_ASSETS_GPU_FALLBACK", "maybe"),
        ("ML_ASSETS_SMTP_PORT", "many"),
        ("ML_ASSETS_ENV", "staging"),
        ("ML_ASSETS_RUN_TIMEOUT_S", "0"),
    ]:
        with pytest.raises(pydantic.ValidationError):
            Settings.from_env(BASE | {name: value})


def test_a_mapping_is_the_whole_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ML_ASSETS_AUC_GATE", "0.9")
    monkeypatch.setenv("ML_ASSETS_ROOT", "/tmp/from-process")
    assert Settings.from_env(BASE).auc_gate == 0.7
    assert Settings.from_env(BASE).lake_base == f"{ROOT}/.lake"
    process = Settings.from_env()  # None: the process environment
    assert process.auc_gate == 0.9 and process.lake_base == "/tmp/from-process/.lake"
    assert Settings.from_env(BASE | {"ml_assets_auc_gate": "0.9"}).auc_gate == 0.7  # exact names


def test_construction_and_dumps_never_read_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = Settings.from_env(BASE | {"ML_ASSETS_SMTP_USER": "pipeline", "ML_ASSETS_ENV": "ci"})
    for name in ("ML_ASSETS_AUC_GATE", "ML_ASSETS_SMTP_USER", "ML_ASSETS_SEED"):
        monkeypatch.setenv(name, "0.9")
    monkeypatch.setenv("ML_ASSETS_ENV", "prod")
    assert Settings.model_validate_json(settings.model_dump_json()) == settings
    direct = Settings(landing_base="/l", lake_base="/k", registry_base="/r", smtp_username="u")
    assert (direct.env, direct.auc_gate, direct.seed, direct.smtp_username) == (
        "local",
        0.7,
        42,
        "u",
    )
    assert direct.feast_registry == "" and not direct.redis_auth
    copy = settings.model_copy(update={"auc_gate": 0.65, "smtp_username": "other"})
    assert (copy.auc_gate, copy.smtp_username, copy.env) == (0.65, "other", "ci")
    with pytest.raises(pydantic.ValidationError):
        settings.auc_gate = 0.5  # frozen


def test_every_field_answers_to_its_own_name_and_legacy_names_come_first() -> None:
    base = Settings.from_env(BASE)
    assert changes(Settings.from_env(BASE | {"ML_ASSETS_SEED": "7"}), base) == {"seed": 7}
    own = {"ML_ASSETS_SMTP_USERNAME": "own", "ML_ASSETS_BOOTSTRAP_SAMPLES": "20"}
    assert changes(Settings.from_env(BASE | own), base) == {
        "smtp_username": "own",
        "bootstrap_samples": 20,
    }
    both = {"ML_ASSETS_SMTP_USER": "legacy", "ML_ASSETS_SMTP_USERNAME": "own"}
    assert Settings.from_env(BASE | both).smtp_username == "legacy"
    lake = Settings.from_env(BASE | {"ML_ASSETS_LAKE_BASE": "/k"})
    assert (lake.lake_base, lake.registry_base) == ("/k", "/k/registry")


def test_redis_auth_comes_only_from_the_password() -> None:
    assert not Settings.from_env(BASE | {"ML_ASSETS_REDIS_AUTH": "true"}).redis_auth
