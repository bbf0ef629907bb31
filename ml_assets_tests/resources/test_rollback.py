"""Rollback: ``current`` goes back to an earlier verified model, atomically, with who and why."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ml_assets.models.train import TrainedModel
from ml_assets.operations.cli import main
from ml_assets.resources.registry import ModelRegistry, RegistryError
from ml_assets.security import UnsafeNameError
from ml_assets_tests import _samples

MANIFEST = {"catalog_entry": {"name": "tiny"}, "metrics": {"auc": 0.71}}


@pytest.fixture(scope="module")
def models() -> list[TrainedModel]:
    return [_samples.tiny_model(f"tiny{i}", rounds=2 + i) for i in range(3)]


@pytest.fixture
def registry(tmp_path: Path, models: list[TrainedModel]) -> ModelRegistry:
    """Three promotions: tiny0 (01-14), tiny1 (01-15), tiny2 (01-16, current)."""
    registry = ModelRegistry(base_path=str(tmp_path / "registry"))
    for i, model in enumerate(models):
        registry.promote(model, MANIFEST, f"2013-01-{14 + i}")
    return registry


def test_rollback_walks_back_through_earlier_champions(
    registry: ModelRegistry, models: list[TrainedModel]
) -> None:
    record = registry.rollback(None, by="alice", reason="AUC dropped in production")
    assert registry.current() == {
        "sha256": models[1].sha256,
        "name": "tiny1",
        "partition": "2013-01-15",
    }
    assert record["by"] == "alice" and record["reason"] == "AUC dropped in production"
    assert record["previous"]["sha256"] == models[2].sha256
    model, manifest = registry.load_current()
    assert model == models[1] and manifest["metrics"] == {"auc": 0.71}
    registry.rollback(None, by="bob", reason="still bad")
    assert registry.current()["sha256"] == models[0].sha256
    with pytest.raises(RegistryError, match="no champion before tiny0.*--to"):
        registry.rollback(None, by="bob", reason="once more")
    assert registry.current()["sha256"] == models[0].sha256
    actions = [(r["action"], r["name"], r.get("by")) for r in registry.history()]
    assert actions == [
        ("promote", "tiny0", None),
        ("promote", "tiny1", None),
        ("promote", "tiny2", None),
        ("rollback", "tiny1", "alice"),
        ("rollback", "tiny0", "bob"),
    ]


def test_rollback_to_a_version_prefix(registry: ModelRegistry, models: list[TrainedModel]) -> None:
    registry.rollback(models[0].sha256[:10], by="alice", reason="known good")
    assert registry.current()["sha256"] == models[0].sha256
    with pytest.raises(RegistryError, match="matches no registered model"):
        registry.rollback("deadbeef", by="alice", reason="typo")
    with pytest.raises(RegistryError, match="at least 8 hex digits"):
        registry.rollback("../../x", by="alice", reason="traversal")
    with pytest.raises(RegistryError, match="needs a reason"):
        registry.rollback(None, by="alice", reason=" ")
    assert registry.current()["sha256"] == models[0].sha256


def test_rollback_refuses_a_corrupt_target_and_keeps_current(
    registry: ModelRegistry, models: list[TrainedModel], tmp_path: Path
) -> None:
    text = tmp_path / "registry" / "models" / models[1].sha256 / "model.txt"
    text.write_text(text.read_text() + "\n")
    before = registry.current()
    with pytest.raises(RegistryError, match=f"{models[1].sha256} is corrupt.*sha256 mismatch"):
        registry.rollback(None, by="alice", reason="AUC dropped")
    assert registry.current() == before
    assert [r["action"] for r in registry.history()] == ["promote"] * 3


def test_corrupt_pointer_and_swapped_model_are_clear_errors(
    registry: ModelRegistry, models: list[TrainedModel], tmp_path: Path
) -> None:
    root = tmp_path / "registry"
    # A folder holding another model's files, consistent with each other: refused by name.
    swapped = root / "models" / models[0].sha256
    for name in ("model.txt", "manifest.json"):
        (swapped / name).write_bytes((root / "models" / models[1].sha256 / name).read_bytes())
    with pytest.raises(RegistryError, match=f"{models[0].sha256} is corrupt \\(rule sha256\\)"):
        registry.load(models[0].sha256)
    (root / "current.json").write_text('{"sha256": "../../etc"')
    with pytest.raises(RegistryError, match="current.json is corrupt \\(rule json_pointer\\)"):
        registry.current()


def test_promote_refuses_names_that_are_paths(tmp_path: Path, models: list[TrainedModel]) -> None:
    registry = ModelRegistry(base_path=str(tmp_path / "registry"))
    with pytest.raises(UnsafeNameError, match="partition key '../2013-01-14'"):
        registry.promote(models[0], MANIFEST, "../2013-01-14")
    with pytest.raises(RegistryError, match="rule sha256"):
        registry.load("/etc/passwd")
    assert not (tmp_path / "registry").exists()


def test_cli_rollback_records_who_and_why(
    registry: ModelRegistry,
    models: list[TrainedModel],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:
    monkeypatch.setenv("ML_ASSETS_REGISTRY", registry.base_path)
    assert main(["rollback", "--reason", "bad night", "--by", "carol"]) == 0
    out = capsys.readouterr().out
    assert f"tiny2 ({models[2].sha256[:12]}) -> tiny1 ({models[1].sha256[:12]}" in out
    assert "by carol: bad night" in out
    [record] = [r for r in registry.history() if r["action"] == "rollback"]
    assert (record["by"], record["reason"]) == ("carol", "bad night")
    assert main(["rollback", "--to", "0123456789", "--reason", "x"]) == 1
    assert "matches no registered model" in capsys.readouterr().err
    pointer = json.loads((Path(registry.base_path) / "current.json").read_text())
    assert pointer["sha256"] == models[1].sha256
