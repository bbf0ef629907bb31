"""Slow end-to-end: the whole daily graph on a ``gs://`` lake (GCS emulator) for two days, the
same models as on a local lake.

Lake, model registry and the Feast registry live in the emulator's bucket; Feast's offline store
reads the lake's Parquet through gcsfs (``register_lake_filesystem``); the online store is SQLite
on local disk. Every model's hash and every deployment decision equals the local run's.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import dagster as dg
import pytest

from ml_assets.definitions import build_defs
from ml_assets.execution import DAILY_JOB, FEATURES_JOB, REFERENCE_JOB
from ml_assets.operations.materialize import materialize_days, materialize_range
from ml_assets_tests.conftest import small_settings

pytestmark = pytest.mark.slow

FIRST, BEFORE, DAYS = "2013-01-01", "2013-01-12", ["2013-01-13", "2013-01-14"]


def _run(settings) -> dict[tuple[str, str], str]:
    """Features for the window, then the whole graph for DAYS: (asset, day) -> model sha256 and
    deployed_model -> its decision."""
    defs = build_defs(settings)
    with dg.DagsterInstance.ephemeral() as instance:
        runs = materialize_days(defs, instance, REFERENCE_JOB, [None])
        runs.append(materialize_range(defs, instance, FEATURES_JOB, FIRST, BEFORE))
        runs += materialize_days(defs, instance, DAILY_JOB, DAYS)
        assert all(r.success for r in runs), runs
        out = {}
        for day in DAYS:
            for key in instance.get_asset_keys():
                name = key.to_user_string()
                if not (name.startswith("model__") or name == "deployed_model"):
                    continue
                records = instance.fetch_materializations(
                    dg.AssetRecordsFilter(asset_key=key, asset_partitions=[day]), limit=1
                ).records
                meta = records[0].asset_materialization.metadata
                field = "sha256" if name.startswith("model__") else "promoted"
                out[(name, day)] = str(meta[field].value)
        return out


def test_the_daily_graph_on_gcs_trains_the_same_models_as_on_disk(
    gcs: str, landing_dir: Path, tmp_path: Path
) -> None:
    root = f"{gcs}/{uuid.uuid4().hex[:8]}"
    (tmp_path / "gcs").mkdir()
    (tmp_path / "disk").mkdir()
    on_gcs = small_settings(
        tmp_path / "gcs",
        landing_dir,
        lake_base=f"{root}/lake",
        registry_base=f"{root}/registry",
        feast_sqlite_path=str(tmp_path / "gcs-online.db"),
    )
    on_disk = small_settings(tmp_path / "disk", landing_dir)
    remote, local = _run(on_gcs), _run(on_disk)
    assert len(remote) == 2 * 4  # three models and the deployment, two days
    assert remote == local

    import gcsfs

    fs = gcsfs.GCSFileSystem(token="anon", skip_instance_cache=True)
    bucket = root.removeprefix("gs://")
    for day in DAYS:
        assert fs.exists(f"{bucket}/lake/training_set/{day}.parquet")
        assert fs.exists(f"{bucket}/lake/feast_features/{day}.parquet")
    assert fs.exists(f"{bucket}/lake/feast/registry.db")
    assert fs.exists(f"{bucket}/registry/current.json")
