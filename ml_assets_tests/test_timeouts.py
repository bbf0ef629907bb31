"""Time limits from settings: per group, per catalog entry, per run (job tags, instance config)."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import yaml

from ml_assets.definitions import build_defs
from ml_assets.execution import DAILY_JOB, FEATURES_JOB, REFERENCE_JOB
from ml_assets.models.catalog import load_catalog
from ml_assets.settings import PROJECT_ROOT, Settings
from ml_assets.timeouts import MAX_RUNTIME_TAG, step_timeouts
from ml_assets_tests.conftest import SMALL_CATALOG, small_settings


def test_limits_come_from_groups_catalog_entries_and_the_environment(
    tmp_path: Path, landing_dir: Path
) -> None:
    catalog = {
        "models": [*SMALL_CATALOG["models"][:2], {**SMALL_CATALOG["models"][2], "timeout_s": 90}]
    }
    settings = small_settings(tmp_path, landing_dir, catalog)
    from_env = Settings.from_env({"ML_ASSETS_STEP_TIMEOUTS": "raw=60, evaluation=120"})
    update = {"step_timeouts_s": from_env.step_timeouts_s, "model_timeout_s": 3000.0}
    settings = settings.model_copy(update=update)
    limits = step_timeouts(
        settings, build_defs(settings).assets, load_catalog(settings.catalog_path)
    )
    assert limits["raw_flights"] == limits["raw_weather"] == limits["planes"] == 60
    assert limits["flight_features"] == settings.step_timeouts_s["features"] == 3600
    assert limits["training_set"] == 3600 and limits["model_leaderboard"] == 120
    assert limits["model__gbdt"] == limits["model__goss"] == 3000  # settings.model_timeout_s
    assert limits["model__gbdt_recent"] == 90  # the catalog entry's own timeout_s


def test_every_job_carries_the_run_time_limit(tmp_path: Path, landing_dir: Path) -> None:
    settings = small_settings(tmp_path, landing_dir, run_timeout_s=5400.0)
    defs = build_defs(settings)
    for job in (DAILY_JOB, FEATURES_JOB, REFERENCE_JOB):
        assert defs.resolve_job_def(job).tags[MAX_RUNTIME_TAG] == "5400", job
    assert Settings.from_env({"ML_ASSETS_RUN_TIMEOUT_S": "60"}).run_timeout_s == 60


def test_local_instance_monitors_runs_and_retries_dead_workers(tmp_path: Path) -> None:
    """The project's dagster.yaml: run monitoring with a runtime backstop; run retries from the
    failed steps for runs whose worker died, not for failed steps (those retry in the run)."""
    config = yaml.safe_load((PROJECT_ROOT / "dagster.yaml").read_text())
    config["storage"] = {"sqlite": {"base_dir": str(tmp_path / "storage")}}
    config["local_artifact_storage"]["config"]["base_dir"] = str(tmp_path)
    config["compute_logs"]["config"]["base_dir"] = str(tmp_path / "logs")
    (tmp_path / "dagster.yaml").write_text(yaml.safe_dump(config))
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        assert instance.run_monitoring_enabled
        assert instance.run_monitoring_max_runtime_seconds == 43200
        assert instance.run_retries_enabled and instance.run_retries_max_retries == 2
        assert not instance.run_retries_retry_on_asset_or_op_failure
    deploy = yaml.safe_load((PROJECT_ROOT / "deploy" / "dagster.yaml").read_text())
    assert deploy["run_retries"] == {
        "enabled": True,
        "max_retries": 2,
        "retry_on_asset_or_op_failure": False,
    }
    assert deploy["run_monitoring"]["max_resume_run_attempts"] == 2
