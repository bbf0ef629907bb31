"""The Redis password is a secret: it comes only from ``ML_ASSETS_REDIS_PASSWORD`` (settings,
then ``dg.EnvVar``), and no resource config, UI snapshot, error, log or repr shows it, whatever
the connection string's form. Against a redis-server of the module's own with ``requirepass``
(the shared Redis at 6379 is never reconfigured)."""

from __future__ import annotations

import logging
import time
import uuid
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from ml_assets.assets.feature_store_assets import online_window
from ml_assets.definitions import build_defs
from ml_assets.errors import PERSISTENT, classify
from ml_assets.feature_repo.config import render_feature_store_yaml
from ml_assets.models.features import KEY
from ml_assets.resources.feature_store import (
    FeatureStoreError,
    FeatureStoreResource,
    build_feature_store,
)
from ml_assets.settings import REDIS_PASSWORD_ENV, Settings
from ml_assets_tests.feature_repo.conftest import DAY

SECRET = "s3cr3t-Horse-7"
WRONG = "not-the-Horse-8"


@pytest.fixture(scope="module")
def redis_port(scratch_redis: int) -> int:
    """The module's redis-server, now requiring ``SECRET`` (``CONFIG SET requirepass``)."""
    import redis

    redis.Redis(port=scratch_redis).config_set("requirepass", SECRET)
    return scratch_redis


def _environment(lake: dict, port: int, password: str | None) -> dict[str, str]:
    root = lake["root"] / f"env-{uuid.uuid4().hex[:6]}"
    env = {
        "ML_ASSETS_ROOT": str(root),
        "ML_ASSETS_LAKE": lake["lake"],
        "ML_ASSETS_REGISTRY": str(root / "registry"),
        "ML_ASSETS_ONLINE_STORE": "redis",
        "ML_ASSETS_REDIS": f"127.0.0.1:{port}",
        "ML_ASSETS_FEAST_PROJECT": f"p{uuid.uuid4().hex[:8]}",
        "ML_ASSETS_FEAST_REGISTRY": str(root / "registry.db"),
        "ML_ASSETS_EXECUTOR": "in_process",
        "ML_ASSETS_RETRY_DELAY": "0.05",
    }
    return env | ({REDIS_PASSWORD_ENV: password} if password else {})


def _settings(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> Settings:
    """Settings from ``env``, which also becomes the process environment (for ``dg.EnvVar``)."""
    monkeypatch.delenv(REDIS_PASSWORD_ENV, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return Settings.from_env(env)


def _flights(lake: dict, n: int = 20) -> list[str]:
    rows = pd.read_parquet(Path(lake["lake"]) / "feast_features" / f"{DAY}.parquet")
    return rows[KEY].head(n).tolist()


def _ui_view(resource: FeatureStoreResource) -> str:
    """What the UI shows of the resource: the serialized repository snapshot."""
    from dagster._core.remote_representation.external_data import RepositorySnap
    from dagster_shared.serdes import serialize_value

    defs = dg.Definitions(resources={"feature_store": resource})
    return serialize_value(RepositorySnap.from_def(defs.get_repository_def()))


def test_the_right_password_from_the_environment_reads_and_never_shows(
    lake: dict, redis_port: int, monkeypatch: pytest.MonkeyPatch, caplog, capfd
) -> None:
    caplog.set_level(logging.DEBUG)
    settings = _settings(monkeypatch, _environment(lake, redis_port, SECRET))
    assert settings.redis_auth and SECRET not in settings.model_dump_json()
    resource = build_feature_store(settings)
    assert isinstance(resource.redis_password, dg.EnvVar)
    ui = _ui_view(resource)
    assert REDIS_PASSWORD_ENV in ui and SECRET not in ui
    yaml_text = render_feature_store_yaml(settings)
    assert f"password=${{{REDIS_PASSWORD_ENV}}}" in yaml_text and SECRET not in yaml_text
    with dg.build_resources({"fs": resource}) as resources:
        store = resources.fs
        assert store.redis_password == SECRET  # Dagster resolved the EnvVar
        assert SECRET not in repr(store) and SECRET not in str(store)
        assert SECRET not in str(store.config)
        store.apply()
        store.materialize(*online_window(DAY, 2.0), [DAY])
        online = store.online(_flights(lake))
        assert len(online) == 20 and online["features_at"].notna().all()
    # Outside a run (CLI, benchmarks) the unresolved EnvVar is read through settings.
    assert len(build_feature_store(settings).online(_flights(lake, 5))) == 5
    out, err = capfd.readouterr()
    assert SECRET not in caplog.text + out + err


@pytest.mark.parametrize("password", [WRONG, None], ids=["wrong", "missing"])
def test_a_wrong_or_missing_password_is_a_clear_masked_persistent_error(
    lake: dict, redis_port: int, monkeypatch: pytest.MonkeyPatch, password: str | None
) -> None:
    settings = _settings(monkeypatch, _environment(lake, redis_port, password))
    store = build_feature_store(settings)
    store.apply()
    started = time.monotonic()
    with pytest.raises(FeatureStoreError, match="refused the login") as read:
        store.online(_flights(lake, 1))
    assert time.monotonic() - started < 5  # serving never retries it (redis-py would: 10 s)
    with pytest.raises(FeatureStoreError, match="refused the login") as write:
        store.materialize(*online_window(DAY, 2.0), [DAY])
    for info in (read, write):
        text = str(info.value)
        assert f"127.0.0.1:{redis_port}" in text and REDIS_PASSWORD_ENV in text
        assert SECRET not in text and WRONG not in text
        assert classify(info.value) == PERSISTENT


def test_a_run_with_a_wrong_password_fails_once_and_its_logs_hold_no_secret(
    lake: dict, redis_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    for password, succeeds in ((WRONG, False), (SECRET, True)):
        settings = _settings(monkeypatch, _environment(lake, redis_port, password))
        defs = build_defs(settings)
        with dg.DagsterInstance.ephemeral() as instance:
            result = defs.resolve_implicit_global_asset_job_def().execute_in_process(
                instance=instance,
                partition_key=DAY,
                raise_on_error=False,
                asset_selection=[dg.AssetKey("online_features")],
            )
            logs = instance.all_logs(result.run_id)
            run = instance.get_run_by_id(result.run_id)
        assert result.success is succeeds
        text = "\n".join(str(record) for record in logs) + str(run)
        assert SECRET not in text and WRONG not in text
        assert ("refused the login" in text) is not succeeds  # the error's text is in the logs
        if not succeeds:
            events = [e.event_type for e in result.all_events]
            assert dg.DagsterEventType.STEP_UP_FOR_RETRY not in events  # persistent: fails once
            [failure] = [e for e in result.all_events if e.is_step_failure]
            description = failure.step_failure_data.user_failure_data.description
            assert "refused the login" in description
            assert f"127.0.0.1:{redis_port}" in description


@pytest.mark.parametrize(
    "connection",
    [
        f"127.0.0.1:6379,password={SECRET}",
        f'127.0.0.1:6379,db=0,password="{SECRET}",ssl=true',
        f"redis://:{SECRET}@127.0.0.1:6379/0",
        f"redis://ml:{SECRET}@127.0.0.1:6379",
    ],
    ids=["feast-comma", "feast-quoted", "url-no-user", "url-user"],
)
def test_every_form_of_connection_string_is_masked_and_refused_as_config(
    connection: str,
) -> None:
    store = FeatureStoreResource(
        config={"online_store": {"type": "redis", "connection_string": connection}},
        lake_base="/tmp/lake",
    )

    def unreachable() -> None:
        raise ConnectionError(f"Error 111 connecting with {connection}")

    with pytest.raises(FeatureStoreError, match="online store unreachable") as info:
        store._guard(unreachable)
    assert SECRET not in str(info.value) and "***" in str(info.value)
    with pytest.raises(ValueError, match=REDIS_PASSWORD_ENV) as refused:
        Settings.from_env({"ML_ASSETS_ROOT": "/tmp/unused", "ML_ASSETS_REDIS": connection})
    assert SECRET not in str(refused.value)


def test_a_password_is_only_added_for_feast_never_to_the_config() -> None:
    config = {"online_store": {"type": "redis", "connection_string": "h:1"}, "project": "p"}
    store = FeatureStoreResource(config=config, lake_base="/tmp/lake", redis_password="12345")
    assert store._feast_config()["online_store"]["connection_string"] == 'h:1,password="12345"'
    assert store.config["online_store"]["connection_string"] == "h:1"
    assert "12345" not in repr(store)
