"""The model registry: content-addressed models, checksums, the current pointer and history."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ml_assets.models.gate import Champion
from ml_assets.models.train import TrainedModel, predict
from ml_assets.resources.registry import ModelRegistry, RegistryError
from ml_assets_tests import _samples

MANIFEST = {
    "catalog_entry": {"name": "tiny"},
    "metrics": {"auc": 0.71},
    "decision": "clears the gate",
}


@pytest.fixture(scope="module")
def first_model() -> TrainedModel:
    return _samples.tiny_model("tiny", rounds=3)


@pytest.fixture(scope="module")
def second_model() -> TrainedModel:
    return _samples.tiny_model("tiny_more", rounds=6)


def _files(base: Path) -> list[str]:
    return sorted(str(p.relative_to(base)) for p in base.rglob("*") if p.is_file())


def test_empty_registry_has_no_champion(tmp_path: Path) -> None:
    registry = ModelRegistry(base_path=str(tmp_path / "registry"))
    assert registry.current() is None
    assert registry.champion() is None
    assert registry.load_current() is None


def test_promote_writes_the_layout(tmp_path: Path, first_model: TrainedModel) -> None:
    registry = ModelRegistry(base_path=str(tmp_path))
    pointer = registry.promote(first_model, MANIFEST, "2013-03-14")
    sha = first_model.sha256
    assert pointer == {"sha256": sha, "name": "tiny", "partition": "2013-03-14"}
    assert _files(tmp_path) == [
        "current.json",
        f"history/2013-03-14-{sha[:16]}.json",
        f"models/{sha}/manifest.json",
        f"models/{sha}/model.txt",
    ]
    assert (tmp_path / "models" / sha / "model.txt").read_text() == first_model.model_text
    manifest = json.loads((tmp_path / "models" / sha / "manifest.json").read_text())
    assert manifest["partition"] == "2013-03-14"
    assert manifest["metrics"] == {"auc": 0.71}
    assert manifest["model"]["sha256"] == sha
    assert "model_text" not in manifest["model"]
    assert json.loads((tmp_path / "current.json").read_text()) == pointer


def test_champion_reflects_the_promotion(tmp_path: Path, first_model: TrainedModel) -> None:
    registry = ModelRegistry(base_path=str(tmp_path))
    registry.promote(first_model, MANIFEST, "2013-03-14")
    assert registry.champion() == Champion(
        name="tiny", sha256=first_model.sha256, partition="2013-03-14"
    )
    model, manifest = registry.load_current()
    assert model == first_model
    assert manifest["decision"] == "clears the gate"
    rows = pd.DataFrame({"a": [0.05, 0.95], "b": [0.3, 0.3]})
    assert np.allclose(predict(model, rows), predict(first_model, rows))


def test_second_promotion_records_the_previous_champion(
    tmp_path: Path, first_model: TrainedModel, second_model: TrainedModel
) -> None:
    registry = ModelRegistry(base_path=str(tmp_path))
    first = registry.promote(first_model, MANIFEST, "2013-03-14")
    second = registry.promote(second_model, MANIFEST, "2013-03-15")
    assert registry.champion().sha256 == second_model.sha256
    assert registry.champion().partition == "2013-03-15"
    history = tmp_path / "history"
    first_record = json.loads((history / f"2013-03-14-{first_model.sha256[:16]}.json").read_text())
    second_record = json.loads(
        (history / f"2013-03-15-{second_model.sha256[:16]}.json").read_text()
    )
    assert first_record.pop("at") < second_record.pop("at")
    assert first_record == {**first, "action": "promote", "previous": None}
    assert second_record == {**second, "action": "promote", "previous": first}
    # Both models stay loadable (rollback), each under its own checksum.
    assert registry.load(first_model.sha256)[0] == first_model
    assert registry.load(second_model.sha256)[0] == second_model
    assert not [f for f in _files(tmp_path) if f.endswith(".tmp")]


def test_corrupt_model_file_is_a_registry_error(tmp_path: Path, first_model: TrainedModel) -> None:
    registry = ModelRegistry(base_path=str(tmp_path))
    registry.promote(first_model, MANIFEST, "2013-03-14")
    path = tmp_path / "models" / first_model.sha256 / "model.txt"
    path.write_text(path.read_text().replace("tree", "tree ", 1))
    with pytest.raises(
        RegistryError, match=f"registry model {first_model.sha256} is corrupt.*sha256 mismatch"
    ):
        registry.load(first_model.sha256)
    with pytest.raises(RegistryError):
        registry.load_current()


def test_missing_model_file_is_a_registry_error(tmp_path: Path, first_model: TrainedModel) -> None:
    registry = ModelRegistry(base_path=str(tmp_path))
    registry.promote(first_model, MANIFEST, "2013-03-14")
    (tmp_path / "models" / first_model.sha256 / "model.txt").unlink()
    with pytest.raises(RegistryError, match="incomplete"):
        registry.load(first_model.sha256)
    with pytest.raises(RegistryError, match="incomplete"):
        registry.load("0" * 64)
