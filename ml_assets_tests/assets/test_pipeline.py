"""The whole graph over consecutive real days, in-process, into a temp lake and registry."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import pytest

from ml_assets.definitions import build_defs
from ml_assets.execution import DAILY_JOB, FEATURES_JOB, REFERENCE_JOB
from ml_assets.resources.registry import ModelRegistry
from ml_assets.runner import materialize_days
from ml_assets.sources.landing import days_between

TRAIN_DAYS = ["2013-01-14", "2013-01-15", "2013-01-16"]


def _metadata(instance: dg.DagsterInstance, key: str, partition: str) -> dict:
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey(key), asset_partitions=[partition]), limit=1
    ).records
    assert records, f"{key}[{partition}] was not materialized"
    return {k: v.value for k, v in records[0].asset_materialization.metadata.items()}


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory, landing_dir: Path):
    """Features for 13 days, then the whole graph for the last three (module-scoped: runs once)."""
    from ml_assets_tests.conftest import small_settings

    settings = small_settings(tmp_path_factory.mktemp("pipeline"), landing_dir)
    defs = build_defs(settings)
    instance = dg.DagsterInstance.ephemeral()
    runs = materialize_days(defs, instance, REFERENCE_JOB, [None])
    runs += materialize_days(defs, instance, FEATURES_JOB, days_between("2013-01-01", "2013-01-13"))
    runs += materialize_days(defs, instance, DAILY_JOB, TRAIN_DAYS)
    yield settings, defs, instance, runs
    instance.dispose()


def test_every_run_succeeds(pipeline) -> None:
    _, _, _, runs = pipeline
    assert [r.success for r in runs] == [True] * (1 + 13 + 3)


def test_lake_holds_each_asset_partition(pipeline) -> None:
    settings, _, _, _ = pipeline
    lake = Path(settings.lake_base)
    assert (lake / "planes.parquet").exists()
    for day in TRAIN_DAYS:
        for asset in (
            "raw_flights",
            "raw_weather",
            "flight_features",
            "traffic_features",
            "training_set",
            "model_leaderboard",
        ):
            assert (lake / asset / f"{day}.parquet").exists(), (asset, day)
        assert (lake / "model__gbdt" / f"{day}.model.txt").exists()
        assert (lake / "deployed_model" / f"{day}.json").exists()
    assert not list(lake.rglob("*.tmp"))


def test_metadata_records_rows_auc_and_hashes(pipeline) -> None:
    _, _, instance, _ = pipeline
    day = TRAIN_DAYS[-1]
    training = _metadata(instance, "training_set", day)
    assert training["train_rows"] > 3_000 and training["holdout_rows"] > 1_000
    assert training["unlabelled_rows_excluded"] > 0  # cancelled flights are counted, not trained on
    model = _metadata(instance, "model__goss", day)
    assert 0.5 < model["holdout_auc"] < 1.0 and len(model["sha256"]) == 64
    board = _metadata(instance, "model_leaderboard", day)
    assert board["models"] == 3 and board["best_auc"] >= model["holdout_auc"]


def test_registry_points_to_a_verified_model_with_manifest(pipeline) -> None:
    settings, _, instance, _ = pipeline
    registry = ModelRegistry(base_path=settings.registry_base)
    current = registry.current()
    assert current is not None
    model, manifest = registry.load(current["sha256"])
    assert model.sha256 == current["sha256"]
    assert set(manifest["inputs"]) == {"training_set", "model_leaderboard", f"model__{model.name}"}
    assert manifest["inputs"]["training_set"]["data_version"]
    assert manifest["catalog_entry"]["name"] == model.name
    assert manifest["metrics"]["auc"] >= settings.auc_gate
    decisions = [
        json.loads((Path(settings.lake_base) / "deployed_model" / f"{d}.json").read_text())
        for d in TRAIN_DAYS
    ]
    assert decisions[0]["promoted"] and decisions[0]["champion_before"] is None
    promoted = [d for d in decisions if d["promoted"]]
    assert current["partition"] == promoted[-1]["partition"]
    later = [d for d in decisions[1:] if d["comparison"] is not None]
    assert all(-1 < d["comparison"]["auc_difference"] < 1 for d in later)


def test_rematerializing_a_model_gives_the_same_hash(pipeline) -> None:
    _, defs, instance, _ = pipeline
    day = TRAIN_DAYS[-1]
    before = _metadata(instance, "model__goss", day)["sha256"]
    result = defs.resolve_implicit_global_asset_job_def().execute_in_process(
        partition_key=day, instance=instance, asset_selection=[dg.AssetKey("model__goss")]
    )
    assert result.success
    assert _metadata(instance, "model__goss", day)["sha256"] == before


def test_backfilled_partition_does_not_replace_newer_champion(pipeline) -> None:
    settings, defs, instance, _ = pipeline
    registry = ModelRegistry(base_path=settings.registry_base)
    champion = registry.current()
    result = defs.resolve_implicit_global_asset_job_def().execute_in_process(
        partition_key=TRAIN_DAYS[0],
        instance=instance,
        asset_selection=[dg.AssetKey("deployed_model")],
    )
    assert result.success
    decision = _metadata(instance, "deployed_model", TRAIN_DAYS[0])
    assert decision["promoted"] is False and "newer partition" in decision["reason"]
    assert registry.current() == champion


def test_rematerializing_a_day_rewrites_byte_identical_files(pipeline) -> None:
    """Idempotency: the day's frames (Parquet) and models come out byte for byte the same."""
    settings, defs, instance, _ = pipeline
    day = TRAIN_DAYS[-1]
    lake = Path(settings.lake_base)
    assets = ["raw_flights", "raw_weather", "flight_features", "traffic_features",
              "feast_features", "training_set", "model__gbdt_recent"]  # fmt: skip
    files = [f for a in assets for f in (lake / a).glob(f"{day}.*")]
    before = {f: f.read_bytes() for f in files}
    result = defs.resolve_implicit_global_asset_job_def().execute_in_process(
        partition_key=day, instance=instance, asset_selection=[dg.AssetKey(a) for a in assets]
    )
    assert result.success and len(before) == len(assets) + 1  # the model has .txt and .json
    changed = [str(f.relative_to(lake)) for f, data in before.items() if f.read_bytes() != data]
    assert changed == []
