"""The model registry: content-addressed models, manifests, and an atomic ``current`` pointer.

Layout under ``base_path``::

    models/<sha256>/model.txt        LightGBM text format
    models/<sha256>/manifest.json    catalog entry, code version, inputs, metrics
    history/<partition>-<sha256>.json one record per promotion
    current.json                     {"sha256", "name", "partition"}: replaced atomically
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import dagster as dg

from ml_assets.atomic import write_atomic

if TYPE_CHECKING:
    from upath import UPath

    from ml_assets.models.gate import Champion
    from ml_assets.models.train import TrainedModel


class RegistryError(RuntimeError):
    """The registry holds a missing or corrupt model."""


class ModelRegistry(dg.ConfigurableResource):
    """Local folder or ``gs://`` prefix holding deployed models."""

    base_path: str

    def _root(self) -> UPath:
        from upath import UPath

        return UPath(self.base_path)

    def current(self) -> dict[str, Any] | None:
        """The ``current`` pointer, or None before the first promotion."""
        pointer = self._root() / "current.json"
        if not pointer.exists():
            return None
        return json.loads(pointer.read_text())

    def champion(self) -> Champion | None:
        from ml_assets.models.gate import Champion

        current = self.current()
        if current is None:
            return None
        return Champion(
            name=current["name"], sha256=current["sha256"], partition=current["partition"]
        )

    def load(self, sha256: str) -> tuple[TrainedModel, dict[str, Any]]:
        """A registered model and its manifest; its checksum is verified."""
        from ml_assets.models.train import TrainedModel

        folder = self._root() / "models" / sha256
        try:
            manifest = json.loads((folder / "manifest.json").read_text())
            text = (folder / "model.txt").read_text()
        except FileNotFoundError as exc:
            raise RegistryError(f"registry model {sha256} is incomplete: {exc}") from None
        meta = dict(manifest["model"])
        meta["features"] = tuple(meta["features"])
        try:
            model = TrainedModel(model_text=text, **meta)
        except ValueError as exc:
            raise RegistryError(f"registry model {sha256} is corrupt: {exc}") from None
        return model, manifest

    def manifests(self) -> list[tuple[str, dict[str, Any]]]:
        """(sha256, manifest) of every registered model."""
        folder = self._root() / "models"
        if not folder.exists():
            return []
        return [
            (m.name, json.loads((m / "manifest.json").read_text()))
            for m in sorted(folder.iterdir())
            if (m / "manifest.json").exists()
        ]

    def load_current(self) -> tuple[TrainedModel, dict[str, Any]] | None:
        current = self.current()
        return None if current is None else self.load(current["sha256"])

    def promote(
        self, model: TrainedModel, manifest: dict[str, Any], partition: str
    ) -> dict[str, Any]:
        """Store the model and manifest, record history, then move ``current`` atomically."""
        folder = self._root() / "models" / model.sha256
        manifest = {**manifest, "model": model.meta(), "partition": partition}
        write_atomic(folder / "model.txt", model.model_text.encode())
        write_atomic(
            folder / "manifest.json",
            json.dumps(manifest, sort_keys=True, indent=1, default=str).encode(),
        )
        pointer = {"sha256": model.sha256, "name": model.name, "partition": partition}
        record = {**pointer, "previous": self.current()}
        write_atomic(
            self._root() / "history" / f"{partition}-{model.sha256[:16]}.json",
            json.dumps(record, sort_keys=True).encode(),
        )
        write_atomic(self._root() / "current.json", json.dumps(pointer, sort_keys=True).encode())
        return pointer
