"""Keeping Feast's online store true and small: corrections reach serving, expired rows leave.

Feast's Redis store skips a write whose event time is not newer than the stored one, so a
corrected day re-materialized with unchanged timestamps would never reach serving; its SQLite
store overwrites whatever is stored, so re-materializing an older day would put an older day's
values of the entity views (carrier, route, ...) back over a newer day's. Around
``FeatureStore.materialize`` of a range of days:

1. :func:`plan` reads, per view, the keys the range writes and their newest event time from the
   lake's Parquet (what Feast's offline store reads);
2. :meth:`Upkeep.prepare` lets Feast rewrite rows stored at the same event time as the range's
   (a correction: on Redis their stored time is moved back by a microsecond, so Feast overwrites
   them in place and serving never sees a gap) and keeps aside rows stored newer (written back
   afterwards by :meth:`Upkeep.restore`, for stores that overwrite them); rows stored older are
   overwritten by Feast anyway;
3. :meth:`Upkeep.sweep` removes every row older than the newest flight online minus the views'
   TTL: what no prediction from now on can use.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from ml_assets.feature_repo.online_reader import ViewSpec

if TYPE_CHECKING:
    import feast
    import pandas as pd

FLIGHT_TS_VIEW = "flight_features"  # its newest event time is the store's "now"


@dataclass(frozen=True)
class ViewWrite:
    """The keys (Feast's serialized entity keys) a materialization writes into one view, and the
    event time of each (the newest row of the key within the range)."""

    view: ViewSpec
    keys: list[bytes]
    event_ts: list[dt.datetime]


@dataclass
class UpkeepReport:
    """What one materialization's upkeep did, for the asset's metadata."""

    replaced: int = 0  # rows stored at the same or an older event time, rewritten
    kept_newer: int = 0  # rows stored newer than the range's, left as they were
    swept: int = 0  # expired rows removed
    newest_event: dt.datetime | None = None
    saved: Any = field(default=None, repr=False)


class _Store(Protocol):
    def stored_ts(self, view: ViewSpec, keys: list[bytes]) -> list[dt.datetime | None]: ...
    def allow_rewrite(self, view: ViewSpec, keys: list[bytes], at: list[dt.datetime]) -> None: ...
    def save(self, view: ViewSpec, keys: list[bytes]) -> Any: ...
    def restore(self, saved: Any) -> None: ...
    def sweep(self, views: Sequence[ViewSpec], cutoff: dt.datetime) -> int: ...
    def newest(self, view: ViewSpec) -> dt.datetime | None: ...


def plan(
    views: Sequence[ViewSpec],
    frames: dict[str, Iterable[pd.DataFrame]],
    timestamps: dict[str, str],
    encode: Any,
) -> list[ViewWrite]:
    """Per view: the distinct keys in its source ``frames`` (by view name) and the newest event
    time of each (column ``timestamps[view]``), encoded with Feast's entity-key encoder."""
    import pandas as pd

    writes = []
    for view in views:
        parts = [f.loc[:, [*view.join_keys, timestamps[view.name]]] for f in frames[view.name]]
        if not parts:
            continue
        rows = pd.concat(parts, ignore_index=True)
        newest = rows.groupby(list(view.join_keys), sort=False)[timestamps[view.name]].max()
        keys = [
            encode(view.join_keys, values if isinstance(values, tuple) else (values,))
            for values in newest.index
        ]
        stamps = [_utc(t) for t in pd.to_datetime(newest.to_numpy(), utc=True)]
        writes.append(ViewWrite(view, keys, stamps))
    return writes


class Upkeep:
    """Corrections and sweeps over one online store (see the module docstring)."""

    def __init__(self, store: _Store, views: Sequence[ViewSpec], ttl: dt.timedelta) -> None:
        self._store = store
        self.views = list(views)
        self.ttl = ttl

    @classmethod
    def for_store(cls, store: feast.FeatureStore, views: Sequence[ViewSpec]) -> Upkeep:
        """The upkeep of ``store``'s online store (SQLite or Redis) for ``views``."""
        ttl = min(store.get_feature_view(v.name).ttl for v in views)
        config = store.config
        if config.online_store.type == "sqlite":
            backend: _Store = _SqliteStore(config.online_store.path, config.project)
        elif config.online_store.type == "redis":
            backend = _RedisStore(config.online_store, config.project)
        else:
            raise ValueError(f"no online upkeep for store type {config.online_store.type!r}")
        return cls(backend, views, ttl)

    def prepare(self, writes: Sequence[ViewWrite]) -> UpkeepReport:
        """Before materializing: open the rows the range corrects to Feast's write, keep aside
        what is newer. Nothing is deleted, so serving reads a value throughout."""
        report, saved = UpkeepReport(), []
        for write in writes:
            stored = self._store.stored_ts(write.view, write.keys)
            rows = list(zip(write.keys, stored, write.event_ts, strict=True))
            same = [(k, t) for k, s, t in rows if s is not None and s == t]
            newer = [k for k, s, t in rows if s is not None and s > t]
            self._store.allow_rewrite(write.view, [k for k, _ in same], [t for _, t in same])
            saved.append(self._store.save(write.view, newer))
            report.replaced += len(same)
            report.kept_newer += len(newer)
        report.saved = saved
        return report

    def restore(self, report: UpkeepReport) -> None:
        """After materializing: write back the rows that were newer than the range's."""
        for saved in report.saved or []:
            self._store.restore(saved)
        report.saved = None

    def stored(self, view: ViewSpec, keys: list[bytes]) -> list[dt.datetime | None]:
        """The event time of each key's row of ``view`` online (None: no row)."""
        return self._store.stored_ts(view, keys)

    def newest_event(self) -> dt.datetime | None:
        """The newest flight's event time online: the store's "now"."""
        flight = next((v for v in self.views if v.name == FLIGHT_TS_VIEW), self.views[0])
        return self._store.newest(flight)

    def cutoff(self) -> dt.datetime | None:
        """Rows older than this serve no prediction from the newest flight on."""
        newest = self.newest_event()
        return None if newest is None else newest - self.ttl

    def sweep(self, report: UpkeepReport | None = None) -> int:
        """Remove every row older than :meth:`cutoff`; returns how many entity rows went."""
        cutoff = self.cutoff()
        swept = 0 if cutoff is None else self._store.sweep(self.views, cutoff)
        if report is not None:
            report.swept += swept
            report.newest_event = None if cutoff is None else cutoff + self.ttl
        return swept


def _utc(stamp: Any) -> dt.datetime:
    value = stamp.to_pydatetime() if hasattr(stamp, "to_pydatetime") else stamp
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


_CHUNK = 10000  # keys per SQLite statement, under its bound-variable limit


class _SqliteStore:
    """Feast's SQLite layout: table ``<project>_<view>``, a row per (entity key, feature), event
    times as epoch seconds (older Feast versions: naive UTC text)."""

    def __init__(self, path: str, project: str) -> None:
        self._path, self._project = path, project

    def _connect(self) -> Any:
        import sqlite3

        return sqlite3.connect(self._path, timeout=60)

    def _table(self, view: ViewSpec) -> str:
        return f'"{self._project}_{view.name}"'

    def _tables(self, connection: Any) -> set[str]:
        rows = connection.execute("SELECT name FROM sqlite_master WHERE type='table'").fetchall()
        return {name for (name,) in rows}

    def stored_ts(self, view: ViewSpec, keys: list[bytes]) -> list[dt.datetime | None]:
        from ml_assets.feature_repo.online_reader import parse_sqlite_ts

        found: dict[bytes, Any] = {}
        with self._connect() as connection:
            if f"{self._project}_{view.name}" not in self._tables(connection):
                return [None] * len(keys)
            for i in range(0, len(keys), _CHUNK):
                chunk = keys[i : i + _CHUNK]
                found.update(
                    connection.execute(
                        f"SELECT entity_key, MAX(event_ts) FROM {self._table(view)} "
                        f"WHERE entity_key IN ({','.join('?' * len(chunk))}) GROUP BY entity_key",
                        chunk,
                    ).fetchall()
                )
        return [parse_sqlite_ts(found.get(k)) for k in keys]

    def allow_rewrite(self, view: ViewSpec, keys: list[bytes], at: list[dt.datetime]) -> None:
        return None  # Feast's SQLite store upserts whatever the stored event time

    def save(self, view: ViewSpec, keys: list[bytes]) -> Any:
        """Feast's SQLite store overwrites regardless of event time: copy the newer rows."""
        if not keys:
            return None
        rows, columns = [], []
        with self._connect() as connection:
            for i in range(0, len(keys), _CHUNK):
                chunk = keys[i : i + _CHUNK]
                cursor = connection.execute(
                    f"SELECT * FROM {self._table(view)} "
                    f"WHERE entity_key IN ({','.join('?' * len(chunk))})",
                    chunk,
                )
                columns = [d[0] for d in cursor.description]
                rows += cursor.fetchall()
        return view, columns, rows

    def restore(self, saved: Any) -> None:
        if not saved:
            return
        view, columns, rows = saved
        with self._connect() as connection:
            connection.executemany(
                f"INSERT OR REPLACE INTO {self._table(view)} ({','.join(columns)}) "
                f"VALUES ({','.join('?' * len(columns))})",
                rows,
            )

    def sweep(self, views: Sequence[ViewSpec], cutoff: dt.datetime) -> int:
        """Delete rows stamped before ``cutoff``; VACUUM so the file shrinks too."""
        older = (
            "(typeof(event_ts) IN ('integer', 'real') AND event_ts < :epoch)"
            " OR (typeof(event_ts) = 'text' AND event_ts < :iso)"
        )
        stamp = {
            "epoch": cutoff.timestamp(),
            "iso": cutoff.astimezone(dt.UTC).replace(tzinfo=None).isoformat(sep=" "),
        }
        swept = 0
        with self._connect() as connection:
            tables = self._tables(connection)
            for view in views:
                if f"{self._project}_{view.name}" not in tables:
                    continue
                table = self._table(view)
                swept += connection.execute(
                    f"SELECT COUNT(DISTINCT entity_key) FROM {table} WHERE {older}", stamp
                ).fetchone()[0]
                connection.execute(f"DELETE FROM {table} WHERE {older}", stamp)
        if swept:
            connection = self._connect()
            try:
                connection.execute("VACUUM")
            finally:
                connection.close()
        return swept

    def newest(self, view: ViewSpec) -> dt.datetime | None:
        from ml_assets.feature_repo.online_reader import parse_sqlite_ts

        with self._connect() as connection:
            if f"{self._project}_{view.name}" not in self._tables(connection):
                return None
            (stamp,) = connection.execute(
                f"SELECT MAX(event_ts) FROM {self._table(view)}"
            ).fetchone()
        return parse_sqlite_ts(stamp)


class _RedisStore:
    """Feast's Redis layout: a hash per entity key + project, fields mmh3("<view>:<feature>")
    and "_ts:<view>" (a protobuf Timestamp)."""

    def __init__(self, store_config: Any, project: str) -> None:
        from feast.infra.online_stores.helpers import _mmh3
        from feast.infra.online_stores.redis import RedisOnlineStore

        self._client = RedisOnlineStore()._get_client(store_config)  # Feast's own client set-up
        self._suffix = project.encode()
        self._hash = _mmh3

    def _fields(self, view: ViewSpec) -> list[bytes]:
        return [self._hash(f"{view.name}:{f}") for f in view.features] + [self._ts(view)]

    @staticmethod
    def _ts(view: ViewSpec) -> bytes:
        return f"_ts:{view.name}".encode()

    def stored_ts(self, view: ViewSpec, keys: list[bytes]) -> list[dt.datetime | None]:
        from ml_assets.feature_repo.online_reader import parse_redis_ts

        with self._client.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.hget(key + self._suffix, self._ts(view))
            return [parse_redis_ts(raw) for raw in pipe.execute()]

    def allow_rewrite(self, view: ViewSpec, keys: list[bytes], at: list[dt.datetime]) -> None:
        """Move each row's stored event time a microsecond back: Feast's Redis store then writes
        the same-time correction over it, in place (it skips writes not newer than the stored)."""
        if not keys:
            return
        from google.protobuf.timestamp_pb2 import Timestamp

        with self._client.pipeline(transaction=False) as pipe:
            for key, stamp in zip(keys, at, strict=True):
                earlier = Timestamp()
                earlier.FromDatetime(
                    (stamp - dt.timedelta(microseconds=1)).astimezone(dt.UTC).replace(tzinfo=None)
                )
                pipe.hset(key + self._suffix, self._ts(view), earlier.SerializeToString())
            pipe.execute()

    def save(self, view: ViewSpec, keys: list[bytes]) -> Any:
        return None  # Feast's Redis store never overwrites a newer row

    def restore(self, saved: Any) -> None:
        return None

    def _scan(self, views: Sequence[ViewSpec]) -> Iterable[tuple[bytes, list[dt.datetime | None]]]:
        """Every entity hash of the project with its views' event times."""
        from ml_assets.feature_repo.online_reader import parse_redis_ts

        stamps = [self._ts(v) for v in views]
        batch: list[bytes] = []

        def flush() -> Iterable[tuple[bytes, list[dt.datetime | None]]]:
            with self._client.pipeline(transaction=False) as pipe:
                for key in batch:
                    pipe.hmget(key, stamps)
                replies = pipe.execute()
            for key, reply in zip(batch, replies, strict=True):
                yield key, [parse_redis_ts(raw) for raw in reply]
            batch.clear()

        for key in self._client.scan_iter(match=b"*" + self._suffix, count=1000):
            batch.append(key)
            if len(batch) >= 1000:
                yield from flush()
        if batch:
            yield from flush()

    def sweep(self, views: Sequence[ViewSpec], cutoff: dt.datetime) -> int:
        expired = [
            (key, view)
            for key, stamps in self._scan(views)
            for view, stamp in zip(views, stamps, strict=True)
            if stamp is not None and stamp < cutoff
        ]
        for i in range(0, len(expired), 1000):
            with self._client.pipeline(transaction=False) as pipe:
                for key, view in expired[i : i + 1000]:
                    pipe.hdel(key, *self._fields(view))
                pipe.execute()
        return len(expired)

    def newest(self, view: ViewSpec) -> dt.datetime | None:
        stamps = [s[0] for _, s in self._scan([view]) if s[0] is not None]
        return max(stamps) if stamps else None
