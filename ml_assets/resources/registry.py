"""The model registry: content-addressed models, manifests, and an atomic ``current`` pointer.

Layout under ``base_path``::

    models/<sha256>/model.txt        LightGBM text format
    models/<sha256>/manifest.json    catalog entry, code version, inputs, metrics
    history/<partition>-<sha256>.json one record per promotion
    history/rollback-<utc>-<sha256>.json one record per rollback (who, why)
    current.json                     {"sha256", "name", "partition"}: replaced atomically

``current`` moves last, after the model it names was written and read back with its checksum,
so a crash at any point leaves it on a complete, verified model.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import TYPE_CHECKING, Any

import dagster as dg

from ml_assets.atomic import write_atomic
from ml_assets.security import UnsafeNameError, safe_name, safe_sha256

if TYPE_CHECKING:
    from upath import UPath

    from ml_assets.models.gate import Champion
    from ml_assets.models.train import TrainedModel


class RegistryError(RuntimeError):
    """The registry holds a missing or corrupt model, or cannot do what was asked."""


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _dump(document: dict[str, Any]) -> bytes:
    return json.dumps(document, sort_keys=True, indent=1, default=str).encode()


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
        try:
            current = json.loads(pointer.read_text())
            safe_sha256(current["sha256"])
        except (ValueError, KeyError, TypeError, UnsafeNameError) as exc:
            raise RegistryError(
                f"registry pointer {pointer} is corrupt (rule json_pointer): {exc}"
            ) from None
        return current

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

        try:
            folder = self._root() / "models" / safe_sha256(sha256)
        except UnsafeNameError as exc:
            raise RegistryError(str(exc)) from None
        try:
            manifest = json.loads((folder / "manifest.json").read_text())
            text = (folder / "model.txt").read_text()
        except FileNotFoundError as exc:
            raise RegistryError(f"registry model {sha256} is incomplete: {exc}") from None
        try:
            meta = dict(manifest["model"])
            meta["features"] = tuple(meta["features"])
            model = TrainedModel(model_text=text, **meta)
        except (ValueError, KeyError, TypeError) as exc:
            raise RegistryError(f"registry model {sha256} is corrupt: {exc}") from None
        if model.sha256 != sha256:
            raise RegistryError(
                f"registry model {sha256} is corrupt (rule sha256): {folder} holds {model.sha256}"
            )
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
        safe_name(model.name, "model name")
        safe_name(partition, "partition key")
        folder = self._root() / "models" / model.sha256
        manifest = {**manifest, "model": model.meta(), "partition": partition}
        write_atomic(folder / "model.txt", model.model_text.encode())
        write_atomic(folder / "manifest.json", _dump(manifest))
        self.load(model.sha256)  # read back: never point at what cannot be loaded
        pointer = {"sha256": model.sha256, "name": model.name, "partition": partition}
        record = {**pointer, "action": "promote", "at": _now(), "previous": self.current()}
        write_atomic(
            self._root() / "history" / f"{partition}-{model.sha256[:16]}.json",
            json.dumps(record, sort_keys=True).encode(),
        )
        write_atomic(self._root() / "current.json", json.dumps(pointer, sort_keys=True).encode())
        return pointer

    def resolve(self, version: str) -> str:
        """The full sha256 of a registered model from a unique prefix (at least 8 hex digits)."""
        if not (8 <= len(version) <= 64) or any(c not in "0123456789abcdef" for c in version):
            raise RegistryError(
                f"model version {version!r}: give at least 8 hex digits of a sha256"
            )
        folder = self._root() / "models"
        found = (
            sorted(p.name for p in folder.iterdir() if p.name.startswith(version))
            if folder.exists()
            else []
        )
        if len(found) != 1:
            what = "no registered model" if not found else f"{len(found)} models"
            raise RegistryError(f"model version {version!r} matches {what}")
        return found[0]

    def previous(self) -> dict[str, Any]:
        """The champion that the current one replaced when it was promoted."""
        current = self.current()
        if current is None:
            raise RegistryError("the registry has no current model to roll back from")
        record_path = (
            self._root() / "history" / f"{current['partition']}-{current['sha256'][:16]}.json"
        )
        record = json.loads(record_path.read_text()) if record_path.exists() else {}
        if not record.get("previous"):
            raise RegistryError(
                f"no champion before {current['name']} ({current['sha256'][:12]}) "
                "to roll back to; name one with --to"
            )
        return record["previous"]

    def rollback(self, to: str | None, by: str, reason: str) -> dict[str, Any]:
        """Point ``current`` at an earlier verified model (default: the previous champion)."""
        if not reason.strip():
            raise RegistryError("a rollback needs a reason")
        target = self.resolve(to) if to else self.previous()["sha256"]
        model, manifest = self.load(target)
        before = self.current()
        pointer = {"sha256": model.sha256, "name": model.name, "partition": manifest["partition"]}
        stamp = "".join(c for c in _now() if c.isalnum())
        record = {
            **pointer,
            "action": "rollback",
            "at": _now(),
            "by": by,
            "reason": reason,
            "previous": before,
        }
        write_atomic(
            self._root() / "history" / f"rollback-{stamp}-{model.sha256[:16]}.json",
            json.dumps(record, sort_keys=True).encode(),
        )
        write_atomic(self._root() / "current.json", json.dumps(pointer, sort_keys=True).encode())
        return record

    def history(self) -> list[dict[str, Any]]:
        """Every promotion and rollback record, oldest first."""
        folder = self._root() / "history"
        if not folder.exists():
            return []
        records = [json.loads(p.read_text()) for p in folder.iterdir() if p.suffix == ".json"]
        return sorted(records, key=lambda r: r.get("at", ""))
