"""Training checkpoints in the lake: ``<lake>/checkpoints/<asset>/<partition>.json``, one per
model partition, replaced atomically, removed once the model is trained."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ml_assets.atomic import write_atomic
from ml_assets.models.training_guard import Checkpoint

if TYPE_CHECKING:
    from upath import UPath

FOLDER = "checkpoints"


@dataclass
class CheckpointStore:
    """The checkpoint of one asset partition (a retry in any run or pod finds it)."""

    lake_base: str
    asset: str
    partition: str
    unreadable: str | None = None

    @property
    def path(self) -> UPath:
        from upath import UPath

        return UPath(self.lake_base) / FOLDER / self.asset / f"{self.partition}.json"

    def load(self) -> Checkpoint | None:
        """The saved checkpoint; None when there is none or it cannot be read (``unreadable`` says
        why; training then starts over rather than failing)."""
        try:
            return Checkpoint.from_bytes(self.path.read_bytes())
        except FileNotFoundError:
            return None
        except (ValueError, TypeError, KeyError) as exc:
            self.unreadable = f"{self.path}: {exc}"
            return None

    def save(self, checkpoint: Checkpoint) -> None:
        write_atomic(self.path, checkpoint.to_bytes())

    def clear(self) -> None:
        path = self.path
        if path.exists():
            path.unlink()
