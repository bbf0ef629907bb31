"""Time limits from settings: per asset group, per catalog entry for models, per run.

The same numbers feed every enforcement point: the training callback (in-step), the
``step_watchdog`` sensor (any running step), ``dagster/max_runtime`` (run monitoring) and the
step Jobs' ``activeDeadlineSeconds`` on Kubernetes.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from ml_assets.settings import Settings

if TYPE_CHECKING:
    from ml_assets.models.catalog import CatalogEntry

MAX_RUNTIME_TAG = "dagster/max_runtime"


def model_timeout_s(settings: Settings, entry: CatalogEntry) -> float:
    return entry.timeout_s or settings.model_timeout_s


def group_timeout_s(settings: Settings, group: str | None) -> float:
    return settings.step_timeouts_s.get(group or "", settings.default_step_timeout_s)


def run_tags(settings: Settings) -> dict[str, str]:
    """Job tags: run monitoring ends a run that passes ``run_timeout_s``."""
    return {MAX_RUNTIME_TAG: str(int(settings.run_timeout_s))}


def step_timeouts(
    settings: Settings, assets: Iterable[object], catalog: Iterable[CatalogEntry]
) -> dict[str, float]:
    """Op name -> seconds: a model's catalog limit, else its asset group's limit."""
    import dagster as dg

    from ml_assets.models.catalog import model_key

    models = {model_key(entry): model_timeout_s(settings, entry) for entry in catalog}
    limits: dict[str, float] = {}
    for asset in assets:
        if not isinstance(asset, dg.AssetsDefinition) or not asset.is_executable:
            continue
        groups = set(asset.group_names_by_key.values())
        group = next(iter(groups)) if len(groups) == 1 else None
        limits[asset.op.name] = models.get(asset.op.name) or group_timeout_s(settings, group)
    return limits
