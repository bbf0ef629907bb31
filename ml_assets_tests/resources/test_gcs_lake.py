"""The lake, landing zone and registry on ``gs://``, against a local GCS emulator.

The emulator (gcp-storage-emulator) speaks GCS's JSON API; gcsfs reaches it through
``STORAGE_EMULATOR_HOST`` exactly as it would reach Google, with anonymous credentials.
"""

from __future__ import annotations

import dagster as dg
import pandas as pd

from ml_assets.partitions import daily
from ml_assets.resources.lake import LakeIOManagerFactory
from ml_assets.resources.registry import ModelRegistry
from ml_assets.sources.landing_files import land, landed_days, read_daily
from ml_assets_tests import _samples
from ml_assets_tests.conftest import GCS_BUCKET as BUCKET


def _objects(url: str) -> set[str]:
    import gcsfs

    fs = gcsfs.GCSFileSystem(token="anon", skip_instance_cache=True)
    return {p.removeprefix(f"{BUCKET}/") for p in fs.find(url)}


def test_lake_writes_partitions_to_the_pinned_gcs_layout(gcs: str) -> None:
    @dg.asset(partitions_def=daily, io_manager_key="lake")
    def frames(context) -> pd.DataFrame:
        return pd.DataFrame({"day": [context.partition_key] * 3, "x": [1.0, 2.0, 3.0]})

    @dg.asset(
        partitions_def=daily,
        io_manager_key="lake",
        ins={
            "frames": dg.AssetIn(partition_mapping=dg.TimeWindowPartitionMapping(start_offset=-1))
        },
    )
    def window(frames: pd.DataFrame) -> pd.DataFrame:
        return frames

    lake = LakeIOManagerFactory(base_path=f"{gcs}/lake")
    for day in ("2013-01-01", "2013-01-02"):
        assert dg.materialize([frames], partition_key=day, resources={"lake": lake}).success
    result = dg.materialize(
        [frames, window], partition_key="2013-01-02", resources={"lake": lake}, selection=[window]
    )
    assert result.success
    assert list(result.output_for_node("window")["day"]) == ["2013-01-01"] * 3 + ["2013-01-02"] * 3
    assert {
        "lake/frames/2013-01-01.parquet",
        "lake/frames/2013-01-02.parquet",
        "lake/window/2013-01-02.parquet",
    } <= _objects(f"{gcs}/lake")


def test_models_and_registry_on_gcs(gcs: str) -> None:
    from upath import UPath

    from ml_assets.resources.lake import dump_object, load_object

    model = _samples.tiny_model()
    dump_object(model, UPath(f"{gcs}/lake/model__tiny/2013-01-02"))
    loaded = load_object(UPath(f"{gcs}/lake/model__tiny/2013-01-02"))
    assert loaded.sha256 == model.sha256
    registry = ModelRegistry(base_path=f"{gcs}/registry")
    registry.promote(model, {"metrics": {"auc": 0.8}}, "2013-01-02")
    assert registry.current()["sha256"] == model.sha256
    again, manifest = registry.load(model.sha256)
    assert again.model_text == model.model_text and manifest["partition"] == "2013-01-02"
    assert f"registry/models/{model.sha256}/model.txt" in _objects(f"{gcs}/registry")


def test_landing_zone_on_gcs(gcs: str) -> None:
    base = f"{gcs}/landing"
    land(base, "2013-01-01", "2013-01-02")
    assert landed_days(base, "flights") == ["2013-01-01", "2013-01-02"]
    assert len(read_daily(base, "flights", "2013-01-02")) == len(
        _samples.raw_rows("flights", "2013-01-02")
    )
