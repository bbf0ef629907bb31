"""``feature_store.yaml`` from the project settings: one source of truth for paths and hosts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ml_assets.settings import REDIS_PASSWORD_ENV, Settings

REPO_DIR = Path(__file__).resolve().parent  # a Feast repo: `feast -c ml_assets/feature_repo ...`


def store_config(settings: Settings) -> dict[str, Any]:
    """The Feast repo config as a plain mapping (what ``feature_store.yaml`` would hold)."""
    lake = settings.lake_base.rstrip("/")
    if settings.feast_online_store == "redis":
        connection = feast_redis_connection(settings.redis_connection)
        online: dict[str, Any] = {"type": "redis", "connection_string": connection}
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


def feast_redis_connection(connection: str) -> str:
    """Feast's ``host:port[,db=N,ssl=true,username=U]`` form of a ``redis://`` or ``rediss://``
    URL (Feast's own form passes unchanged);
    passwords never come this way (settings refuse them)."""
    if "://" not in connection:
        return connection
    from urllib.parse import parse_qsl, unquote, urlsplit

    url = urlsplit(connection)
    if url.scheme not in ("redis", "rediss"):
        raise ValueError(f"not a Redis URL: {url.scheme}://{url.hostname}")
    parts = [f"{url.hostname or '127.0.0.1'}:{url.port or 6379}"]
    parts += [f"db={int(url.path.strip('/'))}"] if url.path.strip("/") else []
    parts += ["ssl=true"] if url.scheme == "rediss" else []
    parts += [f"username={unquote(url.username)}"] if url.username else []
    return ",".join(parts + [f"{k}={v}" for k, v in parse_qsl(url.query)])


def render_feature_store_yaml(settings: Settings) -> str:
    """The YAML form; a Redis password is the reference ``${ML_ASSETS_REDIS_PASSWORD}``, which
    Feast expands when it loads the file, so the file never holds the secret."""
    import yaml

    config = store_config(settings)
    if settings.feast_online_store == "redis" and settings.redis_auth:
        online = config["online_store"]
        online["connection_string"] += f",password=${{{REDIS_PASSWORD_ENV}}}"
    header = "# Rendered from ml_assets settings (ml_assets/feature_repo/config.py); do not edit.\n"
    return header + yaml.safe_dump(config, sort_keys=False)


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
