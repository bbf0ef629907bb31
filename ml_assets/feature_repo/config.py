"""``feature_store.yaml`` from the project settings: one source of truth for paths and hosts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ml_assets.settings import Settings

REPO_DIR = Path(__file__).resolve().parent  # a Feast repo: `feast -c ml_assets/feature_repo ...`


def store_config(settings: Settings) -> dict[str, Any]:
    """The Feast repo config as a plain mapping (what ``feature_store.yaml`` would hold)."""
    lake = settings.lake_base.rstrip("/")
    if settings.feast_online_store == "redis":
        online: dict[str, Any] = {"type": "redis", "connection_string": settings.redis_connection}
    else:
        online = {"type": "sqlite", "path": settings.feast_sqlite_path or f"{lake}/feast/online.db"}
    return {
        "project": settings.feast_project,
        "provider": "local",
        "registry": settings.feast_registry or f"{lake}/feast/registry.db",
        "offline_store": {"type": "duckdb"},
        "online_store": online,
        "entity_key_serialization_version": 3,
    }


def render_feature_store_yaml(settings: Settings) -> str:
    import yaml

    header = "# Rendered from ml_assets settings (ml_assets/feature_repo/config.py); do not edit.\n"
    return header + yaml.safe_dump(store_config(settings), sort_keys=False)


def write_repo(settings: Settings, directory: Path = REPO_DIR) -> Path:
    """Write ``feature_store.yaml`` into ``directory`` so Feast's own tools (``feast
    feature-views list``, ``feast ui``, ``feast serve``) work on the pipeline's registry and
    online store. Returns the file written."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "feature_store.yaml"
    tmp = path.with_suffix(".yaml.tmp")
    tmp.write_text(render_feature_store_yaml(settings))
    tmp.replace(path)
    return path
