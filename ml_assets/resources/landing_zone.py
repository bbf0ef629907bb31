"""The landing zone as a Dagster resource (local folder or ``gs://`` prefix)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import dagster as dg

from ml_assets.sources import landing_files

if TYPE_CHECKING:
    import pandas as pd


class LandingZone(dg.ConfigurableResource):
    """Where the upstream system drops one file per source and day."""

    base_path: str

    def read_daily(self, source: str, day: str) -> pd.DataFrame:
        return landing_files.read_daily(self.base_path, source, day)

    def read_reference(self, table: str) -> pd.DataFrame:
        return landing_files.read_reference(self.base_path, table)

    def landed_days(self, source: str) -> list[str]:
        return landing_files.landed_days(self.base_path, source)

    def reject(self, source: str, day: str) -> str | None:
        """Move a bad day file aside to ``rejected/``; return where it went (``None``: no file)."""
        target = landing_files.reject(self.base_path, source, day)
        return str(target) if target is not None else None

    def stray_target(self, folder: str, name: str) -> tuple[str, int]:
        """Where a stray file would go in ``rejected/`` (by its content hash), and its size."""
        path = landing_files.stray_path(self.base_path, folder, name)
        with path.open("rb") as handle:
            data = handle.read()
        return str(landing_files.stray_target(self.base_path, folder, name, data)), len(data)

    def reject_stray(self, folder: str, name: str, target: str, reason: str, detail: str) -> str:
        """Move a stray file to ``target`` with a ``.reason.json`` beside it; return ``target``."""
        from upath import UPath

        moved = landing_files.reject_stray(
            self.base_path, folder, name, UPath(target), reason, detail
        )
        return str(moved)

    def volume_override(self, source: str, day: str) -> landing_files.VolumeOverride | None:
        """The operator's ``<day>.accept-volume-drop`` marker next to the day file, if any."""
        return landing_files.volume_override(self.base_path, source, day)
