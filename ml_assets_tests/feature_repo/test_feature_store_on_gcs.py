"""Feast on a ``gs://`` lake, against the GCS emulator: the registry on GCS, point-in-time
retrieval and materialization reading the lake's Parquet through gcsfs, the same answers as on a
local lake."""

from __future__ import annotations

import uuid
from pathlib import Path

import pandas as pd

from ml_assets.assets.feature_store_assets import online_window
from ml_assets.models.features import FEATURES, JOIN_KEYS, KEY, parity
from ml_assets.settings import Settings
from ml_assets_tests.conftest import GCS_BUCKET
from ml_assets_tests.feature_repo.conftest import DAY, feast_store, store_settings


def test_feast_reads_writes_and_registers_on_a_gcs_lake(
    gcs: str, lake: dict, tmp_path: Path
) -> None:
    import gcsfs

    fs = gcsfs.GCSFileSystem(token="anon", skip_instance_cache=True)
    root = f"{gcs}/{uuid.uuid4().hex[:8]}"
    fs.put(lake["lake"], f"{root}/lake", recursive=True)
    project = f"g{uuid.uuid4().hex[:10]}"
    remote = feast_store(
        Settings(
            landing_base=f"{root}/landing",
            lake_base=f"{root}/lake",
            registry_base=f"{root}/registry",
            feast_project=project,
            feast_registry=f"{root}/lake/feast/registry.db",
            feast_sqlite_path=str(tmp_path / "online.db"),
        )
    )
    assert fs.exists(f"{root}/lake/feast/registry.db".removeprefix("gs://"))
    local = feast_store(store_settings(lake, "sqlite"))

    rows = pd.read_parquet(Path(lake["lake"]) / "feast_features" / f"{DAY}.parquet")
    rows = rows.sample(40, random_state=11)
    entities = rows.loc[:, [KEY, *JOIN_KEYS, "prediction_ts"]].rename(
        columns={"prediction_ts": "event_timestamp"}
    )
    on_gcs, on_disk = remote.historical(entities), local.historical(entities)
    assert len(on_gcs) == 40 and on_gcs[list(FEATURES)].notna().any().all()
    assert parity(on_gcs, on_disk).all().all()

    window = online_window(DAY, 2.0)
    report = remote.materialize(*window, [DAY])
    local.materialize(*window, [DAY])
    assert report is not None and report.newest_event is not None
    assert parity(remote.online(rows[KEY].tolist()), local.online(rows[KEY].tolist())).all().all()
    # Feast recorded the materialization in the registry on GCS.
    remote.store().refresh_registry()
    view = remote.store().get_feature_view("flight_features")
    assert view.materialization_intervals
    assert GCS_BUCKET in remote.config["registry"]
