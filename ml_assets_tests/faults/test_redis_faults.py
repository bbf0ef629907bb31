"""Redis faults on a private redis-server (never the shared one): the online_features step
survives connection resets (client retries, then step retries) and the features arrive."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
from upath import UPath

from ml_assets.definitions import build_defs
from ml_assets.feature_repo.feast_objects import SOURCE_ASSET, feast_frames
from ml_assets.models.features import KEY, build_flight_features, build_traffic_features
from ml_assets.models.prepare import prepare_flights, prepare_planes, prepare_weather
from ml_assets.resources.lake import dump_object
from ml_assets.settings import Settings
from ml_assets.sources.landing_files import days_between, read_daily, read_reference
from ml_assets_tests.faults.conftest import start_redis
from ml_assets_tests.faults.flaky import ResettingProxy

DAY = "2013-01-09"
# redis-py retries a reset connection 3 times itself (about 6 s of backoff): 4 resets fail the
# step's first attempt, so Dagster's RetryPolicy has to finish the job.
RESETS = 4
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("redis-server") is None, reason="no redis-server"),
]


@pytest.fixture(scope="module")
def private_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """A redis-server of our own on a free port, without persistence; stopped afterwards."""
    server, port = start_redis(tmp_path_factory.mktemp("redis"))
    yield port
    server.terminate()
    server.wait(timeout=10)


def _feast_frames(landing: str) -> dict[str, pd.DataFrame]:
    planes = prepare_planes(read_reference(landing, "planes"))
    days = days_between("2013-01-02", DAY)
    flights = pd.concat([prepare_flights(read_daily(landing, "flights", d), d) for d in days])
    weather = pd.concat([prepare_weather(read_daily(landing, "weather", d), d) for d in days[-2:]])
    today = flights.loc[flights["flight_date"].astype(str) == DAY]
    return feast_frames(
        build_flight_features(today, weather, planes, 2.0),
        build_traffic_features(flights, DAY, 2.0),
        DAY,
        2.0,
    )


def test_online_materialization_survives_redis_connection_resets(
    settings: Settings, tmp_path: Path, private_redis: int
) -> None:
    frames = _feast_frames(settings.landing_base)
    for asset, frame in frames.items():
        dump_object(frame, UPath(settings.lake_base) / asset / DAY)
    rows = frames[SOURCE_ASSET]
    proxy = ResettingProxy(("127.0.0.1", private_redis), resets=RESETS)
    faulty = settings.model_copy(
        update={
            "feast_online_store": "redis",
            "redis_connection": f"127.0.0.1:{proxy.port}",
            "feast_project": "faults",
            "feast_registry": str(tmp_path / "registry.db"),
        }
    )
    defs = build_defs(faulty)
    try:
        with dg.DagsterInstance.ephemeral() as instance:
            result = defs.resolve_implicit_global_asset_job_def().execute_in_process(
                instance=instance,
                partition_key=DAY,
                raise_on_error=False,
                asset_selection=[dg.AssetKey("online_features")],
            )
        retries = [
            e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_UP_FOR_RETRY
        ]
        assert result.success
        assert proxy.reset_count == RESETS and proxy.forwarded >= 1
        assert 1 <= len(retries) <= faulty.retry_max_retries
        with dg.build_resources({"fs": defs.resources["feature_store"]}) as resources:
            online = resources.fs.online(rows[KEY].head(20).tolist())
        assert len(online) == 20
    finally:
        proxy.close()
