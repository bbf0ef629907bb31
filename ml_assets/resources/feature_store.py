"""The Feast feature store as a Dagster resource (Feast is imported only when first used)."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import dagster as dg
from pydantic import Field, PrivateAttr

from ml_assets.security import redact

if TYPE_CHECKING:
    import feast
    import pandas as pd

    from ml_assets.feature_repo.online_reader import OnlineBatch, OnlineFeatureReader
    from ml_assets.feature_repo.online_upkeep import Upkeep, UpkeepReport, ViewWrite


class FeatureStoreError(RuntimeError):
    """The online or offline store cannot answer (unreachable, or no features for an entity)."""


class FeatureStoreResource(dg.ConfigurableResource):
    """Wraps ``feast.FeatureStore`` built from ``store_config`` (see feature_repo/config.py); a
    Redis password is only ``redis_password``, bound to ``dg.EnvVar``, never in ``config``."""

    config: dict[str, Any]
    lake_base: str
    redis_password: str | None = Field(
        None, description='Bind dg.EnvVar("ML_ASSETS_REDIS_PASSWORD"), never a literal.', repr=False
    )
    _store: Any = PrivateAttr(default=None)
    _reader: Any = PrivateAttr(default=None)
    _upkeep: Any = PrivateAttr(default=None)

    def store(self) -> feast.FeatureStore:
        if self._store is None:
            from pathlib import Path

            from feast import FeatureStore
            from feast.repo_config import RepoConfig

            if self.config["online_store"]["type"] == "sqlite":
                Path(self.config["online_store"]["path"]).parent.mkdir(parents=True, exist_ok=True)
            register_lake_filesystem(self.lake_base)
            close_duckdb_at_exit()
            try:
                config = RepoConfig(**self._feast_config())
            except ValueError as exc:  # pydantic echoes its input: mask it, chain nothing
                raise FeatureStoreError(f"bad feature store config: {redact(str(exc))}") from None
            self._store = FeatureStore(config=config)
        return self._store

    def _feast_config(self) -> dict[str, Any]:
        """``config`` with the Redis password appended for Feast's client (JSON-quoted: Feast
        JSON-parses each value, which would turn '123' into a number)."""
        import json

        online, password = self.config["online_store"], self._password()
        if not password or online.get("type") != "redis":
            return self.config
        if "," in password:
            raise FeatureStoreError(
                "the Redis password holds ',' (Feast's connection string splits on it)"
            )
        connection = f"{online['connection_string']},password={json.dumps(password)}"
        return {**self.config, "online_store": {**online, "connection_string": connection}}

    def _password(self) -> str | None:
        """The bound password; outside a Dagster run (CLI, benchmarks) its EnvVar is read here."""
        value = self.redis_password
        if isinstance(value, dg.EnvVar):
            from ml_assets.settings import secret

            return secret(value.env_var_name)
        return value

    def apply(self) -> None:
        """Register the repo's objects (idempotent)."""
        from ml_assets.feature_repo.feast_objects import apply_objects

        self.store().apply(apply_objects(self.lake_base))

    def service(self) -> feast.FeatureService:
        from ml_assets.feature_repo.feast_objects import repo_objects

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

    def materialize(
        self, start: dt.datetime, end: dt.datetime, days: list[str] | None = None
    ) -> UpkeepReport | None:
        """Load feature rows stamped in [start, end) into the online store, replacing what
        ``days`` wrote before (corrections reach serving; a newer day's rows stay), then sweep
        rows past the views' TTL (``feature_repo/online_upkeep.py``). Idempotent."""

        def run() -> UpkeepReport | None:
            upkeep = self.upkeep()
            report = upkeep.prepare(self._writes(upkeep, days)) if days else None
            self.store().materialize(start_date=start, end_date=end)
            if report is not None:
                upkeep.restore(report)
            upkeep.sweep(report)
            return report

        return self._guard(run, reading=False)

    def upkeep(self) -> Upkeep:
        """Corrections and TTL sweeps of the online store, over the service's views (built once)."""
        if self._upkeep is None:
            from ml_assets.feature_repo.feast_objects import SERVICE
            from ml_assets.feature_repo.online_reader import service_views
            from ml_assets.feature_repo.online_upkeep import Upkeep

            store = self.store()
            self._upkeep = Upkeep.for_store(store, service_views(store, SERVICE))
        return self._upkeep

    def comparable(self, rows: pd.DataFrame, features: Any) -> pd.DataFrame:
        """Per flight of ``rows`` (feast_features rows) and feature: is the online row of its view
        the one the flight's prediction time sees? (Not when a newer day has replaced it.)"""
        import pandas as pd

        from ml_assets.feature_repo.online_reader import entity_key_encoder
        from ml_assets.models.features import KEY

        upkeep = self.upkeep()
        encode = entity_key_encoder(self.store().config.entity_key_serialization_version)
        at = pd.to_datetime(rows["prediction_ts"], utc=True).to_numpy()
        out = pd.DataFrame(True, index=rows[KEY].to_numpy(), columns=list(features))
        for view in upkeep.views:
            if not all(key in rows for key in view.join_keys):
                continue
            keys = [
                encode(view.join_keys, tuple(v))
                for v in rows.loc[:, list(view.join_keys)].to_numpy()
            ]
            stamps = pd.to_datetime(upkeep.stored(view, keys), utc=True).to_numpy()
            current = ~(stamps > at)  # a missing row (NaT) compares as missing on both sides
            for feature in view.features:
                if feature in out:
                    out[feature] = current
        return out

    def _writes(self, upkeep: Upkeep, days: list[str]) -> list[ViewWrite]:
        """What materializing ``days`` writes per view, read from the lake's Parquet sources."""
        from upath import UPath

        from ml_assets.feature_repo.feast_objects import view_sources
        from ml_assets.feature_repo.online_reader import entity_key_encoder
        from ml_assets.feature_repo.online_upkeep import plan
        from ml_assets.resources.lake import load_object

        base = self.lake_base.rstrip("/")
        sources = view_sources()
        frames: dict[str, list[pd.DataFrame]] = {}
        cache: dict[tuple[str, str], pd.DataFrame] = {}
        for view in upkeep.views:
            asset, timestamp = sources[view.name]
            for day in days:
                if (asset, day) not in cache:
                    cache[(asset, day)] = load_object(UPath(f"{base}/{asset}/{day}"))
                frames.setdefault(view.name, []).append(cache[(asset, day)])
        timestamps = {name: timestamp for name, (_, timestamp) in sources.items()}
        encode = entity_key_encoder(self.store().config.entity_key_serialization_version)
        return plan(upkeep.views, frames, timestamps, encode)

    def reader(self) -> OnlineFeatureReader:
        """The lean online read path over the model's feature service (built once)."""
        if self._reader is None:
            from ml_assets.feature_repo.feast_objects import KEY_SOURCES, SERVICE
            from ml_assets.feature_repo.online_reader import OnlineFeatureReader

            def build() -> OnlineFeatureReader:
                refused = self._login_error()  # fail at once, not on the first prediction
                if refused is not None:
                    raise refused
                return OnlineFeatureReader.for_service(self.store(), SERVICE, KEY_SOURCES)

            self._reader = self._guard(build)
        return self._reader

    def _login_error(self) -> BaseException | None:
        """Redis: the error of a refused login, from one PING without redis-py's retries (they
        wait 10 s on a refused login); None when it logs in, or fails for another reason."""
        try:
            config = self.store().config
            if config.online_store.type != "redis":
                return None
            from feast.infra.online_stores.redis import RedisOnlineStore
            from redis.backoff import NoBackoff
            from redis.retry import Retry

            client = RedisOnlineStore()._get_client(config.online_store)
            client.set_retry(Retry(NoBackoff(), 0))
            try:
                client.ping()
            finally:
                client.close()
        except Exception as exc:
            return exc if _is_auth_error(exc) else None
        return None

    def online(self, flight_ids: list[str]) -> pd.DataFrame:
        """Online features per flight with the newest event time; unknown flights raise."""
        import pandas as pd

        from ml_assets.models.features import KEY

        batch = self.online_rows([entity_row(f) for f in flight_ids])
        frame = pd.DataFrame({KEY: flight_ids, **batch.columns})
        frame["features_at"] = pd.to_datetime(batch.event_ts, utc=True)
        return frame

    def online_rows(self, entity_rows: list[dict[str, Any]]) -> OnlineBatch:
        """Feature columns straight from the online store; raises for flights it knows nothing of
        (entity views still answer for a known carrier or route, so only flight views count)."""
        from ml_assets.feature_repo.feast_objects import FLIGHT_VIEWS

        reader = self.reader()
        batch = self._guard(lambda: reader.read(entity_rows))
        unknown = [
            e
            for e, gone in zip(entity_rows, batch.missing_views, strict=True)
            if set(FLIGHT_VIEWS) <= set(gone)
        ]
        if unknown:
            names = ", ".join(str(next(iter(e.values()))) for e in unknown[:5])
            raise FeatureStoreError(f"no features for {names} in the online store")
        return batch

    def online_via_sdk(self, flight_ids: list[str]) -> pd.DataFrame:
        """The same rows through ``FeatureStore.get_online_features`` (reference path, slower).

        Views keyed by what the flight id determines are read first; the plane's view then
        with the tail number the flight view served.
        """
        import pandas as pd

        from ml_assets.feature_repo.feast_objects import FLIGHT_VIEWS
        from ml_assets.models.features import ENTITY_VIEWS, JOIN_KEYS, KEY, keys_from_flight_ids

        keys = keys_from_flight_ids(flight_ids)
        projections = self.service().feature_view_projections
        by_id = [
            p.name for p in projections if ENTITY_VIEWS.get(p.name, (0, "flight_id"))[1] in keys
        ]
        frame = self._sdk_frame(projections, by_id, keys.to_dict("records"))
        plane_views = [p.name for p in projections if p.name not in by_id]
        if plane_views:
            planes = [{"plane_id": t or ""} for t in frame["tailnum"]]
            extra = self._sdk_frame(projections, plane_views, planes)
            frame = pd.concat([frame, extra.drop(columns=["plane_id"])], axis=1)
        flight_stamps = [
            f"{f.name}__ts" for p in projections if p.name in FLIGHT_VIEWS for f in p.features
        ]
        seconds = frame[flight_stamps].apply(pd.to_numeric, errors="coerce").fillna(0)
        frame["features_at"] = pd.to_datetime(seconds.max(axis=1), unit="s", utc=True)
        stamps = [c for c in frame.columns if c.endswith("__ts")]
        return frame.drop(columns=[*stamps, *[k for k in JOIN_KEYS if k in frame and k != KEY]])

    def _sdk_frame(self, projections: list, views: list[str], rows: list[dict]) -> pd.DataFrame:
        import pandas as pd

        refs = [f"{p.name}:{f.name}" for p in projections if p.name in views for f in p.features]
        response = self._guard(
            lambda: self._retry_while_materializing(
                lambda: self.store().get_online_features(features=refs, entity_rows=rows)
            )
        )
        return pd.DataFrame(response.to_dict(include_event_timestamps=True))

    def _guard(self, call: Any, reading: bool = True) -> Any:
        """Run an online-store call; a refused login, an unreachable store or (``reading``) an
        empty one becomes a clear FeatureStoreError naming the store, secrets masked."""
        try:
            return call()
        except Exception as exc:
            error = self._store_error(exc, reading)
            if error is None:
                raise
            raise error from exc

    def _store_error(self, exc: BaseException, reading: bool) -> FeatureStoreError | None:
        from ml_assets.settings import REDIS_PASSWORD_ENV

        store = _safe(self.config["online_store"])
        if not (reading or self._password() or _is_auth_error(exc)) and _is_connection_error(exc):
            # A server closes the connection of a client that never logged in on a long command
            # (Feast's writes): ask with a PING whether a password is missing. Serving asked
            # when its reader was built, and a sent password is refused at connect.
            exc = self._login_error() or exc
        if _is_auth_error(exc):
            what = f"refused the login (wrong or missing {REDIS_PASSWORD_ENV})"
        elif _is_connection_error(exc):
            what = "unreachable"
        elif reading and (
            "unable to open database file" in str(exc) or "no such table" in str(exc)
        ):
            what = "holds no materialized features yet (materialize online_features first)"
        else:
            return None
        return FeatureStoreError(redact(f"online store {what} ({store}): {exc}"))


def register_lake_filesystem(lake_base: str) -> None:
    """Feast's duckdb offline store reads the lake through ibis's default duckdb connection; on a
    remote lake (``gs://``) give that connection the lake's own fsspec filesystem (gcsfs: the same
    credentials, workload identity or ``STORAGE_EMULATOR_HOST``, as every other lake access)
    instead of duckdb's httpfs, which needs HMAC keys and reaches no emulator."""
    if "://" not in lake_base:
        return
    import fsspec
    import ibis

    connection = ibis.get_backend().con
    protocol = lake_base.split("://", 1)[0]
    if not connection.filesystem_is_registered(protocol):
        connection.register_filesystem(fsspec.filesystem(protocol))


_DUCKDB_EXIT_HOOK: list[bool] = []


def close_duckdb_at_exit() -> None:
    """Once per process: close, at exit, the DuckDB databases Feast's offline store opens (ibis's
    default backend, duckdb's default connection) while Python still runs.

    Left open, their worker threads are torn down during interpreter finalization, which now and
    then aborts a process that had succeeded ("terminate called without an active exception",
    exit -6: duckdb/duckdb#13904; seen on ``ml-assets demo``).
    """
    if not _DUCKDB_EXIT_HOOK:
        import atexit

        atexit.register(close_duckdb)
        _DUCKDB_EXIT_HOOK.append(True)


def feast_store_opened() -> bool:
    """Whether this process has opened a Feast store (whose offline store may run DuckDB)."""
    return bool(_DUCKDB_EXIT_HOOK)


def close_duckdb() -> None:
    """Close ibis's default DuckDB backend and duckdb's default connection, if opened."""
    import sys

    ibis = sys.modules.get("ibis")
    backend = getattr(getattr(ibis, "options", None), "default_backend", None)
    if backend is not None:
        backend.disconnect()
        ibis.options.default_backend = None
    duckdb = sys.modules.get("duckdb")
    if duckdb is not None:
        duckdb.default_connection().close()


def entity_row(flight_id: str) -> dict[str, Any]:
    """The entity row of a flight id (``date/carrierNNN/ORIGIN-DEST/HHMM``): every join key it
    determines (the plane's comes from the flight's served ``tailnum``)."""
    from ml_assets.models.features import parse_flight_id

    return parse_flight_id(flight_id).entity_row()


def _safe(online_store: dict[str, Any]) -> dict[str, Any]:
    """The online store config with secrets masked, whatever the connection string's form
    (``password=...``, ``redis://:pw@host``, ``redis://user:pw@host``)."""
    connection = online_store.get("connection_string")
    if not connection:
        return online_store
    return {**online_store, "connection_string": redact(str(connection))}


def _is_auth_error(exc: BaseException | None) -> bool:
    """Redis refused the credentials (``WRONGPASS``, ``NOAUTH``, or a long command from a client
    that never logged in: 'unauthenticated multibulk length'): persistent, never retried."""
    while exc is not None:
        if type(exc).__name__ in {"AuthenticationError", "AuthenticationWrongNumberOfArgsError"}:
            return True
        if str(exc).startswith(("NOAUTH", "WRONGPASS", "Protocol error: unauthenticated")):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


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
    """The resource for ``settings``; a Redis password only as ``dg.EnvVar`` (the UI shows its
    name, never its value)."""
    from ml_assets.feature_repo.config import store_config
    from ml_assets.settings import REDIS_PASSWORD_ENV

    redis = settings.feast_online_store == "redis" and settings.redis_auth
    password = {"redis_password": dg.EnvVar(REDIS_PASSWORD_ENV)} if redis else {}
    return FeatureStoreResource(
        config=store_config(settings), lake_base=settings.lake_base, **password
    )
