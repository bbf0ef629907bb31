"""Dagster resources: one per external system (lake, landing zone, model registry, feature
store), and :func:`build_resources`, the code location's set of them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ml_assets.settings import Settings


def build_resources(settings: Settings) -> dict[str, Any]:
    """The code location's resources by key (also built by a parallel asset's workers)."""
    from ml_assets.resources.feature_store import build_feature_store
    from ml_assets.resources.lake_ranges import RangeLakeIOManagerFactory
    from ml_assets.resources.landing_zone import LandingZone
    from ml_assets.resources.registry import ModelRegistry

    return {
        "lake": RangeLakeIOManagerFactory(base_path=settings.lake_base),
        "landing": LandingZone(base_path=settings.landing_base),
        "registry": ModelRegistry(base_path=settings.registry_base),
        "feature_store": build_feature_store(settings),
    }
