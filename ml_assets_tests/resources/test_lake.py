"""The lake IO manager: the storage layout is a contract (other tools read these files)."""

import json
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pytest
from upath import UPath

from ml_assets.models.train import TrainedModel, predict
from ml_assets.partitions import daily, trailing
from ml_assets.resources.lake import (
    LakeIOManager,
    LakeIOManagerFactory,
    concat_partitions,
    dump_object,
    load_object,
)
from ml_assets_tests import _samples

DAY = "2013-01-02"


def _files(base: Path) -> list[str]:
    return sorted(str(p.relative_to(base)) for p in base.rglob("*") if p.is_file())


def _frame(day: str) -> pd.DataFrame:
    return pd.DataFrame({"day": [day] * 3, "i": [0, 1, 2], "x": [0.5, np.nan, 2.0]})


@dg.asset(partitions_def=daily, io_manager_key="lake")
def daily_frame(context: dg.AssetExecutionContext) -> pd.DataFrame:
    return _frame(context.partition_key)


@dg.asset(
    partitions_def=daily,
    io_manager_key="lake",
    ins={"daily_frame": dg.AssetIn(partition_mapping=trailing(3))},
)
def window_frame(daily_frame: pd.DataFrame) -> pd.DataFrame:
    return daily_frame


@dg.asset(io_manager_key="lake")
def reference_frame() -> pd.DataFrame:
    return _frame("reference")


@dg.asset(partitions_def=daily, io_manager_key="lake")
def daily_model() -> TrainedModel:
    return _samples.tiny_model("daily")


@dg.asset(partitions_def=daily, io_manager_key="lake")
def model_user(daily_model: TrainedModel) -> dict:
    return {"sha256": daily_model.sha256, "features": list(daily_model.features)}


def _materialize(base: Path, assets, partition_key: str | None = DAY, **kwargs):
    return dg.materialize(
        assets,
        resources={"lake": LakeIOManagerFactory(base_path=str(base))},
        partition_key=partition_key,
        **kwargs,
    )


def test_partitioned_frame_lands_at_asset_slash_partition_parquet(tmp_path: Path) -> None:
    result = _materialize(tmp_path, [daily_frame])
    assert result.success
    assert _files(tmp_path) == ["daily_frame/2013-01-02.parquet"]
    stored = pd.read_parquet(tmp_path / "daily_frame" / "2013-01-02.parquet")
    pd.testing.assert_frame_equal(stored, _frame(DAY))
    (event,) = result.asset_materializations_for_node("daily_frame")
    assert event.metadata["dagster/row_count"].value == 3
    assert len(event.metadata["sha256"].value) == 64


def test_unpartitioned_frame_drops_the_partition_level(tmp_path: Path) -> None:
    assert _materialize(tmp_path, [reference_frame], partition_key=None).success
    assert _files(tmp_path) == ["reference_frame.parquet"]


def test_rematerializing_replaces_the_file_without_leftovers(tmp_path: Path) -> None:
    for _ in range(2):
        assert _materialize(tmp_path, [daily_frame]).success
    assert _files(tmp_path) == ["daily_frame/2013-01-02.parquet"]


def test_window_of_partitions_loads_as_one_frame_in_partition_order(tmp_path: Path) -> None:
    for day in ("2013-01-05", "2013-01-03", "2013-01-04", "2013-01-02"):  # out of order on purpose
        assert _materialize(tmp_path, [daily_frame], partition_key=day).success
    result = _materialize(
        tmp_path, [daily_frame, window_frame], partition_key="2013-01-05", selection=[window_frame]
    )
    assert result.success
    loaded = result.output_for_node("window_frame")
    assert isinstance(loaded, pd.DataFrame)
    assert loaded["day"].tolist() == [
        d for d in ("2013-01-03", "2013-01-04", "2013-01-05") for _ in range(3)
    ]
    assert loaded.index.tolist() == list(range(9))
    assert sorted(_files(tmp_path))[-1] == "window_frame/2013-01-05.parquet"
    assert not [f for f in _files(tmp_path) if f.endswith(".tmp")]


def test_window_at_the_first_partition_is_a_single_frame(tmp_path: Path) -> None:
    assert _materialize(tmp_path, [daily_frame], partition_key="2013-01-01").success
    result = _materialize(
        tmp_path, [daily_frame, window_frame], partition_key="2013-01-01", selection=[window_frame]
    )
    pd.testing.assert_frame_equal(result.output_for_node("window_frame"), _frame("2013-01-01"))


def test_model_round_trip_writes_text_and_meta(tmp_path: Path) -> None:
    result = _materialize(tmp_path, [daily_model, model_user])
    assert result.success
    assert _files(tmp_path) == [
        "daily_model/2013-01-02.model.json",
        "daily_model/2013-01-02.model.txt",
        "model_user/2013-01-02.json",
    ]
    model = _samples.tiny_model("daily")
    assert (tmp_path / "daily_model" / "2013-01-02.model.txt").read_text() == model.model_text
    meta = json.loads((tmp_path / "daily_model" / "2013-01-02.model.json").read_text())
    assert meta["sha256"] == model.sha256
    assert "model_text" not in meta
    assert json.loads((tmp_path / "model_user" / "2013-01-02.json").read_text()) == {
        "features": ["a", "b"],
        "sha256": model.sha256,
    }
    loaded = load_object(UPath(tmp_path) / "daily_model" / "2013-01-02")
    assert loaded == model
    rows = pd.DataFrame({"a": [0.1, 0.9], "b": [0.5, 0.5]})
    assert np.allclose(predict(loaded, rows), predict(model, rows))


def test_tampered_model_text_fails_on_load(tmp_path: Path) -> None:
    assert _materialize(tmp_path, [daily_model]).success
    text = tmp_path / "daily_model" / "2013-01-02.model.txt"
    text.write_text(text.read_text().replace("num_leaves=", "num_leaves=1", 1))
    with pytest.raises(ValueError, match="sha256 mismatch"):
        load_object(UPath(tmp_path) / "daily_model" / "2013-01-02")
    result = _materialize(
        tmp_path, [daily_model, model_user], selection=[model_user], raise_on_error=False
    )
    assert not result.success
    (failure,) = result.get_step_failure_events()
    assert "sha256 mismatch" in failure.step_failure_data.error.cause.message
    assert not (tmp_path / "model_user").exists()


def test_io_manager_contexts_use_the_same_layout(tmp_path: Path) -> None:
    manager = LakeIOManager(base_path=UPath(tmp_path))
    key = dg.AssetKey(["features", "nested"])
    out = dg.build_output_context(asset_key=key, partition_key=DAY)
    manager.handle_output(out, _frame(DAY))
    assert _files(tmp_path) == ["features/nested/2013-01-02.parquet"]
    loaded = manager.load_input(dg.build_input_context(asset_key=key, partition_key=DAY))
    pd.testing.assert_frame_equal(loaded, _frame(DAY))


def test_missing_partition_in_a_window_fails_without_retries(tmp_path: Path) -> None:
    """Missing upstream data is persistent: the step fails once, naming the window and the file."""
    manager = LakeIOManager(base_path=UPath(tmp_path))
    key = dg.AssetKey("daily_frame")
    manager.handle_output(dg.build_output_context(asset_key=key, partition_key=DAY), _frame(DAY))
    context = dg.build_input_context(
        asset_key=key,
        asset_partitions_def=daily,
        asset_partition_key_range=dg.PartitionKeyRange("2013-01-01", DAY),
    )
    with pytest.raises(
        dg.Failure, match=r"daily_frame\[2013-01-01..2013-01-02\]: lake read"
    ) as info:
        manager.load_input(context)
    assert not info.value.allow_retries and "2013-01-01" in info.value.description


def test_documents_round_trip_as_json(tmp_path: Path) -> None:
    path = UPath(tmp_path) / "deployed_model" / DAY
    document = {"promoted": True, "auc": 0.71, "when": pd.Timestamp("2013-01-02")}
    dump_object(document, path)
    assert _files(tmp_path) == ["deployed_model/2013-01-02.json"]
    assert load_object(path) == {"promoted": True, "auc": 0.71, "when": "2013-01-02 00:00:00"}


def test_unsupported_objects_and_missing_paths(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="not list"):
        dump_object([1, 2], UPath(tmp_path) / "x")
    assert _files(tmp_path) == []
    with pytest.raises(FileNotFoundError, match="nothing in the lake"):
        load_object(UPath(tmp_path) / "x")


def test_concat_partitions_orders_by_key_and_passes_other_values() -> None:
    parts = {"2013-01-03": _frame("2013-01-03"), "2013-01-01": _frame("2013-01-01")}
    joined = concat_partitions(parts)
    assert joined["day"].tolist() == ["2013-01-01"] * 3 + ["2013-01-03"] * 3
    models = {"2013-01-01": _samples.tiny_model()}
    assert concat_partitions(models) is models
    assert concat_partitions({}) == {}
    frame = _frame(DAY)
    assert concat_partitions(frame) is frame


def test_quarantine_lands_at_quarantine_slash_asset_slash_partition(tmp_path: Path) -> None:
    from ml_assets.resources.lake import quarantine_path, read_quarantine, write_quarantine

    rows = _frame(DAY).assign(failure_reasons="x: in_range(0, 1)")
    path = write_quarantine(str(tmp_path), "raw_flights", DAY, rows)
    assert path == quarantine_path(str(tmp_path), "raw_flights", DAY)
    assert _files(tmp_path) == ["quarantine/raw_flights/2013-01-02.parquet"]
    pd.testing.assert_frame_equal(read_quarantine(str(path)), rows)
    assert str(quarantine_path("gs://bucket/lake", "planes", None)) == (
        "gs://bucket/lake/quarantine/planes.parquet"
    )
    assert read_quarantine(str(tmp_path / "quarantine" / "gone.parquet")) is None


@pytest.mark.parametrize(
    "content", [b"", b"PAR1 not really", b"\x00" * 64], ids=["empty", "magic", "zeros"]
)
def test_unreadable_parquet_names_file_and_rule(tmp_path: Path, content: bytes) -> None:
    from ml_assets.resources.lake import CorruptLakeFile

    (tmp_path / "daily_frame").mkdir()
    (tmp_path / "daily_frame" / f"{DAY}.parquet").write_bytes(content)
    with pytest.raises(CorruptLakeFile, match=r"2013-01-02\.parquet is not readable Parquet"):
        load_object(UPath(tmp_path) / "daily_frame" / DAY)
