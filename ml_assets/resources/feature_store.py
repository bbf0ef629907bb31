"""The Feast feature store as a Dagster resource (Feast is imported only when first used)."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import dagster as dg
from pydantic import PrivateAttr

if TYPE_CHECKING:
    import feast
    import pandas as pd


class FeatureStoreError(RuntimeError):
    """The online or offline store cannot answer (unreachable, or no features for an entity)."""


class FeatureStoreResource(dg.ConfigurableResource):
    """Wraps ``feast.FeatureStore`` built from ``store_config`` (see feature_repo/config.py)."""

    config: dict[str, Any]
    lake_base: str
    _store: Any = PrivateAttr(default=None)

    def store(self) -> feast.FeatureStore:
        if self._store is None:
            from pathlib import Path

            from feast import FeatureStore
            from feast.repo_config import RepoConfig

            if self.config["online_store"]["type"] == "sqlite":
                Path(self.config["online_store"]["path"]).parent.mkdir(parents=True, exist_ok=True)

            self._store = FeatureStore(config=RepoConfig(**self.config))
        return self._store

    def apply(self) -> None:
        """Register the repo's objects (idempotent)."""
        from ml_assets.feature_repo.definitions import apply_objects

        self.store().apply(apply_objects(self.lake_base))

    def service(self) -> feast.FeatureService:
        from ml_assets.feature_repo.definitions import repo_objects

        return repo_objects(self.lake_base)["service"]

    def historical(self, entities: pd.DataFrame) -> pd.DataFrame:
        """Point-in-time join: ``entities`` has ``flight_id`` and ``event_timestamp``."""
        return self._retry_while_materializing(
            lambda: (
                self.store()
                .get_historical_features(entity_df=entities, features=self.service())
                .to_df()
            )
        )

    def _retry_while_materializing(self, call: Any, attempts: int = 12) -> Any:
        """Feast refuses to serve a view while another run materializes it: wait and retry."""
        import time

        for attempt in range(attempts):
            try:
                return call()
            except ValueError as exc:
                if "MATERIALIZING" not in str(exc) or attempt == attempts - 1:
                    raise
                time.sleep(min(10.0, 0.5 * 2**attempt))
                self.store().refresh_registry()
        raise AssertionError("unreachable")

    def materialize(self, start: dt.datetime, end: dt.datetime) -> None:
        """Load feature rows stamped in [start, end) into the online store (idempotent)."""
        try:
            self.store().materialize(start_date=start, end_date=end)
        except ConnectionError as exc:
            raise FeatureStoreError(
                f"online store unreachable ({self.config['online_store']}): {exc}"
            ) from exc

    def online(self, flight_ids: list[str]) -> pd.DataFrame:
        """Online features per flight, with their event timestamps; unknown flights raise.

        Views keyed by what the flight id determines are read first; the plane's view then
        with the tail number the flight view served.
        """
        import pandas as pd

        from ml_assets.feature_repo.definitions import FLIGHT_VIEWS
        from ml_assets.models.features import ENTITY_VIEWS, JOIN_KEYS, keys_from_flight_ids

        keys = keys_from_flight_ids(flight_ids)
        projections = self.service().feature_view_projections
        by_id = [
            p.name for p in projections if ENTITY_VIEWS.get(p.name, (0, "flight_id"))[1] in keys
        ]
        frame = self._online_frame(projections, by_id, keys.to_dict("records"))
        plane_views = [p.name for p in projections if p.name not in by_id]
        if plane_views:
            planes = [{"plane_id": t or ""} for t in frame["tailnum"]]
            extra = self._online_frame(projections, plane_views, planes)
            frame = pd.concat([frame, extra.drop(columns=["plane_id"])], axis=1)
        flight_stamps = [
            f"{f.name}__ts" for p in projections if p.name in FLIGHT_VIEWS for f in p.features
        ]
        seconds = frame[flight_stamps].apply(pd.to_numeric, errors="coerce").fillna(0)
        missing = frame.loc[(seconds <= 0).all(axis=1), "flight_id"].tolist()
        if missing:
            raise FeatureStoreError(f"no features for {', '.join(missing[:5])} in the online store")
        frame["features_at"] = pd.to_datetime(seconds.max(axis=1), unit="s", utc=True)
        stamps = [c for c in frame.columns if c.endswith("__ts")]
        return frame.drop(columns=[*stamps, *[k for k in JOIN_KEYS if k in frame]])

    def _online_frame(self, projections: list, views: list[str], rows: list[dict]) -> pd.DataFrame:
        import pandas as pd

        refs = [f"{p.name}:{f.name}" for p in projections if p.name in views for f in p.features]
        try:
            response = self._retry_while_materializing(
                lambda: self.store().get_online_features(features=refs, entity_rows=rows)
            )
            return pd.DataFrame(response.to_dict(include_event_timestamps=True))
        except Exception as exc:
            if _is_connection_error(exc):
                raise FeatureStoreError(
                    f"online store unreachable ({self.config['online_store']}): {exc}"
                ) from exc
            raise


def _is_connection_error(exc: BaseException) -> bool:
    while exc is not None:
        if isinstance(exc, ConnectionError) or type(exc).__name__ in {
            "ConnectionError",
            "TimeoutError",
        }:
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def build_feature_store(settings: Any) -> FeatureStoreResource:
    from ml_assets.feature_repo.config import store_config

    return FeatureStoreResource(config=store_config(settings), lake_base=settings.lake_base)
