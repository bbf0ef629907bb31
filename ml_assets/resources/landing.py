"""The landing zone as a Dagster resource (local folder or ``gs://`` prefix)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import dagster as dg

from ml_assets.sources import landing

if TYPE_CHECKING:
    import pandas as pd


class LandingZone(dg.ConfigurableResource):
    """Where the upstream system drops one file per source and day."""

    base_path: str

    def read_daily(self, source: str, day: str) -> pd.DataFrame:
        return landing.read_daily(self.base_path, source, day)

    def read_reference(self, table: str) -> pd.DataFrame:
        return landing.read_reference(self.base_path, table)

    def landed_days(self, source: str) -> list[str]:
        return landing.landed_days(self.base_path, source)

    def reject(self, source: str, day: str) -> str | None:
        """Move a bad day file aside to ``rejected/``; return where it went (``None``: no file)."""
        target = landing.reject(self.base_path, source, day)
        return str(target) if target is not None else None
